// Fuse mode for what GenAI's own fuse refuses (DoRA, LyCORIS "full" differences and their bias, 3x3 and Tucker
// LoCon, LoHa/LoKr of 3x3 convolutions, Diag-OFT): multilora changes the model's weights in memory and builds the
// pipeline from them (native/fuse.h, lib/lora/fuse.ts). Each case is checked against an independent result:
// - DoRA: its twin, peft's or LyCORIS's merge written as a LyCORIS "full" difference by scripts/make-fixtures.py,
//   fused in memory too (W + diff: no norm, no rotation). Layer by layer, lora-approximate.spec.js checks the same
//   changes against those twins within 1e-5;
// - a full difference: the same change as a plain full-rank LoRA, fused by GenAI;
// - kernels, Tucker, OFT and biases: `convert --fuse-lora` (python/convert.py's fuse in torch, itself checked per layer
//   against LyCORIS's formulas in convert.spec.js) on the diffusers fixture the sd15 IR was exported from.
// Images in f32; each change must move the image by ≥ 5/255, so that a fuse that does nothing cannot pass.
'use strict';
const assert = require('node:assert/strict');
const { writeFileSync } = require('node:fs');
const path = require('node:path');

const { convert, Pipeline } = require('..');
const { native } = require('../dist/core/binding');
const { safetensors: st } = require('../dist/internal');
const { FIXTURES, families, fullDifferences, meanAbsDiff, rejectsWith, useTempDir } = require('./helpers/fixtures');

const fx = families.sd15;
const CALL = { seed: 42, width: 64, height: 64, steps: 4 };
const TWIN = 0.5;
const EFFECT = 5;

async function image(model, load = {}, call = {}) {
  const pipeline = await Pipeline.load(model, { precision: 'f32', ...load });
  try {
    return (await pipeline.generate('a photo of a cat', { ...CALL, ...call })).data;
  } finally {
    await pipeline.dispose();
  }
}

/** Seeded values in [-scale, scale). */
function values(count, seed, scale) {
  let s = seed;
  return Float32Array.from({ length: count }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 30 - 1) * scale;
  });
}

function write(file, tensors) {
  writeFileSync(
    file,
    st.writeSafetensors(
      tensors.map(([name, shape, data]) => ({ name, dtype: 'F32', shape, data: st.fromFloat32Array(data, 'F32') })),
    ),
  );
  return file;
}

describe('fuse mode for what only a fuse takes (multilora fuses in memory)', function () {
  this.timeout(600_000);
  const tmp = useTempDir('multilora-fuse-');
  let none;

  before(async function () {
    none = await image(fx.model);
  });

  it("DoRA in each layout gives the image of its twin (the oracle's merge as a difference), and changes it", async function () {
    for (const [name, twin] of [
      ['dora', 'dora-full'], // LyCORIS dora_scale [out, 1]
      ['dora-in', 'dora-in-full'], // LyCORIS dora_scale [1, in]: norms per input column
      ['dora-peft', 'dora-full'], // PEFT's lora_magnitude_vector
    ]) {
      const fused = await image(fx.model, {
        mode: 'fuse',
        adapters: { d: { path: fx.lora(name), scale: 'diffusers' } },
      });
      const oracle = await image(fx.model, { mode: 'fuse', adapters: { d: { path: fx.lora(twin) } } });
      const gap = meanAbsDiff(fused, oracle);
      const effect = meanAbsDiff(fused, none);
      assert.ok(gap <= TWIN, `${name}: ${gap}/255 from its twin`);
      assert.ok(effect >= EFFECT, `${name}: an effect of ${effect}/255`);
    }
  });

  it('a plain LoRA beside the DoRA is fused by multilora too, at its alpha; static shapes too', async function () {
    const style = { path: fx.lora('style-a'), alpha: 0.7 };
    const dora = { d: { path: fx.lora('dora'), scale: 'diffusers' }, s: style };
    const fused = await image(fx.model, { mode: 'fuse', adapters: dora });
    // in their order: the DoRA's merge, then W + 0.7 · style-a: as its twin (a difference) and style-a give
    const oracle = await image(fx.model, { mode: 'fuse', adapters: { d: { path: fx.lora('dora-full') }, s: style } });
    const gap = meanAbsDiff(fused, oracle);
    const alone = await image(fx.model, { mode: 'fuse', adapters: { d: dora.d } });
    const effect = meanAbsDiff(fused, alone);
    assert.ok(gap <= TWIN, `${gap}/255 from the twins`);
    assert.ok(effect >= EFFECT, `style-a fused beside the DoRA: an effect of ${effect}/255`);
    const fixed = await image(fx.model, { mode: 'fuse', adapters: dora, staticShape: { width: 64, height: 64 } });
    assert.ok(meanAbsDiff(fixed, fused) <= TWIN, `static shapes: ${meanAbsDiff(fixed, fused)}/255`);
  });

  it('a LyCORIS full difference gives the image of the same change as a full-rank LoRA', async function () {
    // loha-full holds a LoHa's change as up [out, out] · down: its product, written as "full" differences
    const tensors = (await fullDifferences(fx.lora('loha-full'))).map(({ name, shape, values }) => [
      name,
      shape,
      values,
    ]);
    const file = write(path.join(tmp(), 'full.safetensors'), tensors);
    const fused = await image(fx.model, { mode: 'fuse', adapters: { f: { path: file, alpha: 1.5 } } });
    const oracle = await image(fx.model, { mode: 'fuse', adapters: { f: { path: fx.lora('loha-full'), alpha: 1.5 } } });
    const gap = meanAbsDiff(fused, oracle);
    const effect = meanAbsDiff(fused, none);
    assert.ok(gap <= TWIN, `${gap}/255 from the full-rank twin (effect ${effect})`);
    assert.ok(effect >= EFFECT, `an effect of ${effect}/255`);
  });

  describe('kernels, Tucker cores, OFT and biases, against convert --fuse-lora', function () {
    /** A layer of each kind on the sd15 fixture's layers (shapes read from its IR): {kind: tensors}. */
    async function kinds() {
      const layers = await native().Model.layers(path.join(fx.model, 'unet', 'openvino_model.xml'));
      const shape = (module) => {
        const layer = layers.find((l) => l.name.includes(`.${module}/`));
        assert.ok(layer, module);
        return layer.type === 'MatMul' && !layer.transposeB ? [layer.shape[1], layer.shape[0]] : layer.shape;
      };
      const kohya = (module) => `lora_unet_${module.replaceAll('.', '_')}`;
      // a 3x3 LoCon (LCM-LoRA has them): A with the layer's kernel, B 1x1
      const conv = kohya('down_blocks.0.resnets.0.conv1');
      const [co, ci, kh, kw] = shape('down_blocks.0.resnets.0.conv1');
      // a Tucker LoCon: down 1x1, the core with the kernel, up 1x1
      const tucker = kohya('up_blocks.1.resnets.0.conv2');
      const [to, ti, th, tw] = shape('up_blocks.1.resnets.0.conv2');
      // Diag-OFT of the last convolution's outputs, its norm clipped by the constraint (alpha × outputs)
      const oft = kohya('up_blocks.1.resnets.1.conv2');
      const [oo] = shape('up_blocks.1.resnets.1.conv2');
      // a full difference with its bias
      const full = kohya('mid_block.attentions.0.proj_in');
      const fs = shape('mid_block.attentions.0.proj_in');
      return {
        kernel: [
          [`${conv}.lora_down.weight`, [4, ci, kh, kw], values(4 * ci * kh * kw, 1, 0.5)],
          [`${conv}.lora_up.weight`, [co, 4, 1, 1], values(co * 4, 2, 0.5)],
          [`${conv}.alpha`, [], Float32Array.of(4)],
        ],
        tucker: [
          [`${tucker}.lora_down.weight`, [3, ti, 1, 1], values(3 * ti, 3, 0.6)],
          [`${tucker}.lora_mid.weight`, [3, 3, th, tw], values(9 * th * tw, 4, 0.6)],
          [`${tucker}.lora_up.weight`, [to, 3, 1, 1], values(to * 3, 5, 0.6)],
          [`${tucker}.alpha`, [], Float32Array.of(3)],
        ],
        oft: [
          [`${oft}.oft_blocks`, [oo / 4, 4, 4], values(oo * 4, 6, 0.5)],
          [`${oft}.alpha`, [], Float32Array.of(0.1)],
        ],
        full: [
          [
            `${full}.diff`,
            fs,
            values(
              fs.reduce((a, b) => a * b, 1),
              7,
              0.3,
            ),
          ],
          [`${full}.diff_b`, [fs[0]], values(fs[0], 8, 1)],
        ],
      };
    }

    it('a file of each kind at alpha 0.8: within 0.5/255 of the converted model; each kind counts', async function () {
      const all = await kinds();
      const file = write(path.join(tmp(), 'kinds.safetensors'), Object.values(all).flat());
      const fused = await image(fx.model, { mode: 'fuse', adapters: { k: { path: file, alpha: 0.8 } } });
      const out = path.join(tmp(), 'converted');
      const result = await convert(path.join(FIXTURES, 'diffusers', 'sd15-tiny'), out, {
        weightFormat: 'fp32',
        fuseLora: [{ path: file, alpha: 0.8 }],
      });
      assert.deepEqual([result.fused[0].fusedLayers, result.fused[0].unmatched], [4, 0]);
      const oracle = await image(out);
      const gap = meanAbsDiff(fused, oracle);
      const effect = meanAbsDiff(fused, none);
      assert.ok(gap <= TWIN, `${gap}/255 from the converted model (effect ${effect})`);
      assert.ok(effect >= EFFECT, `an effect of ${effect}/255`);
      // a fuse that left one kind out (or the bias) would be further from the converted model than the bound
      const without = { ...all, bias: all.full.slice(0, 1) };
      for (const kind of ['kernel', 'tucker', 'oft', 'full', 'bias']) {
        const rest = Object.entries(without)
          .filter(([k]) => k !== kind && (kind !== 'bias' || k !== 'full') && (kind === 'bias' || k !== 'bias'))
          .flatMap(([, t]) => t);
        const partial = write(path.join(tmp(), `without-${kind}.safetensors`), rest);
        const apart = meanAbsDiff(
          await image(fx.model, { mode: 'fuse', adapters: { k: { path: partial, alpha: 0.8 } } }),
          oracle,
        );
        assert.ok(apart > 2 * TWIN, `without the ${kind}: ${apart}/255 from the converted model`);
      }
    });
  });

  it("SDXL: LCM-LoRA's 3x3 layout and a PEFT file of both text encoders, fused as convert fuses them", async function () {
    const sdxl = families.sdxl;
    const adapters = {
      lcm: { path: path.join(FIXTURES, 'loras', 'layouts', 'lcm.safetensors') },
      te: { path: path.join(FIXTURES, 'loras', 'layouts', 'peft.safetensors'), alpha: 0.7 },
    };
    const call = { guidanceScale: sdxl.guidanceScale };
    const fused = await image(sdxl.model, { mode: 'fuse', adapters }, call);
    const out = path.join(tmp(), 'sdxl-converted');
    const result = await convert(path.join(FIXTURES, 'diffusers', 'sdxl-tiny'), out, {
      weightFormat: 'fp32',
      fuseLora: Object.values(adapters),
    });
    assert.deepEqual(
      result.fused.map((f) => [f.fusedLayers, f.unmatched]),
      [
        [12, 0],
        [12, 0],
      ],
    );
    const oracle = await image(out, {}, call);
    const gap = meanAbsDiff(fused, oracle);
    const effect = meanAbsDiff(fused, await image(sdxl.model, {}, call));
    assert.ok(gap <= TWIN, `${gap}/255 from the converted model (effect ${effect})`);
    assert.ok(effect >= EFFECT, `an effect of ${effect}/255`);
    // the text encoders' share: without the second file, the image is further from the converted one
    const lcmOnly = await image(sdxl.model, { mode: 'fuse', adapters: { lcm: adapters.lcm } }, call);
    assert.ok(meanAbsDiff(lcmOnly, oracle) > 2 * TWIN, 'the PEFT file counts');
  });

  describe('the weights kept in their precision', function () {
    it('fp16 weights: fused and rounded back to fp16, within 0.5/255 of the twin fused there', async function () {
      const fp16 = path.join(tmp(), 'sd15-fp16');
      await convert(path.join(FIXTURES, 'diffusers', 'sd15-tiny'), fp16, { weightFormat: 'fp16' });
      const fused = await image(fp16, { mode: 'fuse', adapters: { d: { path: fx.lora('dora'), scale: 'diffusers' } } });
      const oracle = await image(fp16, { mode: 'fuse', adapters: { d: { path: fx.lora('dora-full') } } });
      const gap = meanAbsDiff(fused, oracle);
      const effect = meanAbsDiff(fused, await image(fp16));
      assert.ok(gap <= TWIN, `${gap}/255 from the twin (effect ${effect})`);
      assert.ok(effect >= EFFECT, `an effect of ${effect}/255`);
    });

    it('int8 weights: ERR_MODEL_INVALID naming the layer and the export to use', async function () {
      const int8 = path.join(tmp(), 'sd15-int8');
      await convert(path.join(FIXTURES, 'diffusers', 'sd15-tiny'), int8, { weightFormat: 'int8' });
      await rejectsWith(
        Pipeline.load(int8, { mode: 'fuse', adapters: { d: { path: fx.lora('dora'), scale: 'diffusers' } } }),
        'ERR_MODEL_INVALID',
        /compressed below 16 bits.*--weight-format fp16/,
      );
    });
  });

  it('still refused at generate (dynamic mode), naming fuse mode', async function () {
    await rejectsWith(
      Pipeline.load(fx.model, { adapters: { d: { path: fx.lora('dora'), scale: 'diffusers' } } }),
      'ERR_ADAPTER_FORMAT',
      /is DoRA/,
    );
  });

  it('a LoRA made for another model: ERR_ADAPTER_INCOMPATIBLE naming the layer, and the model loads after', async function () {
    const tensors = [
      ['lora_unet_mid_block_attentions_0_proj_in.diff', [7, 3], values(21, 9, 0.1)],
      ['lora_unet_mid_block_attentions_0_proj_in.diff_b', [7], values(7, 10, 0.1)],
    ];
    const file = write(path.join(tmp(), 'wrong.safetensors'), tensors);
    await rejectsWith(
      Pipeline.load(fx.model, { mode: 'fuse', adapters: { w: { path: file } } }),
      'ERR_ADAPTER_INCOMPATIBLE',
      /proj_in/,
    );
    assert.equal(
      (await image(fx.model, { mode: 'fuse', adapters: { d: { path: fx.lora('dora-full') } } })).length,
      64 * 64 * 3,
    );
  });
});
