// The catalogue of bad inputs (issue 7 §1): each case gets a MultiloraError with its exact code and a message that
// says what is wrong and what to do; afterwards the pipelines loaded before the case still give their reference
// bytes, and loading correctly still works. One pipeline per role, shared by all cases, so the spec stays fast.
'use strict';
const assert = require('node:assert/strict');
const { cpSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { crc32, deflateSync } = require('node:zlib');
const { Pipeline, MultiloraError, DisposedError } = require('..');
const { families, useTempDir, rejectsWith } = require('./helpers/fixtures');

const fx = families.sd15;
/** The reference call: small and quick, with an adapter. */
const CALL = { seed: 7, steps: 2, width: 32, height: 32, adapters: { a: 0.9 } };
const PLAIN_CALL = { seed: 7, steps: 2, width: 32, height: 32 };
const GOOD = { a: { path: fx.lora('style-a') } };
/** A layer of the tiny SD 1.5 UNet, in kohya names: a LoRA tensor that would otherwise be fine. */
const LAYER = 'lora_unet_down_blocks_0_attentions_0_proj_in';

/** The bytes of a safetensors file: the 8-byte length (or `headerLength`), the header as given, then `data`. */
function safetensors(header, data = Buffer.alloc(0), { headerLength } = {}) {
  const json = Buffer.isBuffer(header)
    ? header
    : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

/** A header entry. */
const tensor = (dtype, shape, begin, end) => ({ dtype, shape, data_offsets: [begin, end] });

const MB = 1024 * 1024;

describe('bad inputs', function () {
  const tmp = useTempDir('multilora-bad-');
  /** Loaded before the cases with adapters a and b: every case ends by checking it still gives `reference`. */
  let shared;
  let reference;
  /** Loaded with no adapters (GenAI's bytes differ then: SDK.md). */
  let plain;
  let plainReference;

  before(async function () {
    [shared, plain] = await Promise.all([
      Pipeline.load(fx.model, { adapters: { ...GOOD, b: { path: fx.lora('style-b') } } }),
      Pipeline.load(fx.model),
    ]);
    reference = (await shared.generate('a boat', CALL)).data;
    plainReference = (await plain.generate('a boat', PLAIN_CALL)).data;
  });
  after(async function () {
    await Promise.all([shared?.dispose(), plain?.dispose()]);
  });
  afterEach(async function () {
    const again = await shared.generate('a boat', CALL);
    assert.ok(again.data.equals(reference), 'the shared pipeline no longer gives its reference bytes');
    assert.deepEqual(shared.adapters.names, ['a', 'b']);
  });

  /** A load with the shared pipeline's good adapter and a bad one named x. */
  const loadWith = (spec) => Pipeline.load(fx.model, { adapters: { ...GOOD, x: spec } });

  describe('the model folder', function () {
    /** A copy of the tiny model, damaged by `damage`. */
    function damaged(name, damage) {
      const dir = path.join(tmp(), name);
      cpSync(fx.model, dir, { recursive: true });
      damage(dir);
      return dir;
    }
    const json = (dir) => path.join(dir, 'model_index.json');

    it('missing: ERR_MODEL_NOT_FOUND', async function () {
      const dir = path.join(tmp(), 'nowhere');
      await rejectsWith(Pipeline.load(dir), 'ERR_MODEL_NOT_FOUND', new RegExp(`^No model folder at ${dir}$`));
    });

    it('a file: ERR_MODEL_NOT_FOUND', async function () {
      const file = path.join(tmp(), 'model.txt');
      writeFileSync(file, 'x');
      await rejectsWith(Pipeline.load(file), 'ERR_MODEL_NOT_FOUND', /model\.txt is a file, not a model folder/);
    });

    it('an empty folder: ERR_MODEL_NOT_FOUND, saying which folder to give', async function () {
      const dir = path.join(tmp(), 'empty');
      mkdirSync(dir);
      await rejectsWith(
        Pipeline.load(dir),
        'ERR_MODEL_NOT_FOUND',
        /empty has no model_index\.json, so it is not a model folder: give the folder that optimum-intel exported \(optimum-cli export openvino .*--task text-to-image/,
      );
    });

    it('a broken model_index.json: ERR_MODEL_INVALID', async function () {
      const dir = damaged('broken-index', (d) =>
        writeFileSync(json(d), '{ "_class_name": "StableDiffusionPipeline", '),
      );
      await rejectsWith(
        Pipeline.load(dir),
        'ERR_MODEL_INVALID',
        /model_index\.json is not valid JSON .*export or download it again/,
      );
    });

    it('a model_index.json that names no pipeline class: ERR_MODEL_INVALID', async function () {
      const dir = damaged('no-class', (d) =>
        writeFileSync(json(d), JSON.stringify({ unet: ['diffusers', 'UNet2DConditionModel'] })),
      );
      await rejectsWith(Pipeline.load(dir), 'ERR_MODEL_INVALID', /names no pipeline class \(its "_class_name"\)/);
    });

    it('an unknown pipeline class: ERR_MODEL_INVALID naming the classes GenAI loads', async function () {
      const dir = damaged('unknown-class', (d) => {
        const index = JSON.parse(readFileSync(json(d), 'utf8'));
        writeFileSync(json(d), JSON.stringify({ ...index, _class_name: 'StableVideoDiffusionPipeline' }));
      });
      await rejectsWith(
        Pipeline.load(dir),
        'ERR_MODEL_INVALID',
        /the pipeline class "StableVideoDiffusionPipeline", which OpenVINO GenAI 2026\.3 cannot load as text-to-image\. It loads StableDiffusionPipeline, .*: export such a model/,
      );
    });

    const parts = [
      [
        'the UNet IR (.xml) missing',
        'unet/openvino_model.xml',
        (f) => rmSync(f),
        /unet\/openvino_model\.xml is missing/,
      ],
      [
        'the UNet weights (.bin) missing',
        'unet/openvino_model.bin',
        (f) => rmSync(f),
        /unet\/openvino_model\.bin \(the weights of unet\/openvino_model\.xml\) is missing/,
      ],
      // Else GenAI loads it, and only the first generate fails.
      [
        'the tokenizer IR missing',
        'tokenizer/openvino_tokenizer.xml',
        (f) => rmSync(f),
        /tokenizer\/openvino_tokenizer\.xml is missing/,
      ],
      [
        'the scheduler config missing',
        'scheduler/scheduler_config.json',
        (f) => rmSync(f),
        /scheduler\/scheduler_config\.json is missing/,
      ],
      [
        'the UNet IR (.xml) truncated',
        'unet/openvino_model.xml',
        (f) => truncateSync(f, 1000),
        /unet\/openvino_model\.xml is cut short \(it does not end with <\/net>\)/,
      ],
      [
        'the UNet weights (.bin) truncated',
        'unet/openvino_model.bin',
        (f) => truncateSync(f, 1000),
        /unet\/openvino_model\.bin holds 1000 bytes, but unet\/openvino_model\.xml reads weights up to byte 3161540/,
      ],
      [
        'the text encoder weights truncated by one byte',
        'text_encoder/openvino_model.bin',
        (f) => truncateSync(f, 130967),
        /text_encoder\/openvino_model\.bin holds 130967 bytes/,
      ],
      // Else GenAI loads it without image-to-image and inpainting, and says nothing.
      [
        'the VAE encoder weights truncated',
        'vae_encoder/openvino_model.bin',
        (f) => truncateSync(f, 4096),
        /vae_encoder\/openvino_model\.bin holds 4096 bytes/,
      ],
    ];
    for (const [what, file, damage, pattern] of parts) {
      it(`${what}: ERR_MODEL_INVALID naming the file, and what to do`, async function () {
        const dir = damaged(what.replace(/\W+/g, '-'), (d) => damage(path.join(d, file)));
        await assert.rejects(Pipeline.load(dir), (err) => {
          assert.ok(err instanceof MultiloraError);
          assert.equal(err.code, 'ERR_MODEL_INVALID', err.message);
          assert.match(err.message, new RegExp(`^The model folder ${dir} is incomplete: `));
          assert.match(err.message, pattern);
          assert.match(
            err.message,
            /Copy or download the whole folder again, or export it again \(optimum-cli export openvino/,
          );
          return true;
        });
      });
    }

    for (const config of ['vae_decoder/config.json', 'scheduler/scheduler_config.json']) {
      it(`a broken ${config}: ERR_MODEL_INVALID naming it (GenAI's JSON error names no file)`, async function () {
        const dir = damaged(`broken-${config.replace(/\W+/g, '-')}`, (d) =>
          writeFileSync(path.join(d, config), '{ "_class_name": '),
        );
        const shown = path.join(dir, config).replace(/[.]/g, '\\.');
        await rejectsWith(
          Pipeline.load(dir),
          'ERR_MODEL_INVALID',
          new RegExp(`^${shown} is not valid JSON \\(.*\\): the model folder is damaged; export or download it again$`),
        );
      });
    }

    it('afterwards, loading a repaired copy works and gives the reference bytes', async function () {
      const dir = damaged('repaired', (d) => truncateSync(path.join(d, 'unet', 'openvino_model.bin'), 1000));
      await rejectsWith(Pipeline.load(dir), 'ERR_MODEL_INVALID', /unet\/openvino_model\.bin holds 1000 bytes/);
      cpSync(path.join(fx.model, 'unet', 'openvino_model.bin'), path.join(dir, 'unet', 'openvino_model.bin'));
      const again = await Pipeline.load(dir);
      try {
        assert.equal(again.defaults.imageInputs, true);
        assert.ok((await again.generate('a boat', PLAIN_CALL)).data.equals(plainReference));
      } finally {
        await again.dispose();
      }
    });
  });

  describe('the adapter file', function () {
    /** Writes `bytes` to a file named `name` in the temp folder. */
    function file(name, bytes) {
      const f = path.join(tmp(), name);
      writeFileSync(f, bytes);
      return f;
    }
    const pair = (dtype = 'F32') => ({
      [`${LAYER}.lora_down.weight`]: tensor(dtype, [4, 32], 0, 512),
      [`${LAYER}.lora_up.weight`]: tensor(dtype, [32, 4], 512, 1024),
    });

    it('missing: ERR_ADAPTER_NOT_FOUND naming the adapter', async function () {
      const f = path.join(tmp(), 'none.safetensors');
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_NOT_FOUND',
        new RegExp(`^No adapter file at ${f} \\(adapter "x"\\)$`),
      );
    });

    it('a directory: ERR_ADAPTER_INVALID', async function () {
      const dir = path.join(tmp(), 'dir.safetensors');
      mkdirSync(dir);
      await rejectsWith(
        loadWith({ path: dir }),
        'ERR_ADAPTER_INVALID',
        /dir\.safetensors is not a file \(adapter "x"\)/,
      );
    });

    it('a named pipe under the right name: ERR_ADAPTER_INVALID, without blocking on it', async function () {
      const fifo = path.join(tmp(), 'pipe.safetensors');
      const made = spawnSync('mkfifo', [fifo]);
      if (made.status !== 0) this.skip();
      await rejectsWith(
        loadWith({ path: fifo }),
        'ERR_ADAPTER_INVALID',
        /pipe\.safetensors is not a file \(adapter "x"\)/,
      );
    });

    it('not a .safetensors file (another extension): ERR_ADAPTER_INVALID', async function () {
      const f = file('lora.ckpt', readFileSync(fx.lora('style-a')));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        /lora\.ckpt is not a \.safetensors file, the only LoRA format GenAI reads/,
      );
    });

    it('not safetensors inside (text under the right name): ERR_ADAPTER_INVALID', async function () {
      const f = file('text.safetensors', 'this is a text file, not a LoRA\n');
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        /^Adapter "x": Safetensors file .*text\.safetensors is invalid: its header length is \d+ bytes, but only 24 bytes follow/,
      );
    });

    it('empty: ERR_ADAPTER_INVALID', async function () {
      const f = file('empty.safetensors', Buffer.alloc(0));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        /it is 0 bytes long, shorter than the 8-byte header length/,
      );
    });

    it('truncated in its data: ERR_ADAPTER_INVALID naming a tensor that ends past the data', async function () {
      const f = file('cut.safetensors', readFileSync(fx.lora('style-a')).subarray(0, 30000));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        /cut\.safetensors is invalid: tensor "lora_\w+\.\w+(\.weight)?" ends at byte \d+ of the data section, which holds only 13256 bytes/,
      );
    });

    it('a header length beyond the file (truncated in its header): ERR_ADAPTER_INVALID', async function () {
      const f = file('cut-header.safetensors', readFileSync(fx.lora('style-a')).subarray(0, 1000));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        /its header length is 16736 bytes, but only 992 bytes follow the 8-byte length/,
      );
    });

    it('a header that is not JSON: ERR_ADAPTER_INVALID', async function () {
      const f = file('not-json.safetensors', safetensors('{"lora_unet_x.lora_down.weight": {"dtype": "F32",,}'));
      await rejectsWith(loadWith({ path: f }), 'ERR_ADAPTER_INVALID', /its header is not valid JSON \(/);
    });

    it('a header that is not UTF-8: ERR_ADAPTER_INVALID', async function () {
      const f = file('latin1.safetensors', safetensors(Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d])));
      await rejectsWith(loadWith({ path: f }), 'ERR_ADAPTER_INVALID', /its 7-byte header is not valid UTF-8/);
    });

    it('a header that is JSON but not an object: ERR_ADAPTER_INVALID', async function () {
      const f = file('array.safetensors', safetensors('[1, 2, 3]'));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        /its header is an array of length 3, not a JSON object/,
      );
    });

    it('tensor offsets out of bounds: ERR_ADAPTER_INVALID', async function () {
      const f = file('oob.safetensors', safetensors(pair(), Buffer.alloc(600)));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        new RegExp(
          `tensor "${LAYER}\\.lora_up\\.weight" ends at byte 1024 of the data section, which holds only 600 bytes`,
        ),
      );
    });

    it('tensors whose data overlap: ERR_ADAPTER_INVALID', async function () {
      const header = { ...pair(), [`${LAYER}.lora_up.weight`]: tensor('F32', [32, 4], 256, 768) };
      const f = file('overlap.safetensors', safetensors(header, Buffer.alloc(1024)));
      await rejectsWith(loadWith({ path: f }), 'ERR_ADAPTER_INVALID', /\[0, 512\) and .* \[256, 768\) overlap/);
    });

    it('an unsupported dtype (I64): ERR_ADAPTER_INVALID naming the dtypes GenAI reads', async function () {
      const header = {
        [`${LAYER}.lora_down.weight`]: tensor('I64', [4, 32], 0, 1024),
        [`${LAYER}.lora_up.weight`]: tensor('I64', [32, 4], 1024, 2048),
      };
      const f = file('i64.safetensors', safetensors(header, Buffer.alloc(2048)));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        /has dtype "I64", which LoRA files for GenAI cannot use \(OpenVINO GenAI 2026\.3 reads only F32, F16 and BF16; an alpha of one element may be I64 or I32\)/,
      );
    });

    it('a dtype that does not exist: ERR_ADAPTER_INVALID', async function () {
      const f = file(
        'f33.safetensors',
        safetensors({ ...pair(), [`${LAYER}.lora_up.weight`]: tensor('F33', [32, 4], 512, 1024) }, Buffer.alloc(1024)),
      );
      await rejectsWith(loadWith({ path: f }), 'ERR_ADAPTER_INVALID', /has the unknown dtype "F33"/);
    });

    /** Runs `load`, and asserts that the process's memory grew by less than 50 MB meanwhile. */
    async function withoutAllocation(load) {
      const before = process.memoryUsage().rss;
      await load();
      const grown = (process.memoryUsage().rss - before) / MB;
      assert.ok(grown < 50, `RSS grew by ${grown.toFixed(1)} MB`);
    }

    it('a header length of 2^63: ERR_ADAPTER_INVALID, with no allocation of it', async function () {
      const f = file('huge-header.safetensors', safetensors('{}', Buffer.alloc(0), { headerLength: 2n ** 63n }));
      await withoutAllocation(() =>
        rejectsWith(
          loadWith({ path: f }),
          'ERR_ADAPTER_INVALID',
          /its header length is 9223372036854775808 bytes, but only 2 bytes follow/,
        ),
      );
    });

    it('a header length of 2^64-1 in an in-memory adapter (data: Buffer): ERR_ADAPTER_INVALID, no allocation', async function () {
      const bytes = safetensors('{}', Buffer.alloc(0), { headerLength: 2n ** 64n - 1n });
      await withoutAllocation(() =>
        rejectsWith(
          loadWith({ data: bytes }),
          'ERR_ADAPTER_INVALID',
          /^Adapter "x" \(<10 bytes>\): The in-memory safetensors file is invalid: its header length is 18446744073709551615 bytes/,
        ),
      );
    });

    it('a tensor claiming terabytes (shape [1e6, 1e6], offsets to 4e12): ERR_ADAPTER_INVALID, no allocation', async function () {
      const header = { ...pair(), [`${LAYER}.lora_up.weight`]: tensor('F32', [1e6, 1e6], 512, 4e12 + 512) };
      const f = file('terabytes.safetensors', safetensors(header, Buffer.alloc(1024)));
      await withoutAllocation(() =>
        rejectsWith(
          loadWith({ path: f }),
          'ERR_ADAPTER_INVALID',
          /ends at byte 4000000000512 of the data section, which holds only 1024 bytes/,
        ),
      );
    });

    it('a shape claiming terabytes within small offsets: ERR_ADAPTER_INVALID, no allocation', async function () {
      const header = { ...pair(), [`${LAYER}.lora_up.weight`]: tensor('F32', [1e6, 1e6, 1e6], 512, 1024) };
      const f = file('terashape.safetensors', safetensors(header, Buffer.alloc(1024)));
      await withoutAllocation(() =>
        rejectsWith(
          loadWith({ path: f }),
          'ERR_ADAPTER_INVALID',
          /holds 512 bytes, but dtype F32 and shape \[1000000,1000000,1000000\] need more than the 1024 bytes/,
        ),
      );
    });

    it('a NaN weight: ERR_ADAPTER_INVALID (registered, it turned every image of the pipeline black)', async function () {
      const data = Buffer.alloc(1024);
      data.writeFloatLE(NaN, 600);
      const f = file('nan.safetensors', safetensors(pair(), data));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        new RegExp(
          `^Adapter "x": its tensor "${LAYER}\\.lora_up\\.weight" holds a NaN or infinite value \\(element 22\\)\\. .*would turn every image of the pipeline black`,
        ),
      );
    });

    it("a NaN deep in a file's tensor, in each float dtype: ERR_ADAPTER_INVALID naming its element", async function () {
      // Rank 64: 2048 values a tensor, so the value lies past the addon's first block of 1024.
      for (const [dtype, size, write] of [
        ['F32', 4, (buf, at) => buf.writeFloatLE(NaN, at)],
        ['F16', 2, (buf, at) => buf.writeUInt16LE(0x7e00, at)],
        ['BF16', 2, (buf, at) => buf.writeUInt16LE(0xff80, at)], // -Infinity in bfloat16
      ]) {
        const bytes = 2048 * size;
        const data = Buffer.alloc(2 * bytes);
        write(data, bytes + 1500 * size);
        const header = {
          [`${LAYER}.lora_down.weight`]: tensor(dtype, [64, 32], 0, bytes),
          [`${LAYER}.lora_up.weight`]: tensor(dtype, [32, 64], bytes, 2 * bytes),
        };
        const f = file(`deep-${dtype}.safetensors`, safetensors(header, data));
        await rejectsWith(
          loadWith({ path: f }),
          'ERR_ADAPTER_INVALID',
          new RegExp(`lora_up\\.weight" holds a NaN or infinite value \\(element 1500\\)`),
        );
      }
    });

    it('an infinite F16 weight, added to the running pipeline: ERR_ADAPTER_INVALID, its set and bytes unchanged', async function () {
      const data = Buffer.alloc(512);
      data.writeUInt16LE(0x7c00, 2); // +Infinity in float16
      const header = {
        [`${LAYER}.lora_down.weight`]: tensor('F16', [4, 32], 0, 256),
        [`${LAYER}.lora_up.weight`]: tensor('F16', [32, 4], 256, 512),
      };
      await rejectsWith(
        shared.adapters.add('x', { data: safetensors(header, data) }),
        'ERR_ADAPTER_INVALID',
        /lora_down\.weight" holds a NaN or infinite value \(element 1\)/,
      );
      assert.equal(shared.rebuilds, 0);
    });

    it('the same tensor name twice in the header: ERR_ADAPTER_INVALID', async function () {
      const entry = JSON.stringify(tensor('F32', [4, 32], 0, 512));
      const text = `{"${LAYER}.lora_down.weight":${entry},"${LAYER}.lora_down.weight":${entry}}`;
      const f = file('twice.safetensors', safetensors(text, Buffer.alloc(512)));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_INVALID',
        new RegExp(`its header names "${LAYER}\\.lora_down\\.weight" twice`),
      );
    });

    it('a LoRA made for another base model: ERR_ADAPTER_INCOMPATIBLE naming a layer and both shapes', async function () {
      await rejectsWith(
        loadWith({ path: fx.lora('wrong-base') }),
        'ERR_ADAPTER_INCOMPATIBLE',
        /Adapter "x" does not fit this model \(a LoRA made for another base model\?\): its layer "lora_\w+" has A \[4, 64\] and B \[64, 4\], but the model's layer ".+" has weights \[32, 32\]/,
      );
    });

    it('a LoRA that matches no layer: ERR_ADAPTER_UNMATCHED', async function () {
      await rejectsWith(
        loadWith({ path: fx.lora('unmatched') }),
        'ERR_ADAPTER_UNMATCHED',
        /Adapter "x" patches no layer of this sd model \(StableDiffusionPipeline\)/,
      );
    });

    it('a valid safetensors file with no tensors: ERR_ADAPTER_FORMAT naming the adapter', async function () {
      const f = file('no-tensors.safetensors', safetensors({ __metadata__: { format: 'pt' } }));
      await rejectsWith(
        loadWith({ path: f }),
        'ERR_ADAPTER_FORMAT',
        /^Adapter "x" \(.*no-tensors\.safetensors\): The LoRA file holds no tensors/,
      );
    });

    it('two adapters registered with the same name (catalogue and options): ERR_INVALID_ARGUMENT', async function () {
      const catalog = file('catalog.json', JSON.stringify({ a: { path: fx.lora('style-b') } }));
      await rejectsWith(
        Pipeline.load(fx.model, { catalog, adapters: GOOD }),
        'ERR_INVALID_ARGUMENT',
        /Adapter "a" is in both the catalogue and options\.adapters/,
      );
    });

    it('a catalogue that names one adapter twice: ERR_INVALID_ARGUMENT (JSON.parse would keep the last)', async function () {
      const a = JSON.stringify(fx.lora('style-a'));
      const catalog = file(
        'twice.json',
        `{ "a": { "path": ${a} }, "b": { "path": ${a} }, "a": { "path": ${a}, "alpha": 0.5 } }`,
      );
      await rejectsWith(
        Pipeline.load(fx.model, { catalog }),
        'ERR_INVALID_ARGUMENT',
        /twice\.json names adapter "a" twice: give each adapter one entry/,
      );
    });

    it('a bad adapter added to a running pipeline: rejected, and the pipeline keeps its set and bytes', async function () {
      const f = file('added.safetensors', safetensors(pair('I64'), Buffer.alloc(2048)));
      await rejectsWith(
        shared.adapters.add('x', { path: f }),
        'ERR_ADAPTER_INVALID',
        /^Adapter "x": Safetensors file .*added\.safetensors is invalid/,
      );
      assert.equal(shared.rebuilds, 0);
    });

    it('afterwards, loading with good adapters works and gives the reference bytes', async function () {
      const again = await Pipeline.load(fx.model, { adapters: GOOD });
      try {
        assert.ok((await again.generate('a boat', CALL)).data.equals(reference));
      } finally {
        await again.dispose();
      }
    });
  });

  describe('the options', function () {
    const cases = [
      [
        'a width not a multiple of the VAE scale',
        { width: 33 },
        /Expected a multiple of 2 \(the model's VAE scale factor\) for options\.width but received 33/,
      ],
      ['a zero width', { width: 0 }, /Expected an integer from 2 to 8192 for options\.width but received 0/],
      ['a negative height', { height: -64 }, /Expected an integer from 2 to 8192 for options\.height but received -64/],
      [
        'a height above the limit',
        { height: 8194 },
        /Expected an integer from 2 to 8192 for options\.height but received 8194/,
      ],
      ['a width that is not an integer', { width: 32.5 }, /for options\.width but received 32\.5/],
      ['a width given as a string', { width: '32' }, /for options\.width but received "32"/],
      [
        'a NaN guidance scale',
        { guidanceScale: NaN },
        /Expected a finite number from 0 to 100 for options\.guidanceScale but received NaN/,
      ],
      ['an Infinity guidance scale', { guidanceScale: Infinity }, /options\.guidanceScale but received Infinity/],
      [
        'a NaN alpha',
        { adapters: { a: NaN } },
        /Expected a finite number from -100 to 100 for options\.adapters\["a"\] but received NaN/,
      ],
      ['an Infinity alpha', { adapters: { b: -Infinity } }, /options\.adapters\["b"\] but received -Infinity/],
      ['zero steps', { steps: 0 }, /Expected an integer from 1 to 1000 for options\.steps but received 0/],
      [
        'a huge number of steps',
        { steps: 1e9 },
        /Expected an integer from 1 to 1000 for options\.steps but received 1000000000/,
      ],
      // GenAI 2026.3's PNDM (the fixture's own scheduler) reads past its table at 1 step: random or black images.
      [
        "one step with the model's PNDM scheduler",
        { steps: 1 },
        /Expected at least 2 steps with scheduler "auto" \(this model's own, PNDM\) but received 1: .*random or black/,
      ],
      [
        'one step with PNDM asked for',
        { steps: 1, scheduler: 'pndm' },
        /Expected at least 2 steps with scheduler "pndm" but received 1/,
      ],
      ['a negative seed', { seed: -1 }, /Expected an integer from 0 to 4294967295 for options\.seed but received -1/],
      ['a seed that is not an integer', { seed: 0.5 }, /options\.seed but received 0\.5/],
      ['a seed above 2^32-1', { seed: 2 ** 32 }, /options\.seed but received 4294967296/],
      ['a seed given as a BigInt', { seed: 7n }, /options\.seed but received 7n/],
      ['zero images', { numImages: 0 }, /Expected an integer from 1 to 16 for options\.numImages but received 0/],
      ['a huge number of images', { numImages: 1e6 }, /options\.numImages but received 1000000/],
      ['an unknown adapter', { adapters: ['a', 'styleb'] }, /Unknown adapter "styleb"; this pipeline has "a", "b"/],
      [
        'an adapter named with a typo',
        { adapters: { A: 1 } },
        /Unknown adapter "A" \(did you mean "a"\?\); this pipeline has "a", "b"/,
      ],
      ['an adapter named twice', { adapters: ['b', 'b'] }, /Adapter "b" is named twice/],
      [
        'an option key with a typo',
        { sede: 3 },
        /Unknown option "sede" in the generate options: did you mean "seed"\?; the known options are adapters, /,
      ],
      [
        'an option key in the wrong case',
        { guidancescale: 3 },
        /Unknown option "guidancescale" .*did you mean "guidanceScale"\?/,
      ],
      [
        'an unknown option key',
        { quality: 'best' },
        /Unknown option "quality" in the generate options; the known options are /,
      ],
      [
        'strength, which text-to-image does not take',
        { strength: 0.5 },
        /Unknown option "strength" in the generate options/,
      ],
      [
        'options of a class instance',
        new (class Settings {})(),
        /Expected an object for options but received an instance of Settings/,
      ],
      [
        'a scheduler GenAI does not have',
        { scheduler: 'dpm++' },
        /Expected one of auto, lcm, ddim, euler, flow-match-euler, pndm, euler-ancestral for options\.scheduler but received "dpm\+\+"/,
      ],
      [
        'a generator that does not exist',
        { generator: 'numpy' },
        /Expected "genai" or "torch" for options\.generator but received "numpy"/,
      ],
      [
        'an onProgress that is not a function',
        { onProgress: 'log' },
        /Expected a function for options\.onProgress but received "log"/,
      ],
      [
        'a signal that is not an AbortSignal',
        { signal: { aborted: false } },
        /Expected an AbortSignal for options\.signal but received an object \(Object\)/,
      ],
      [
        'an output mode that does not exist',
        { output: 'share' },
        /Expected "copy" or "borrow" for options\.output but received "share"/,
      ],
    ];
    for (const [what, options, pattern] of cases) {
      it(`${what}: ERR_INVALID_ARGUMENT`, async function () {
        const call = options.constructor === Object ? { ...CALL, ...options } : options;
        await rejectsWith(shared.generate('a boat', call), 'ERR_INVALID_ARGUMENT', pattern);
      });
    }

    const strengths = [
      ['a negative strength', -0.1, /Expected a finite number from 0 to 1 for options\.strength but received -0\.1/],
      ['a strength above 1', 1.5, /options\.strength but received 1\.5/],
      ['a NaN strength', NaN, /options\.strength but received NaN/],
      // GenAI 2026.3 fails with no step to run, and with the LCM scheduler crashes the process (SIGSEGV).
      ['strength 0 (no step to run)', 0, /Expected steps x strength of at least 1 but received 2 x 0/],
    ];
    for (const [what, strength, pattern] of strengths) {
      it(`image-to-image with ${what}: ERR_INVALID_ARGUMENT`, async function () {
        const image = { data: reference, width: 32, height: 32 };
        await rejectsWith(
          shared.imageToImage('a boat', image, { seed: 1, steps: 2, strength }),
          'ERR_INVALID_ARGUMENT',
          pattern,
        );
      });
    }

    it("image-to-image given a width: ERR_INVALID_ARGUMENT (the size is the image's)", async function () {
      const image = { data: reference, width: 32, height: 32 };
      await rejectsWith(
        shared.imageToImage('a boat', image, { width: 64 }),
        'ERR_INVALID_ARGUMENT',
        /Unknown option "width" in the options/,
      );
    });

    it('a prompt that is not a string: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(
        shared.generate(['a boat'], CALL),
        'ERR_INVALID_ARGUMENT',
        /Expected a string of at most 100000 characters for prompt but received an array of length 1/,
      );
      await rejectsWith(shared.generate(undefined, CALL), 'ERR_INVALID_ARGUMENT', /for prompt but received undefined/);
    });

    it('a prompt over 100,000 characters: ERR_INVALID_ARGUMENT saying the limit; one at the limit works', async function () {
      await rejectsWith(
        shared.generate('a'.repeat(100_001), CALL),
        'ERR_INVALID_ARGUMENT',
        /Expected a string of at most 100000 characters for prompt but received "aaa/,
      );
      await rejectsWith(
        shared.generate('x', { ...CALL, negativePrompt: 'b'.repeat(100_001) }),
        'ERR_INVALID_ARGUMENT',
        /at most 100000 characters for options\.negativePrompt/,
      );
      const long = await shared.generate('a boat '.repeat(14_285), CALL);
      assert.equal(long.data.length, 32 * 32 * 3);
    });

    it('adapters given to a pipeline loaded without any: ERR_INVALID_ARGUMENT saying how to register them', async function () {
      await rejectsWith(
        plain.generate('a boat', { ...PLAIN_CALL, adapters: { a: 1 } }),
        'ERR_INVALID_ARGUMENT',
        /Unknown adapter "a": this pipeline has no adapters\. Register adapters when loading it .*pipeline\.adapters\.add\(\)/,
      );
      assert.ok((await plain.generate('a boat', PLAIN_CALL)).data.equals(plainReference));
    });
  });

  describe('the load options', function () {
    it('a cache folder that is a file: ERR_INVALID_ARGUMENT', async function () {
      const file = path.join(tmp(), 'cache-file');
      writeFileSync(file, 'x');
      await rejectsWith(
        Pipeline.load(fx.model, { cacheDir: file }),
        'ERR_INVALID_ARGUMENT',
        /Cannot make the cache folder .*cache-file: EEXIST/,
      );
    });

    it('a catalogue that is missing, or not an object of adapters: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(
        Pipeline.load(fx.model, { catalog: path.join(tmp(), 'none.json') }),
        'ERR_INVALID_ARGUMENT',
        /Cannot read the catalogue .*none\.json: ENOENT/,
      );
      const list = path.join(tmp(), 'list.json');
      writeFileSync(list, JSON.stringify([fx.lora('style-a')]));
      await rejectsWith(
        Pipeline.load(fx.model, { catalog: list }),
        'ERR_INVALID_ARGUMENT',
        /The catalogue .*list\.json must hold an object of adapters by name/,
      );
    });

    it('an adapter given as a bare path, or with both path and data: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { a: fx.lora('style-a') } }),
        'ERR_INVALID_ARGUMENT',
        /Expected an object for adapters\["a"\] but received ".*style-a\.safetensors"/,
      );
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { a: { path: fx.lora('style-a'), data: Buffer.alloc(8) } } }),
        'ERR_INVALID_ARGUMENT',
        /adapters\["a"\] needs exactly one of path and data/,
      );
    });

    it('an unknown load option, and an adapter alpha of Infinity: ERR_INVALID_ARGUMENT before anything is read', async function () {
      await rejectsWith(
        Pipeline.load(fx.model, { adapter: GOOD }),
        'ERR_INVALID_ARGUMENT',
        /Unknown option "adapter" in the load options: did you mean "adapters"\?/,
      );
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { a: { path: fx.lora('style-a'), alpha: Infinity } } }),
        'ERR_INVALID_ARGUMENT',
        /Expected a finite number from -100 to 100 for adapters\["a"\]\.alpha but received Infinity/,
      );
    });
  });

  describe('the input image of image-to-image and inpainting', function () {
    /** PNG bytes of one IHDR (8-bit RGB of the size given), one IDAT holding `idat`, and IEND. */
    function png(width, height, idat = deflateSync(Buffer.alloc(0))) {
      const chunk = (type, data) => {
        const length = Buffer.alloc(4);
        length.writeUInt32BE(data.length);
        const crc = Buffer.alloc(4);
        crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'latin1'), data])));
        return Buffer.concat([length, Buffer.from(type, 'latin1'), data, crc]);
      };
      const ihdr = Buffer.alloc(13);
      ihdr.writeUInt32BE(width, 0);
      ihdr.writeUInt32BE(height, 4);
      ihdr[8] = 8; // bit depth
      ihdr[9] = 2; // RGB
      const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
    }
    const image = () => ({ data: reference, width: 32, height: 32 });

    it('a 65-byte PNG claiming 2^31-1 x 2^31-1 pixels: ERR_INVALID_ARGUMENT before decoding (it crashed zlib)', async function () {
      const before = process.memoryUsage().rss;
      await rejectsWith(
        shared.imageToImage('a boat', png(2 ** 31 - 1, 2 ** 31 - 1), { seed: 1, steps: 2 }),
        'ERR_INVALID_ARGUMENT',
        /Expected an integer from 1 to 8192 for image\.width but received 2147483647/,
      );
      assert.ok(process.memoryUsage().rss - before < 50 * MB);
    });

    it('a PNG mask claiming 30000 x 30000 pixels: ERR_INVALID_ARGUMENT before decoding (it took minutes)', async function () {
      await rejectsWith(
        shared.inpaint('a boat', image(), png(30000, 30000)),
        'ERR_INVALID_ARGUMENT',
        /Expected an integer from 1 to 8192 for mask\.width but received 30000/,
      );
    });

    it('a PNG whose sides are not multiples of the VAE scale: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(
        shared.imageToImage('a boat', png(64, 33)),
        'ERR_INVALID_ARGUMENT',
        /Expected a multiple of 2 \(the model's VAE scale factor\) for image\.height but received 33/,
      );
    });

    it('bytes that are not a PNG, and a PNG cut short: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(
        shared.imageToImage('a boat', Buffer.from('GIF89a, not a PNG at all')),
        'ERR_INVALID_ARGUMENT',
        /Not a readable PNG: 24 bytes without the PNG signature/,
      );
      const whole = png(32, 32, deflateSync(Buffer.alloc(32 * (1 + 32 * 3))));
      await rejectsWith(
        shared.imageToImage('a boat', whole.subarray(0, whole.length - 20)),
        'ERR_INVALID_ARGUMENT',
        /Not a readable PNG: /,
      );
    });

    it('a PNG whose data inflates far past its size (a zip bomb): ERR_INVALID_ARGUMENT, no allocation', async function () {
      const bomb = png(32, 32, deflateSync(Buffer.alloc(64 * MB)));
      const before = process.memoryUsage().rss;
      await rejectsWith(shared.imageToImage('a boat', bomb), 'ERR_INVALID_ARGUMENT', /Not a readable PNG: /);
      assert.ok(process.memoryUsage().rss - before < 50 * MB);
    });

    it('raw pixels of the wrong length, or a mask of another size: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(
        shared.imageToImage('a boat', { data: reference, width: 32, height: 30 }),
        'ERR_INVALID_ARGUMENT',
        /Expected 2880 bytes \(32x30x3\) for image\.data but received a Buffer of 3072 bytes/,
      );
      const mask = { data: Buffer.alloc(16 * 16, 255), width: 16, height: 16, channels: 1 };
      await rejectsWith(
        shared.inpaint('a boat', image(), mask),
        'ERR_INVALID_ARGUMENT',
        /Expected a mask of the image's size \(32x32\) but received 16x16/,
      );
    });
  });

  describe('on the SDXL fixture', function () {
    const xl = families.sdxl;
    const XL_CALL = { seed: 7, steps: 2, width: 32, height: 32, adapters: { a: 0.9 } };
    let sdxl;
    let xlReference;
    before(async function () {
      sdxl = await Pipeline.load(xl.model, { adapters: { a: { path: xl.lora('style-a') } } });
      xlReference = (await sdxl.generate('a boat', XL_CALL)).data;
    });
    after(async function () {
      await sdxl?.dispose();
    });
    afterEach(async function () {
      assert.ok(
        (await sdxl.generate('a boat', XL_CALL)).data.equals(xlReference),
        'the SDXL pipeline no longer gives its reference bytes',
      );
      assert.deepEqual(sdxl.adapters.names, ['a']);
    });
    const damagedXl = (name, file, damage) => {
      const dir = path.join(tmp(), name);
      cpSync(xl.model, dir, { recursive: true });
      damage(path.join(dir, file));
      return dir;
    };

    it('an SD 1.5 LoRA: ERR_ADAPTER_INCOMPATIBLE naming a layer and both shapes', async function () {
      await rejectsWith(
        Pipeline.load(xl.model, { adapters: { x: { path: fx.lora('style-a') } } }),
        'ERR_ADAPTER_INCOMPATIBLE',
        /Adapter "x" does not fit this model .*has A \[4, 32\] and B \[64, 4\], but the model's layer ".+" has weights/,
      );
    });

    it('an SD 1.5 LoRA added to the running SDXL pipeline: ERR_ADAPTER_INCOMPATIBLE, nothing rebuilt', async function () {
      await rejectsWith(
        sdxl.adapters.add('x', { path: fx.lora('style-b') }),
        'ERR_ADAPTER_INCOMPATIBLE',
        /Adapter "x" does not fit this model/,
      );
      assert.equal(sdxl.rebuilds, 0);
    });

    it('an SDXL LoRA that matches no layer: ERR_ADAPTER_UNMATCHED naming the parts it has', async function () {
      await rejectsWith(
        Pipeline.load(xl.model, { adapters: { x: { path: xl.lora('unmatched') } } }),
        'ERR_ADAPTER_UNMATCHED',
        /Adapter "x" patches no layer of this sdxl model \(StableDiffusionXLPipeline\): none of its 16 layers \(parts: unet, text_encoder, text_encoder_2\)/,
      );
    });

    it("the second text encoder's weights truncated: ERR_MODEL_INVALID naming them", async function () {
      const dir = damagedXl('xl-te2', 'text_encoder_2/openvino_model.bin', (f) => truncateSync(f, 5000));
      await rejectsWith(
        Pipeline.load(dir),
        'ERR_MODEL_INVALID',
        /is incomplete: text_encoder_2\/openvino_model\.bin holds 5000 bytes, but text_encoder_2\/openvino_model\.xml reads weights up to byte \d+/,
      );
    });

    it('the second tokenizer missing: ERR_MODEL_INVALID naming it', async function () {
      const dir = damagedXl('xl-tok2', 'tokenizer_2/openvino_tokenizer.xml', (f) => rmSync(f));
      await rejectsWith(
        Pipeline.load(dir),
        'ERR_MODEL_INVALID',
        /is incomplete: tokenizer_2\/openvino_tokenizer\.xml is missing/,
      );
    });

    it('image-to-image at strength 0 with the LCM scheduler (a SIGSEGV in GenAI 2026.3): ERR_INVALID_ARGUMENT', async function () {
      const image = { data: xlReference, width: XL_CALL.width ?? 64, height: XL_CALL.height ?? 64 };
      await rejectsWith(
        sdxl.imageToImage('a boat', image, { seed: 1, steps: 4, strength: 0, scheduler: 'lcm' }),
        'ERR_INVALID_ARGUMENT',
        /4 x 0/,
      );
    });

    it('the PNDM scheduler on a model whose config leaves skip_prk_steps off: ERR_INVALID_ARGUMENT (was ERR_GENAI)', async function () {
      await rejectsWith(
        sdxl.generate('a boat', { ...XL_CALL, scheduler: 'pndm' }),
        'ERR_INVALID_ARGUMENT',
        /options\.scheduler "pndm" cannot be used: .*skip_prk_steps/,
      );
    });

    it('a size that is not a multiple of the VAE scale, and an alpha of NaN: ERR_INVALID_ARGUMENT', async function () {
      await rejectsWith(
        sdxl.generate('a boat', { ...XL_CALL, height: 31 }),
        'ERR_INVALID_ARGUMENT',
        /a multiple of 2 .* for options\.height but received 31/,
      );
      await rejectsWith(
        sdxl.generate('a boat', { ...XL_CALL, adapters: { a: NaN } }),
        'ERR_INVALID_ARGUMENT',
        /options\.adapters\["a"\] but received NaN/,
      );
    });
  });

  describe('calls after dispose', function () {
    let gone;
    before(async function () {
      gone = plain;
      plain = undefined;
      await gone.dispose();
    });

    it('generate: ERR_DISPOSED (before the arguments are checked)', async function () {
      assert.equal(gone.disposed, true);
      await rejectsWith(gone.generate('a boat', PLAIN_CALL), 'ERR_DISPOSED', /The pipeline was disposed/);
      await assert.rejects(gone.generate(42, { nope: 1 }), DisposedError);
    });

    it('imageToImage and inpaint: ERR_DISPOSED', async function () {
      const image = { data: plainReference, width: 32, height: 32 };
      await rejectsWith(gone.imageToImage('a boat', image), 'ERR_DISPOSED', /disposed/);
      await rejectsWith(gone.inpaint('a boat', image, image), 'ERR_DISPOSED', /disposed/);
    });

    it('adapters.add and adapters.remove: ERR_DISPOSED; dispose again is a no-op', async function () {
      await rejectsWith(gone.adapters.add('a', GOOD.a), 'ERR_DISPOSED', /disposed/);
      await rejectsWith(gone.adapters.remove('a'), 'ERR_DISPOSED', /disposed/);
      await gone.dispose();
      assert.equal(gone.disposed, true);
    });
  });
});
