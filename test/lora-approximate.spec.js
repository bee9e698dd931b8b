// `approximate: { rank }` (lib/lora/approximate.ts, convertForGenai in lib/lora/format.ts): a low-rank LoRA fitted by
// truncated SVD to what GenAI would run at too high a rank (LoHa, LoKr) or not at all (a full weight difference).
// The oracle of the fit is numpy's SVD (the SDK venv): by Eckart–Young no rank-k matrix is nearer to ΔW than its
// truncation, so the error reported must be the optimum's, and the error recomputed here from the pair written.
// Through the real pipeline (sd15 fixture, f32), a full difference of rank 16 fitted at rank 16 gives the image of
// the same change as a plain LoRA; the rank-2 fit is visibly further away.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {
  diagnose,
  loraFuse,
  model,
  loraApproximate: ap,
  loraFactorized: fz,
  loraFormat: lf,
  safetensors: st,
} = require('../dist/internal');
const { Pipeline } = require('..');
const { families, meanAbsDiff, rejectsWith, sdk, useTempDir } = require('./helpers/fixtures');

/** A seeded matrix with singular values 1, decay, decay², ... (numpy-free: Q factors of random matrices). */
function spectrum(rows, cols, decay, seed) {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 30 - 1;
  };
  const n = Math.min(rows, cols);
  const u = fz.matrix(rows, n, Float32Array.from({ length: rows * n }, next));
  const v = fz.matrix(n, cols, Float32Array.from({ length: n * cols }, next));
  for (let j = 0; j < n; j += 1) for (let i = 0; i < rows; i += 1) u.data[i * n + j] *= decay ** j;
  return { up: u, down: v };
}

/** numpy's optimum: ‖ΔW − its best rank-k fit‖ / ‖ΔW‖, for each case's ΔW = up · down and rank k. */
function optimum(cases) {
  const script = `
import json, sys
import numpy as np
out = []
for c in json.load(sys.stdin):
    w = np.array(c["w"], dtype=np.float64).reshape(c["rows"], c["cols"])
    s = np.linalg.svd(w, compute_uv=False)
    out.append(float(np.sqrt((s[c["k"]:] ** 2).sum() / (s ** 2).sum())))
print(json.dumps(out))
`;
  const input = JSON.stringify(cases.map(({ w, k }) => ({ w: Array.from(w.data), rows: w.rows, cols: w.cols, k })));
  const r = spawnSync(sdk().python, ['-c', script], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** ‖a − b‖ / ‖b‖, here, in float64. */
function relative(a, b) {
  let err = 0;
  let norm = 0;
  for (let i = 0; i < b.data.length; i += 1) {
    err += (a.data[i] - b.data[i]) ** 2;
    norm += b.data[i] ** 2;
  }
  return Math.sqrt(err / norm);
}

/** Each layer's ΔW (B·A at its alpha/rank) of a converted file, by its down tensor's name. */
async function changes(bytes) {
  const header = st.parseSafetensors(bytes);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const out = new Map();
  for (const t of header.tensors) {
    if (!t.name.endsWith('.lora_down.weight')) continue;
    const stem = t.name.slice(0, -'.lora_down.weight'.length);
    const up = byName.get(`${stem}.lora_up.weight`);
    const alpha = byName.get(`${stem}.alpha`);
    const a = st.toFloat32Array(await st.readTensor(bytes, t), t.dtype);
    const b = st.toFloat32Array(await st.readTensor(bytes, up), up.dtype);
    const rank = t.shape[0];
    const scale = alpha ? st.scalarValue(alpha, await st.readTensor(bytes, alpha)) / rank : 1;
    const product = fz.matmul(fz.matrix(up.shape[0], rank, b), fz.matrix(rank, a.length / rank, a));
    out.set(stem, {
      w: fz.matrix(
        product.rows,
        product.cols,
        product.data.map((x) => x * scale),
      ),
      rank,
    });
  }
  return out;
}

describe('approximate: { rank }, a LoRA fitted by SVD', function () {
  const tmp = useTempDir('multilora-approximate-');
  const fx = families.sd15;

  it("the fit is the best of its rank: its error is numpy's optimum (within 1e-4), recomputed from the pair", function () {
    const cases = [
      // [rows, cols, decay, k]: exact width (k + 10 reaches a side), and the randomized range finder
      [12, 20, 0.8, 4],
      [40, 24, 0.9, 16],
      [64, 48, 0.95, 8],
      [48, 96, 0.7, 3],
      [32, 32, 1, 5],
    ].map(([rows, cols, decay, k], i) => {
      const pair = spectrum(rows, cols, decay, 100 + i);
      return { w: fz.matmul(pair.up, pair.down), pair, k };
    });
    const best = optimum(cases);
    for (const [i, { w, pair, k }] of cases.entries()) {
      const fit = ap.fitLowRank(pair, k);
      assert.deepEqual(
        [fit.pair.up.rows, fit.pair.up.cols, fit.pair.down.rows, fit.pair.down.cols],
        [w.rows, k, k, w.cols],
      );
      const measured = relative(fz.matmul(fit.pair.up, fit.pair.down), w);
      const label = `${w.rows}×${w.cols} at rank ${k}: optimum ${best[i]}, fit ${fit.error / fit.norm}, measured ${measured}`;
      assert.ok(Math.abs(fit.error / fit.norm - measured) < 1e-6, label);
      assert.ok(measured >= best[i] * (1 - 1e-4) - 1e-6, `better than optimal, so wrongly measured: ${label}`);
      assert.ok(measured <= best[i] * (1 + 1e-4) + 1e-6, label);
      assert.ok(best[i] > 0.05, `a case too easy to tell a bad fit: ${label}`);
    }
  });

  it('a ΔW of lower rank than asked is fitted exactly; a whole matrix is taken as ΔW', function () {
    const { up: wide } = spectrum(30, 50, 0.9, 7); // [30, 30]
    const up = fz.matrix(
      30,
      6,
      wide.data.filter((_, i) => i % 30 < 6),
    );
    const { down } = spectrum(6, 50, 0.9, 8); // [6, 50]
    const w = fz.matmul(up, down);
    for (const given of [{ up, down }, w]) {
      const fit = ap.fitLowRank(given, 6);
      const err = relative(fz.matmul(fit.pair.up, fit.pair.down), w);
      assert.ok(err < 1e-6 && fit.error / fit.norm < 1e-6, `${err}, reported ${fit.error / fit.norm}`);
    }
  });

  describe('on the LoHa fixture (rank 16 as an exact rewrite)', function () {
    let analysis;
    let exact;
    before(async function () {
      analysis = await lf.inspectLora(fx.lora('loha'));
      exact = await changes(await lf.toGenaiLora(fx.lora('loha'), analysis, { family: 'sd', scale: 'diffusers' }));
    });

    it("at rank 4: every layer fitted, each error what it reports and numpy's optimum, the total their sum", async function () {
      const { bytes, approximation } = await lf.convertForGenai(fx.lora('loha'), analysis, {
        family: 'sd',
        scale: 'diffusers',
        approximate: { rank: 4 },
      });
      const fitted = await changes(bytes);
      assert.equal(approximation.rank, 4);
      assert.equal(approximation.layers.length, analysis.layers.length);
      const best = optimum([...exact.values()].map(({ w }) => ({ w, k: 4 })));
      let err2 = 0;
      let norm2 = 0;
      for (const [i, [stem, { w }]] of [...exact.entries()].entries()) {
        const got = fitted.get(stem);
        assert.equal(got.rank, 4, stem);
        const measured = relative(got.w, w);
        const reported = approximation.layers.find((l) => l.key === stem);
        assert.ok(reported && reported.from === 16 && reported.rank === 4, stem);
        assert.ok(Math.abs(reported.error - measured) < 1e-5, `${stem}: reported ${reported.error}, ${measured}`);
        assert.ok(Math.abs(measured - best[i]) <= best[i] * 1e-3 + 1e-6, `${stem}: ${measured} vs ${best[i]}`);
        for (let j = 0; j < w.data.length; j += 1) {
          err2 += (got.w.data[j] - w.data[j]) ** 2;
          norm2 += w.data[j] ** 2;
        }
      }
      assert.ok(approximation.error > 0.05, `a total error of ${approximation.error}: rank 4 of 16 fitted nothing?`);
      assert.ok(Math.abs(approximation.error - Math.sqrt(err2 / norm2)) < 1e-5, `${approximation.error}`);
    });

    it('at or above its rank: nothing fitted, the bytes of the exact rewrite', async function () {
      const opts = { family: 'sd', scale: 'diffusers' };
      const plain = await lf.toGenaiLora(fx.lora('loha'), analysis, opts);
      const { bytes, approximation } = await lf.convertForGenai(fx.lora('loha'), analysis, {
        ...opts,
        approximate: { rank: 16 },
      });
      assert.deepEqual(approximation, { rank: 16, layers: [], error: 0 });
      assert.equal(
        Buffer.compare(
          Buffer.from(bytes.subarray(bytes.readUInt32LE(0) + 8)),
          Buffer.from(plain.subarray(plain.readUInt32LE(0) + 8)),
        ),
        0,
        'the tensors differ from the exact rewrite',
      );
    });
  });

  it('bad options: ERR_INVALID_ARGUMENT naming the option', async function () {
    for (const approximate of [{ rank: 0 }, { rank: 1.5 }, { rank: '4' }, { rank: 2000 }, { rank: 4, tol: 1 }, 4]) {
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { a: { path: fx.lora('loha'), approximate } } }),
        'ERR_INVALID_ARGUMENT',
        /approximate/,
      );
    }
  });

  it('refuses what no LoRA expresses, naming the tensor and the fuse: DoRA of a 3x3 kernel, a bias difference, a 3x3 kernel', async function () {
    const file = (name, tensors) => {
      const p = path.join(tmp(), `${name}.safetensors`);
      const data = tensors.map(([tensor, shape]) => ({
        name: tensor,
        dtype: 'F32',
        shape,
        data: st.fromFloat32Array(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01), 'F32'),
      }));
      fs.writeFileSync(p, st.writeSafetensors(data));
      return p;
    };
    const q = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q';
    const cases = [
      [
        file('dora-conv', [
          ['lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight', [2, 32, 3, 3]],
          ['lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight', [32, 2, 1, 1]],
          ['lora_unet_down_blocks_0_resnets_0_conv1.dora_scale', [32, 1, 1, 1]],
        ]),
        /is DoRA .*`approximate` fits such a change from the model's weights on linear and 1x1 layers only.*mode: 'fuse'/,
      ],
      [
        file('bias', [
          [`${q}.diff`, [32, 32]],
          [`${q}.diff_b`, [32]],
        ]),
        /diff_b.*no LoRA carries.*--fuse-lora/,
      ],
      [
        file('conv', [[`lora_unet_down_blocks_0_resnets_0_conv1.diff`, [32, 32, 3, 3]]]),
        /full weight difference.*mode: 'fuse'.*--fuse-lora <file>`$/,
      ],
    ];
    for (const [p, pattern] of cases) {
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { a: { path: p, scale: 'diffusers', approximate: { rank: 4 } } } }),
        'ERR_ADAPTER_FORMAT',
        pattern,
      );
    }
  });

  describe('through the real pipeline (sd15 fixture, f32)', function () {
    const CALL = { seed: 3, steps: 2, width: 64, height: 64 };
    const images = {};
    let reports;

    // The LoHa's exact change written as LyCORIS "full" differences: of rank 16 at most, in layers of 32 or 64.
    before(async function () {
      const analysis = await lf.inspectLora(fx.lora('loha'));
      const bytes = await lf.toGenaiLora(fx.lora('loha'), analysis, { family: 'sd', scale: 'diffusers' });
      const byStem = await changes(bytes);
      const full = path.join(tmp(), 'loha-as-full.safetensors');
      const header = st.parseSafetensors(bytes);
      const shapes = new Map(header.tensors.map((t) => [t.name, t.shape]));
      const tensors = [...byStem.entries()].map(([stem, { w }]) => {
        const kernel = shapes.get(`${stem}.lora_down.weight`).slice(2);
        return {
          name: `${stem}.diff`,
          dtype: 'F32',
          shape: [w.rows, w.cols, ...kernel],
          data: st.fromFloat32Array(w.data, 'F32'),
        };
      });
      fs.writeFileSync(full, st.writeSafetensors(tensors));
      const adapters = {
        full16: { path: full, approximate: { rank: 16 } },
        full2: { path: full, approximate: { rank: 2 } },
        twin: { path: fx.lora('loha-full') },
      };
      const selections = [null, ...Object.keys(adapters)];
      const pipelines = await Promise.all(
        selections.map(() => Pipeline.load(fx.model, { adapters, precision: 'f32' })),
      );
      try {
        reports = Object.fromEntries(pipelines[0].adapters.list().map((a) => [a.name, a.info]));
        for (const [i, name] of selections.entries()) {
          const chosen = name === null ? null : { [name]: 1 };
          images[name ?? 'none'] = (await pipelines[i].generate('x', { ...CALL, adapters: chosen })).data;
        }
      } finally {
        await Promise.all(pipelines.map((p) => p.dispose()));
      }
    });

    it("full differences fitted at rank 16: the twin's image (≤ 0.5/255), an effect (≥ 5/255), info says so", function () {
      const { approximation, ranks } = reports.full16;
      assert.equal(approximation.layers.length, 40);
      assert.ok(approximation.error < 1e-5, `total error ${approximation.error}`);
      assert.deepEqual(ranks, [16]);
      const twin = meanAbsDiff(images.full16, images.twin);
      const effect = meanAbsDiff(images.full16, images.none);
      assert.ok(twin <= 0.5, `${twin.toFixed(3)}/255 from the twin`);
      assert.ok(effect >= 5, `an effect of only ${effect.toFixed(3)}/255`);
    });

    it('at rank 2: the error it reports, and an image further from the twin', function () {
      const { approximation, ranks } = reports.full2;
      assert.deepEqual(ranks, [2]);
      assert.ok(approximation.error > 0.1, `total error ${approximation.error}`);
      assert.ok(approximation.layers.every((l) => l.rank === 2 && l.error > 0 && l.error < 1));
      assert.ok(meanAbsDiff(images.full2, images.twin) > meanAbsDiff(images.full16, images.twin) + 0.5);
      // what a worker publishes and the server lists of it: the rank, the total error, how many layers were fitted
      assert.deepEqual(diagnose.summarizeReport(reports.full2).approximation, {
        rank: 2,
        error: approximation.error,
        fitted: approximation.layers.length,
      });
    });

    it('without approximate, the full file is refused with both ways out', async function () {
      await rejectsWith(
        Pipeline.load(fx.model, { adapters: { a: { path: path.join(tmp(), 'loha-as-full.safetensors') } } }),
        'ERR_ADAPTER_FORMAT',
        /full weight difference.*--fuse-lora.*approximate: \{ rank \}/,
      );
    });

    it('re-adding the file with another rank or scale rebuilds it (its ranks follow)', async function () {
      const file = path.join(tmp(), 'loha-as-full.safetensors');
      const pipeline = await Pipeline.load(fx.model, {
        adapters: { a: { path: file, approximate: { rank: 16 } } },
        precision: 'f32',
      });
      try {
        await pipeline.adapters.add('a', { path: file, approximate: { rank: 2 } });
        assert.deepEqual(pipeline.adapters.list()[0].info.ranks, [2]);
        await pipeline.adapters.add('a', { path: file, approximate: { rank: 2 }, scale: 'diffusers' });
        assert.equal(pipeline.rebuilds, 2);
      } finally {
        await pipeline.dispose();
      }
    });
  });

  // DoRA and OFT change the model's weights by those weights: the fit reads them from the model (native/fuse.cc's
  // FusedChanges, the formulas of the fuse) and fits W' - W. At a rank reaching the layers' sides the fit is exact:
  // a DoRA gives the image of its merged twin (peft's / LyCORIS's merge written as a "full" difference, itself
  // fitted exactly); an OFT file, the image of the same file fused in memory.
  describe("DoRA and OFT, fitted from the model's weights (sd15 fixture, f32)", function () {
    const CALL = { seed: 42, steps: 4, width: 64, height: 64 };

    async function run(adapters, fuse = false) {
      const pipeline = await Pipeline.load(fx.model, { adapters, precision: 'f32', ...(fuse ? { mode: 'fuse' } : {}) });
      try {
        const chosen = fuse ? undefined : Object.fromEntries(Object.keys(adapters).map((n) => [n, 1]));
        const { data } = await pipeline.generate('a photo of a cat', {
          ...CALL,
          ...(chosen ? { adapters: chosen } : {}),
        });
        return { data, info: pipeline.adapters.list().map((a) => a.info) };
      } finally {
        await pipeline.dispose();
      }
    }

    it("every DoRA layer's change, read from the model's weights: its oracle's within 1e-5 (each layout)", async function () {
      const info = model.inspectModel(fx.model);
      for (const [name, twin] of [
        ['dora', 'dora-full'], // LyCORIS dora_scale [out, 1]; oracle: peft's merge
        ['dora-in', 'dora-in-full'], // LyCORIS dora_scale [1, in]; oracle: LyCORIS's formula
        ['dora-peft', 'dora-full'], // PEFT's lora_magnitude_vector
      ]) {
        const prepared = await diagnose.prepareAdapter('d', fx.lora(name), info, 'diffusers', undefined, true);
        const { targets } = prepared.fuse;
        const layers = await loraFuse.fuseLayers([{ label: name, load: prepared.load, alpha: 1, targets }]);
        const changes = await require('../dist/core/binding').native().Model.fusedChanges(fx.model, layers);
        const oracle = await st.openSafetensors(fx.lora(twin));
        try {
          const byName = new Map(oracle.header.tensors.map((t) => [t.name, t]));
          assert.equal(targets.length, 40, name);
          for (const [i, target] of targets.entries()) {
            const diff = byName.get(target.names.down.replace(/\.lora_down\.weight$/, '.diff'));
            const want = st.toFloat32Array(await oracle.read(diff), diff.dtype);
            let err = 0;
            let norm = 0;
            for (let k = 0; k < want.length; k++) {
              err += (changes[i][k] - want[k]) ** 2;
              norm += want[k] ** 2;
            }
            assert.equal(changes[i].length, want.length, target.node);
            assert.ok(Math.sqrt(err / norm) <= 1e-5, `${name}, ${target.node}: ${Math.sqrt(err / norm)}`);
          }
        } finally {
          await oracle.close();
        }
      }
    });

    it("DoRA in each layout: at full rank its twin's image, at rank 2 the error it reports and a further image", async function () {
      const none = (await run({})).data;
      for (const [name, twin] of [
        ['dora', 'dora-full'],
        ['dora-in', 'dora-in-full'],
        ['dora-peft', 'dora-full'],
      ]) {
        const exact = await run({ d: { path: fx.lora(name), scale: 'diffusers', approximate: { rank: 64 } } });
        const oracle = await run({ d: { path: fx.lora(twin), approximate: { rank: 64 } } });
        const low = await run({ d: { path: fx.lora(name), scale: 'diffusers', approximate: { rank: 2 } } });
        const { approximation } = exact.info[0];
        assert.equal(approximation.layers.length, 40, name);
        assert.ok(approximation.error < 1e-5, `${name}: total error ${approximation.error}`);
        const gap = meanAbsDiff(exact.data, oracle.data);
        const effect = meanAbsDiff(exact.data, none);
        assert.ok(gap <= 0.5, `${name}: ${gap}/255 from its twin`);
        assert.ok(effect >= 5, `${name}: an effect of ${effect}/255`);
        assert.deepEqual(low.info[0].ranks, [2]);
        assert.ok(low.info[0].approximation.error > 0.1, `${name} at rank 2: ${low.info[0].approximation.error}`);
        assert.ok(meanAbsDiff(low.data, oracle.data) > gap + 0.5, `${name} at rank 2: no further from its twin`);
      }
    });

    it('Diag-OFT of linear and 1x1 layers: at full rank, the image of the same file fused in memory', async function () {
      const layers = await require('../dist/core/binding')
        .native()
        .Model.layers(path.join(fx.model, 'unet', 'openvino_model.xml'));
      const tensors = [];
      let seed = 11;
      for (const layer of layers.filter((l) =>
        /attentions\.\d+\.(proj_out|transformer_blocks\.0\.ff\.net\.2)\//.test(l.name),
      )) {
        const module = layer.name.replace(/^__module\./, '').replace(/\/.*$/, '');
        const out = layer.shape[0];
        const stem = `lora_unet_${module.replaceAll('.', '_')}`;
        const values = Float32Array.from({ length: out * 4 }, () => {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          return seed / 2 ** 30 - 1;
        });
        tensors.push({
          name: `${stem}.oft_blocks`,
          dtype: 'F32',
          shape: [out / 4, 4, 4],
          data: st.fromFloat32Array(values, 'F32'),
        });
        tensors.push({
          name: `${stem}.alpha`,
          dtype: 'F32',
          shape: [],
          data: st.fromFloat32Array(Float32Array.of(0), 'F32'),
        });
      }
      const file = path.join(tmp(), 'oft.safetensors');
      fs.writeFileSync(file, st.writeSafetensors(tensors));
      const none = (await run({})).data;
      const fitted = await run({ o: { path: file, approximate: { rank: 128 } } });
      const fused = await run({ o: { path: file } }, true);
      assert.equal(fitted.info[0].approximation.layers.length, tensors.length / 2);
      assert.ok(fitted.info[0].approximation.error < 1e-5, `total error ${fitted.info[0].approximation.error}`);
      const gap = meanAbsDiff(fitted.data, fused.data);
      const effect = meanAbsDiff(fitted.data, none);
      assert.ok(gap <= 0.5, `${gap}/255 from the fused file`);
      assert.ok(effect >= 5, `an effect of ${effect}/255`);
    });
  });
});
