// The layouts of published LoRA files (test/fixtures/loras/layouts/) through the real pipeline (sdxl-tiny): each
// gives the image of its twin, the same weights in canonical kohya names, bit for bit, and moves the image away from
// the one without LoRA; every tensor patches a layer of the model. A layer read wrong, or left out, changes the image.
// LCM-LoRA's 3x3 convolutions are refused at generate (fusing them is test/convert.spec.js's). Names and tensors
// alone: test/lora-layouts.spec.js.
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { Pipeline } = require('..');
const { families, meanAbsDiff, rejectsWith } = require('./helpers/fixtures');

const DIR = path.join(__dirname, 'fixtures', 'loras', 'layouts');
const file = (name) => path.join(DIR, `${name}.safetensors`);
const LAYOUTS = [
  'kohya-sgm',
  'peft',
  'diffusers-script',
  'diffusers-0.19',
  'attn-procs',
  'comfyui',
  'lycoris',
  'alpha-shape1',
  'alpha-int64',
];
// The layouts whose alphas differ from their rank: at the 'diffusers' scale, each layer's alpha/rank is read.
const SCALED = ['kohya-sgm', 'peft', 'lycoris', 'alpha-shape1'];

describe('LoRA layouts of published files through the real pipeline (sdxl-tiny)', function () {
  const model = families.sdxl.model;
  const CALL = { seed: 5, steps: 2, width: 64, height: 64 };
  const runs = {};

  // One fresh pipeline per image, each with its one adapter registered: GenAI 2026.3 can give wrong images once a
  // pipeline switches adapter configs (docs/GENAI-BUGS.md). Two at a time, to spare the machine.
  before(async function () {
    const jobs = [['none', null]];
    for (const name of LAYOUTS) {
      jobs.push([name, { path: file(name) }], [`${name}-twin`, { path: file(`${name}-twin`) }]);
    }
    for (const name of SCALED) {
      jobs.push([`${name}@diffusers`, { path: file(name), scale: 'diffusers' }]);
      jobs.push([`${name}-twin@diffusers`, { path: file(`${name}-twin`), scale: 'diffusers' }]);
    }
    const run = async ([label, spec]) => {
      const pipeline = await Pipeline.load(model, spec ? { adapters: { x: spec } } : {});
      try {
        const image = await pipeline.generate('x', { ...CALL, adapters: spec ? { x: 1 } : null });
        runs[label] = { data: image.data, info: spec ? pipeline.adapters.list()[0].info : undefined };
      } finally {
        await pipeline.dispose();
      }
    };
    for (let i = 0; i < jobs.length; i += 2) await Promise.all(jobs.slice(i, i + 2).map(run));
  });

  for (const name of LAYOUTS) {
    it(`${name}: its twin's image, bit for bit, ≥ 5/255 from the image without LoRA, every tensor matched`, function () {
      const { data, info } = runs[name];
      assert.ok(
        data.equals(runs[`${name}-twin`].data),
        `${meanAbsDiff(data, runs[`${name}-twin`].data)}/255 from its twin`,
      );
      const effect = meanAbsDiff(data, runs.none.data);
      assert.ok(effect >= 5, `an effect of only ${effect.toFixed(3)}/255`);
      assert.deepEqual([info.unmatched, info.unmatchedTensors], [0, []]);
    });
  }

  for (const name of SCALED) {
    it(`${name} at the 'diffusers' scale: its twin's image (its alphas read as the twin's float32 ones)`, function () {
      const scaled = runs[`${name}@diffusers`].data;
      assert.ok(scaled.equals(runs[`${name}-twin@diffusers`].data));
      assert.ok(!scaled.equals(runs[name].data), 'alpha/rank changed nothing');
    });
  }

  it("lcm: refused at generate with ERR_ADAPTER_FORMAT, naming a 3x3 convolution and GenAI's limit", async function () {
    await rejectsWith(
      Pipeline.load(model, { adapters: { lcm: { path: file('lcm') } } }),
      'ERR_ADAPTER_FORMAT',
      /"lora_unet_down_blocks_0_downsamplers_0_conv" is a convolution with a 3x3 kernel.*applies only 1x1/,
    );
  });
});
