// LyCORIS's LoHa and LoKr rewritten as one plain LoRA pair (lib/lora/factorized.ts): up · down must be the
// factorized ΔW itself, computed here the direct way (products, then the Hadamard or Kronecker product), to float32
// rounding. Model-free and addon-free (the unit tier).
'use strict';
const assert = require('node:assert/strict');
const fz = require('../dist/internal').loraFactorized;

/** A matrix of values from a small deterministic generator (xorshift), in [-1, 1). */
function random(rows, cols, seed) {
  let s = seed >>> 0 || 1;
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i += 1) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = ((s >>> 0) / 2 ** 32) * 2 - 1;
  }
  return fz.matrix(rows, cols, data);
}

function hadamard(x, y) {
  return fz.matrix(
    x.rows,
    x.cols,
    x.data.map((v, i) => v * y.data[i]),
  );
}

/** The largest |a - b| over the largest |b|: 0 for equal matrices. */
function relativeError(a, b) {
  assert.deepEqual([a.rows, a.cols], [b.rows, b.cols]);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.data.length; i += 1) {
    err = Math.max(err, Math.abs(a.data[i] - b.data[i]));
    scale = Math.max(scale, Math.abs(b.data[i]));
  }
  return err / scale;
}

describe('LoHa and LoKr as one LoRA pair', function () {
  it('LoHa: (a1·b1) ⊙ (a2·b2) is up · down of rank r1·r2, to float32 rounding', function () {
    for (const [out, inn, r1, r2] of [
      [6, 5, 2, 3],
      [16, 24, 4, 4],
      [3, 40, 1, 5],
    ]) {
      const a1 = random(out, r1, 1);
      const b1 = random(r1, inn, 2);
      const a2 = random(out, r2, 3);
      const b2 = random(r2, inn, 4);
      const { up, down } = fz.hadamardAsLora(a1, b1, a2, b2);
      assert.deepEqual([up.rows, up.cols, down.rows, down.cols], [out, r1 * r2, r1 * r2, inn]);
      const direct = hadamard(fz.matmul(a1, b1), fz.matmul(a2, b2));
      const err = relativeError(fz.matmul(up, down), direct);
      assert.ok(err < 1e-6, `${out}×${inn}, ranks ${r1} and ${r2}: relative error ${err}`);
    }
  });

  it('LoKr: w1 ⊗ w2 is up · down for every kind of factor, at the smallest rank they allow', function () {
    const full = (rows, cols, seed) => ({ full: random(rows, cols, seed) });
    const low = (rows, cols, r, seed) => ({ a: random(rows, r, seed), b: random(r, cols, seed + 1) });
    const value = (f) => ('full' in f ? f.full : fz.matmul(f.a, f.b));
    const cases = [
      // [w1, w2, expected rank]: LyCORIS's usual linear LoKr (w1 full and small, w2 = a·b), both low-rank, both full
      [full(4, 8, 5), low(16, 20, 3, 6), 4 * 3],
      [full(8, 4, 7), low(16, 20, 3, 8), 4 * 3],
      [low(10, 12, 2, 9), low(6, 7, 3, 11), 2 * 3],
      [full(3, 5, 13), full(4, 2, 14), 3 * 2],
      [low(4, 4, 6, 15), low(5, 6, 2, 17), 4 * 2], // a factor of rank above its sides counts at its side
    ];
    for (const [i, [w1, w2, rank]] of cases.entries()) {
      const { up, down } = fz.kroneckerAsLora(w1, w2);
      assert.equal(up.cols, rank, `case ${i}`);
      assert.equal(fz.kroneckerRank(fz.factorShape(w1), fz.factorShape(w2)), rank, `case ${i}`);
      const direct = fz.kron(value(w1), value(w2));
      const err = relativeError(fz.matmul(up, down), direct);
      assert.ok(err < 1e-6, `case ${i}: relative error ${err}`);
    }
  });

  it('kron and matmul agree with a product worked by hand', function () {
    const a = fz.matrix(2, 2, Float32Array.from([1, 2, 3, 4]));
    const b = fz.matrix(1, 2, Float32Array.from([0, 5]));
    assert.deepEqual([...fz.kron(a, b).data], [0, 5, 0, 10, 0, 15, 0, 20]);
    assert.deepEqual([...fz.matmul(a, fz.matrix(2, 1, Float32Array.from([1, -1]))).data], [-1, -1]);
  });

  it('shapes that do not fit: ERR_ADAPTER_INVALID', function () {
    const code = { code: 'ERR_ADAPTER_INVALID' };
    assert.throws(() => fz.hadamardAsLora(random(4, 2, 1), random(3, 5, 2), random(4, 2, 3), random(2, 5, 4)), code);
    assert.throws(() => fz.hadamardAsLora(random(4, 2, 1), random(2, 5, 2), random(3, 2, 3), random(2, 5, 4)), code);
    assert.throws(
      () => fz.kroneckerAsLora({ a: random(4, 2, 1), b: random(3, 5, 2) }, { full: random(2, 2, 3) }),
      code,
    );
    assert.throws(() => fz.matrix(2, 2, new Float32Array(3)), code);
  });
});

describe('LoHa and LoKr files against peft (the fixtures)', function () {
  const { families } = require('./helpers/fixtures');
  const fs = require('node:fs');
  const { inspectLora, toGenaiLora } = require('../dist/internal').loraFormat;
  const st = require('../dist/internal').safetensors;
  const fx = families.sd15;

  /** {stem: {down, up}} of a safetensors file's bytes, as float32 matrices. */
  function pairs(bytes) {
    const header = st.parseSafetensors(bytes);
    const out = {};
    for (const t of header.tensors) {
      const m = /^(.+)\.lora_(down|up)\.weight$/.exec(t.name);
      if (!m) continue;
      const data = st.toFloat32Array(bytes.subarray(t.offset, t.offset + t.byteLength), t.dtype);
      (out[m[1]] ??= {})[m[2]] = fz.matrix(t.shape[0], t.shape[1], data);
    }
    return out;
  }

  /** ‖a − b‖ / ‖b‖ (Frobenius), in float64. */
  function frobeniusError(a, b) {
    assert.deepEqual([a.rows, a.cols], [b.rows, b.cols]);
    let err = 0;
    let norm = 0;
    for (let i = 0; i < a.data.length; i += 1) {
      err += (a.data[i] - b.data[i]) ** 2;
      norm += b.data[i] ** 2;
    }
    return Math.sqrt(err / norm);
  }

  for (const [algo, ranks] of [
    ['loha', [16]],
    ['lokr', [4, 8]],
  ]) {
    it(`${algo}: every layer's B·A is peft's get_delta_weight (relative error ≤ 1e-5), at the rank it should have`, async function () {
      const file = fx.lora(algo);
      const analysis = await inspectLora(file);
      assert.deepEqual(analysis.ranks, ranks);
      const ours = pairs(await toGenaiLora(file, analysis, { family: 'sd', scale: 'diffusers' }));
      const oracle = pairs(fs.readFileSync(fx.lora(`${algo}-full`)));
      assert.deepEqual(Object.keys(ours).sort(), Object.keys(oracle).sort());
      assert.equal(Object.keys(oracle).length, 40);
      let worst = 0;
      for (const [stem, { down, up }] of Object.entries(ours)) {
        const delta = oracle[stem].up; // its down is the identity
        assert.ok(
          oracle[stem].down.data.every((v, i) => v === (i % (down.cols + 1) === 0 ? 1 : 0)),
          'not the identity',
        );
        worst = Math.max(worst, frobeniusError(fz.matmul(up, down), delta));
      }
      assert.ok(worst <= 1e-5, `worst relative error ${worst}`);
    });
  }
});
