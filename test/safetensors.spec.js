// Our safetensors reader and writer: every malformed header is refused with what is wrong and where, nothing is
// allocated on a header's word, files round-trip, and the half-precision conversions are exact. Model-free.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const os = require('node:os');
const path = require('node:path');
const st = require('../dist/internal').safetensors;
const { MultiloraError } = require('../dist/internal').errors;

/** A file: the 8-byte length (`claim`, default the header's real length), the header, then `data`. */
function craft(header, data = Buffer.alloc(0), claim) {
  const json = Buffer.isBuffer(header)
    ? header
    : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(claim ?? json.length));
  return Buffer.concat([prefix, json, data]);
}

function f32(...values) {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
}

function isInvalid(pattern) {
  return (err) => {
    assert.ok(err instanceof MultiloraError, `expected a MultiloraError, got ${err}`);
    assert.equal(err.code, 'ERR_ADAPTER_INVALID', err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

const T = (dtype, shape, offsets) => ({ dtype, shape, data_offsets: offsets });

// [what, file bytes, expected message]
const BAD_FILES = [
  ['a file shorter than 8 bytes', Buffer.from([1, 2, 3, 4, 5]), /5 bytes long, shorter than the 8-byte header length/],
  ['a header length of 0', craft('', Buffer.alloc(16)), /header length is 0/],
  [
    'a header length beyond the file',
    craft('{}', Buffer.alloc(10), 100),
    /header length is 100 bytes, but only 12 bytes follow/,
  ],
  [
    'a header that is not UTF-8',
    craft(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])),
    /not valid UTF-8/,
  ],
  ['a header that is not JSON', craft('{"a": '), /header is not valid JSON/],
  ['a header that is an array', craft('[1, 2]'), /header is an array of length 2, not a JSON object/],
  ['a header that is null', craft('null'), /header is null, not a JSON object/],
  ['a tensor entry that is a number', craft({ t: 5 }), /the entry of tensor "t" is 5, not an object/],
  [
    'a tensor entry that is an array',
    craft({ t: [1] }),
    /the entry of tensor "t" is an array of length 1, not an object/,
  ],
  [
    'a tensor without dtype',
    craft({ t: { shape: [1], data_offsets: [0, 4] } }, f32(1)),
    /tensor "t" has no dtype string/,
  ],
  [
    'an unknown dtype',
    craft({ t: T('Q7', [1], [0, 4]) }, f32(1)),
    /tensor "t" has the unknown dtype "Q7" \(OpenVINO GenAI 2026.3 reads only F32, F16 and BF16; an alpha of one element may be I64 or I32\)/,
  ],
  [
    'a dtype GenAI does not read',
    craft({ t: T('I64', [1], [0, 8]) }, Buffer.alloc(8)),
    /tensor "t" has dtype "I64", which LoRA files for GenAI cannot use \(OpenVINO GenAI 2026.3 reads only F32, F16 and BF16; an alpha of one element may be I64 or I32\)/,
  ],
  ['F64', craft({ t: T('F64', [1], [0, 8]) }, Buffer.alloc(8)), /dtype "F64", which LoRA files for GenAI cannot use/],
  [
    'an integer alpha of more than one element',
    craft({ 'x.alpha': T('I64', [2], [0, 16]) }, Buffer.alloc(16)),
    /tensor "x\.alpha" has dtype "I64", which LoRA files for GenAI cannot use/,
  ],
  [
    'a shape that is no array',
    craft({ t: T('F32', 4, [0, 16]) }, Buffer.alloc(16)),
    /tensor "t" has shape 4, not an array of non-negative integers/,
  ],
  [
    'a negative dimension',
    craft({ t: T('F32', [-1, 4], [0, 16]) }, Buffer.alloc(16)),
    /shape \[-1,4\], not an array of non-negative integers/,
  ],
  ['a fractional dimension', craft({ t: T('F32', [1.5], [0, 4]) }, Buffer.alloc(4)), /shape \[1.5\]/],
  [
    'a dimension beyond 2^53',
    craft('{"t":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,4]}}', Buffer.alloc(4)),
    /shape \[9007199254740992\], not an array/,
  ],
  ['a string dimension', craft({ t: T('F32', ['4'], [0, 16]) }, Buffer.alloc(16)), /shape \["4"\]/],
  [
    'data_offsets of one number',
    craft({ t: T('F32', [1], [4]) }, Buffer.alloc(4)),
    /tensor "t" has data_offsets \[4\], not two non-negative integers \[begin, end\]/,
  ],
  [
    'data_offsets of three numbers',
    craft({ t: T('F32', [1], [0, 4, 8]) }, Buffer.alloc(8)),
    /data_offsets \[0,4,8\], not two/,
  ],
  [
    'data_offsets of strings',
    craft({ t: T('F32', [1], ['0', '4']) }, Buffer.alloc(4)),
    /data_offsets \["0","4"\], not two/,
  ],
  ['a negative offset', craft({ t: T('F32', [1], [-4, 0]) }, Buffer.alloc(4)), /data_offsets \[-4,0\], not two/],
  ['no data_offsets', craft({ t: { dtype: 'F32', shape: [1] } }, Buffer.alloc(4)), /data_offsets undefined/],
  [
    'begin after end',
    craft({ t: T('F32', [0], [8, 4]) }, Buffer.alloc(8)),
    /tensor "t" has data_offsets \[8, 4\], whose begin is after its end/,
  ],
  [
    'an end beyond the data',
    craft({ t: T('F32', [4], [0, 16]) }, Buffer.alloc(8)),
    /tensor "t" ends at byte 16 of the data section, which holds only 8 bytes/,
  ],
  [
    'fewer bytes than the shape needs',
    craft({ t: T('F32', [3], [0, 8]) }, Buffer.alloc(8)),
    /tensor "t" holds 8 bytes, but dtype F32 and shape \[3\] need 12/,
  ],
  [
    'more bytes than the shape needs',
    craft({ t: T('F16', [2, 2], [0, 12]) }, Buffer.alloc(12)),
    /holds 12 bytes, but dtype F16 and shape \[2,2\] need 8/,
  ],
  [
    'a huge claimed shape',
    craft({ t: T('BF16', Array(64).fill(2 ** 53 - 1), [0, 4]) }, Buffer.alloc(4)),
    /holds 4 bytes, but dtype BF16 and shape \[9007199254740991,.*need more than the 4 bytes of the data section/,
  ],
  [
    'overlapping tensors',
    craft({ a: T('F32', [2], [0, 8]), b: T('F32', [2], [4, 12]) }, Buffer.alloc(12)),
    /the data of tensors "a" \[0, 8\) and "b" \[4, 12\) overlap/,
  ],
  [
    'a tensor inside another',
    craft({ a: T('F32', [4], [0, 16]), b: T('F32', [1], [4, 8]) }, Buffer.alloc(16)),
    /tensors "a" \[0, 16\) and "b" \[4, 8\) overlap/,
  ],
  [
    'a duplicate tensor name',
    craft(
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      Buffer.alloc(8),
    ),
    /header names "a" twice/,
  ],
  [
    'a duplicate written with escapes',
    craft(
      '{"a\\u0062":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"ab":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}',
    ),
    /header names "ab" twice/,
  ],
  [
    'a duplicate __metadata__',
    craft('{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"}}'),
    /header names "__metadata__" twice/,
  ],
  [
    '__metadata__ with a number',
    craft({ __metadata__: { k: 1 } }),
    /"__metadata__" must map strings to strings, but "k" maps to 1/,
  ],
  ['__metadata__ with an object', craft({ __metadata__: { k: { v: 'x' } } }), /but "k" maps to \{"v":"x"\}/],
  [
    '__metadata__ that is an array',
    craft({ __metadata__: ['a'] }),
    /"__metadata__" is an array of length 1, not an object of strings/,
  ],
  ['__metadata__ that is a string', craft({ __metadata__: 'x' }), /"__metadata__" is "x", not an object of strings/],
];

describe('safetensors', function () {
  let tmp;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'multilora-safetensors-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('refuses malformed files, saying what is wrong', function () {
    BAD_FILES.forEach(([what, bytes, pattern], i) => {
      it(`${what}, in memory and on disk`, async function () {
        assert.throws(() => st.parseSafetensors(bytes), isInvalid(pattern));
        const file = path.join(tmp, `bad-${i}.safetensors`);
        fs.writeFileSync(file, bytes);
        await assert.rejects(st.readSafetensorsHeader(file), (err) => {
          isInvalid(pattern)(err);
          assert.ok(err.message.includes(file), `the message names the file: ${err.message}`);
          return true;
        });
      });
    });

    it('a header above the 100 MiB cap, on disk (a sparse file), without reading it', async function () {
      const file = path.join(tmp, 'big.safetensors');
      const claim = st.MAX_HEADER_BYTES + 1;
      fs.writeFileSync(file, craft('{}', Buffer.alloc(0), claim));
      fs.truncateSync(file, claim + 8 + 64);
      await assert.rejects(
        st.readSafetensorsHeader(file),
        isInvalid(/header length is 104857601 bytes, above multilora's limit of 104857600 bytes/),
      );
    });

    it('a missing file with ERR_ADAPTER_NOT_FOUND, and a folder with ERR_ADAPTER_INVALID', async function () {
      await assert.rejects(st.readSafetensorsHeader(path.join(tmp, 'none.safetensors')), (err) => {
        assert.equal(err.code, 'ERR_ADAPTER_NOT_FOUND');
        assert.match(err.message, /none\.safetensors/);
        return true;
      });
      await assert.rejects(st.readSafetensorsHeader(tmp), isInvalid(/not a regular file|EISDIR/));
    });

    it('arguments that are not a path or a Buffer, with ERR_INVALID_ARGUMENT', async function () {
      await assert.rejects(st.readSafetensorsHeader(42), (err) => {
        assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
        assert.match(err.message, /^Expected a non-empty string for file but received 42$/);
        return true;
      });
      assert.throws(() => st.parseSafetensors('x'), /Expected a Buffer for buffer but received "x"/);
    });
  });

  describe('never allocates what a header claims', function () {
    it('a claim of 2^60 bytes reads 8 bytes and allocates nothing', async function () {
      const file = path.join(tmp, 'claim-2-60.safetensors');
      fs.writeFileSync(file, craft('{}', Buffer.alloc(64), 2 ** 60));
      // Count the bytes asked of every FileHandle.read while the header is read.
      const handle = await fsp.open(file, 'r');
      const proto = Object.getPrototypeOf(handle);
      await handle.close();
      const original = proto.read;
      let requested = 0;
      proto.read = function (buffer, offset, length, position) {
        requested += length;
        return original.call(this, buffer, offset, length, position);
      };
      try {
        await assert.rejects(
          st.readSafetensorsHeader(file),
          isInvalid(/header length is 1152921504606846976 bytes, but only 66 bytes follow/),
        );
      } finally {
        proto.read = original;
      }
      assert.equal(requested, 8);
      assert.throws(() => st.parseSafetensors(fs.readFileSync(file)), isInvalid(/1152921504606846976 bytes/));
    });

    it('a claim of 60 MiB in a small file does not allocate 60 MiB', async function () {
      const file = path.join(tmp, 'claim-60m.safetensors');
      fs.writeFileSync(file, craft('{}', Buffer.alloc(1024), 60 * 1024 * 1024));
      const before = process.memoryUsage().arrayBuffers;
      await assert.rejects(st.readSafetensorsHeader(file), isInvalid(/header length is 62914560 bytes/));
      const grown = process.memoryUsage().arrayBuffers - before;
      assert.ok(grown < 1024 * 1024, `array buffers grew by ${grown} bytes`);
    });
  });

  describe('reads valid files', function () {
    it('accepts zero tensors, and metadata alone', function () {
      assert.deepEqual(st.parseSafetensors(craft('{}')).tensors, []);
      const h = st.parseSafetensors(craft({ __metadata__: { format: 'pt' } }));
      assert.deepEqual(h.metadata, { format: 'pt' });
      assert.deepEqual(h.tensors, []);
      assert.deepEqual(st.parseSafetensors(craft('  {  }  ')).metadata, {});
    });

    it('describes each tensor, in the order of its data, with offsets in the file', function () {
      const data = Buffer.concat([f32(1, 2), Buffer.from([1, 0, 2, 0, 3, 0]), f32(7)]);
      const bytes = craft(
        {
          z: T('F32', [2], [0, 8]),
          a: T('F16', [3, 1], [8, 14]),
          m: T('BF16', [0, 5], [14, 14]),
          s: T('F32', [], [14, 18]),
        },
        data,
      );
      const h = st.parseSafetensors(bytes);
      const headerLength = bytes.length - 8 - data.length;
      assert.equal(h.headerLength, headerLength);
      assert.equal(h.dataOffset, 8 + headerLength);
      assert.equal(h.fileSize, bytes.length);
      assert.deepEqual(
        h.tensors.map((t) => [t.name, t.dtype, t.shape, t.begin, t.end, t.byteLength, t.offset]),
        [
          ['z', 'F32', [2], 0, 8, 8, h.dataOffset],
          ['a', 'F16', [3, 1], 8, 14, 6, h.dataOffset + 8],
          ['m', 'BF16', [0, 5], 14, 14, 0, h.dataOffset + 14],
          ['s', 'F32', [], 14, 18, 4, h.dataOffset + 14],
        ],
      );
    });

    it('reads one tensor from a path or a Buffer, and a scalar from F32, F16 and BF16', async function () {
      const bytes = st.writeSafetensors([
        { name: 'w', dtype: 'F32', shape: [2, 2], data: f32(1, -2, 3.5, 0.25) },
        { name: 'a32', dtype: 'F32', shape: [], data: f32(2) },
        { name: 'a16', dtype: 'F16', shape: [], data: Buffer.from([0x66, 0x2e]) },
        { name: 'ab16', dtype: 'BF16', shape: [1], data: Buffer.from([0x49, 0x40]) },
      ]);
      const file = path.join(tmp, 'read.safetensors');
      fs.writeFileSync(file, bytes);
      const h = await st.readSafetensorsHeader(file);
      const byName = Object.fromEntries(h.tensors.map((t) => [t.name, t]));
      assert.deepEqual(await st.readTensor(file, byName.w), f32(1, -2, 3.5, 0.25));
      assert.deepEqual(await st.readTensor(bytes, byName.w), f32(1, -2, 3.5, 0.25));
      assert.equal(await st.readScalar(file, byName.a32), 2);
      assert.equal(await st.readScalar(bytes, byName.a16), 0.0999755859375);
      assert.equal(await st.readScalar(file, byName.ab16), 3.140625);
      await assert.rejects(
        st.readScalar(file, byName.w),
        isInvalid(/Tensor "w" should hold one number but has shape \[2,2\]/),
      );
    });

    it('keeps a file open for many reads until closed', async function () {
      const file = path.join(tmp, 'open.safetensors');
      fs.writeFileSync(
        file,
        st.writeSafetensors([
          { name: 'a', dtype: 'F32', shape: [1], data: f32(1) },
          { name: 'b', dtype: 'F32', shape: [1], data: f32(2) },
        ]),
      );
      const reader = await st.openSafetensors(file);
      assert.deepEqual(
        reader.header.tensors.map((t) => t.name),
        ['a', 'b'],
      );
      assert.deepEqual(await reader.read(reader.header.tensors[1]), f32(2));
      assert.deepEqual(await reader.read(reader.header.tensors[0]), f32(1));
      await reader.close();
      await assert.rejects(reader.read(reader.header.tensors[0]), /was closed/);
    });

    it('refuses a TensorInfo that reaches past the data it is read from', async function () {
      const bytes = st.writeSafetensors([{ name: 'a', dtype: 'F32', shape: [4], data: f32(1, 2, 3, 4) }]);
      const info = st.parseSafetensors(bytes).tensors[0];
      await assert.rejects(
        st.readTensor(bytes.subarray(0, bytes.length - 4), info),
        isInvalid(/tensor "a" would end at byte/),
      );
      await assert.rejects(st.readTensor(bytes, { name: 'x' }), /Expected a TensorInfo/);
    });
  });

  describe('writes valid files', function () {
    const tensors = [
      { name: 'b.weight', dtype: 'F32', shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6) },
      { name: 'a.weight', dtype: 'F16', shape: [3], data: Buffer.from([0, 0x3c, 0, 0x40, 0, 0xc2]) },
      { name: 'c', dtype: 'BF16', shape: [], data: Buffer.from([0x80, 0x3f]) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: Buffer.alloc(0) },
    ];

    it('round-trips tensors and metadata', function () {
      const bytes = st.writeSafetensors(tensors, { format: 'pt', note: 'ü "quoted"' });
      const h = st.parseSafetensors(bytes);
      assert.deepEqual(h.metadata, { format: 'pt', note: 'ü "quoted"' });
      for (const t of tensors) {
        const info = h.tensors.find((x) => x.name === t.name);
        assert.equal(info.dtype, t.dtype);
        assert.deepEqual(info.shape, t.shape);
        assert.deepEqual(bytes.subarray(info.offset, info.offset + info.byteLength), t.data);
      }
    });

    it('pads the header with spaces so the data starts at a multiple of 8, and writes the same bytes for any order', function () {
      const bytes = st.writeSafetensors(tensors, { b: '2', a: '1' });
      const h = st.parseSafetensors(bytes);
      assert.equal(h.dataOffset % 8, 0);
      const header = bytes.subarray(8, h.dataOffset).toString('utf8');
      assert.match(header, /^\{"__metadata__":\{"a":"1","b":"2"\},"a\.weight":.*"empty":\{[^}]*\}\} *$/);
      const reversed = st.writeSafetensors([...tensors].reverse(), { a: '1', b: '2' });
      assert.ok(reversed.equals(bytes));
      assert.deepEqual(
        h.tensors.map((t) => t.name),
        ['a.weight', 'b.weight', 'c', 'empty'],
      );
    });

    it('writes a file that readSafetensorsHeader reads back', async function () {
      const file = path.join(tmp, 'written.safetensors');
      fs.writeFileSync(file, st.writeSafetensors(tensors));
      const h = await st.readSafetensorsHeader(file);
      assert.deepEqual(h.metadata, {});
      assert.deepEqual(
        await st.readTensor(
          file,
          h.tensors.find((t) => t.name === 'b.weight'),
        ),
        f32(1, 2, 3, 4, 5, 6),
      );
    });

    it('refuses bad tensors with ERR_INVALID_ARGUMENT', function () {
      const bad = (list, pattern) =>
        assert.throws(
          () => st.writeSafetensors(list),
          (err) => {
            assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
            assert.match(err.message, pattern);
            return true;
          },
        );
      bad(
        [tensors[0], { ...tensors[2], name: 'b.weight' }],
        /Expected a name that no other tensor has for tensors\[1\]\.name but received "b.weight"/,
      );
      bad(
        [{ ...tensors[0], dtype: 'I8' }],
        /Expected "F32", "F16" or "BF16" for tensors\[0\]\.dtype but received "I8"/,
      );
      bad(
        [{ ...tensors[0], shape: [2, 2] }],
        /Expected 16 bytes \(dtype F32, shape \[2,2\]\) for tensors\[0\]\.data but received a Buffer of 24 bytes/,
      );
      bad([{ ...tensors[0], name: '__metadata__' }], /Expected a tensor name other than "__metadata__"/);
      bad([{ ...tensors[0], data: [1, 2] }], /Expected a Buffer for tensors\[0\]\.data/);
      assert.throws(() => st.writeSafetensors([], { a: 1 }), /Expected a string for metadata\["a"\] but received 1/);
    });
  });

  describe('half-precision numbers', function () {
    it('converts chosen float32 values to float16 bits, rounding to nearest even', function () {
      const cases = [
        [1, 0x3c00],
        [-2, 0xc000],
        [0.1, 0x2e66],
        [65504, 0x7bff],
        [65519, 0x7bff],
        [65520, 0x7c00],
        [1e9, 0x7c00],
        [-Infinity, 0xfc00],
        [0, 0],
        [-0, 0x8000],
        [2 ** -14, 0x0400],
        [2 ** -24, 0x0001],
        [2 ** -25, 0],
        [3 * 2 ** -26, 0x0001],
        [2 ** -14 - 2 ** -25, 0x0400],
        [1 + 2 ** -11, 0x3c00],
        [1 + 3 * 2 ** -11, 0x3c02],
        [1 + 2 ** -11 + 2 ** -20, 0x3c01],
        [5 * 2 ** -25, 0x0002],
        [3 * 2 ** -25, 0x0002],
        [2 ** -26, 0],
      ];
      for (const [value, bits] of cases) assert.equal(st.f32ToF16(value), bits, `f32ToF16(${value})`);
      const nan = st.f32ToF16(NaN);
      assert.equal(nan & 0x7c00, 0x7c00);
      assert.notEqual(nan & 0x3ff, 0);
    });

    it('reads float16 bits exactly, and every non-NaN float16 survives the round trip', function () {
      assert.equal(st.f16ToF32(0x3c00), 1);
      assert.equal(st.f16ToF32(0x0001), 2 ** -24);
      assert.equal(st.f16ToF32(0x03ff), 1023 * 2 ** -24);
      assert.equal(st.f16ToF32(0x7bff), 65504);
      assert.equal(st.f16ToF32(0x3555), 0.333251953125);
      assert.equal(st.f16ToF32(0xfc00), -Infinity);
      assert.ok(Object.is(st.f16ToF32(0x8000), -0));
      assert.ok(Number.isNaN(st.f16ToF32(0x7e00)));
      for (let bits = 0; bits < 0x10000; bits += 1) {
        if ((bits & 0x7c00) === 0x7c00 && bits & 0x3ff) continue;
        assert.equal(st.f32ToF16(st.f16ToF32(bits)), bits);
      }
    });

    it('converts float32 values to bfloat16 bits, rounding to nearest even, and back exactly', function () {
      const cases = [
        [1, 0x3f80],
        [-3.140625, 0xc049],
        [Math.PI, 0x4049],
        [1 + 2 ** -8, 0x3f80],
        [1 + 3 * 2 ** -8, 0x3f82],
        [1 + 2 ** -8 + 2 ** -20, 0x3f81],
        [3.4028234663852886e38, 0x7f80],
        [-0, 0x8000],
        [2 ** -133, 0x0001],
      ];
      for (const [value, bits] of cases) assert.equal(st.f32ToBf16(value), bits, `f32ToBf16(${value})`);
      assert.equal(st.bf16ToF32(0xc049), -3.140625);
      assert.ok(Number.isNaN(st.bf16ToF32(st.f32ToBf16(NaN))));
      for (let bits = 0; bits < 0x10000; bits += 1) {
        if ((bits & 0x7f80) === 0x7f80 && bits & 0x7f) continue;
        assert.equal(st.f32ToBf16(st.bf16ToF32(bits)), bits);
      }
    });

    it('turns tensor bytes into float32 values and back', function () {
      const half = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0x66, 0x2e]);
      assert.deepEqual([...st.toFloat32Array(half, 'F16')], [1, -2, Math.fround(0.0999755859375)]);
      assert.deepEqual(st.fromFloat32Array(st.toFloat32Array(half, 'F16'), 'F16'), half);
      const brain = Buffer.from([0x80, 0x3f, 0x49, 0xc0]);
      assert.deepEqual([...st.toFloat32Array(brain, 'BF16')], [1, -3.140625]);
      assert.deepEqual(st.fromFloat32Array(new Float32Array([1, -3.140625]), 'BF16'), brain);
      assert.deepEqual(st.fromFloat32Array(new Float32Array([0.5, 3]), 'F32'), f32(0.5, 3));
    });
  });
});
