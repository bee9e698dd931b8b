// The layouts of published LoRA files (test/fixtures/loras/layouts/) through the real pipeline (sdxl-tiny): each
// gives the image of its twin, the same weights in canonical kohya names, bit for bit, and moves the image away from
// the one without LoRA; every tensor patches a layer of the model. A layer read wrong, or left out, changes the image.
// LCM-LoRA's 3x3 convolutions are refused at generate (fusing them is test/convert.spec.js's). Names and tensors
// alone: test/lora-layouts.spec.js.
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { Pipeline } = require('..');
const { families, meanAbsDiff, pythonImages, rejectsWith } = require('./helpers/fixtures');

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

  // GenAI 2026.3 turns every '_' of a kohya UNet name into '.' and gives back only some (lora/names_mapping.cpp), so
  // it drops the resnets' time_emb_proj and conv_shortcut layers of kohya files in diffusers' module names (the
  // LCM-LoRA layout, diffusers' convert_state_dict_to_kohya) with a warning on stderr. multilora writes those layers
  // under their module path, which GenAI reads: the image is the one Python's openvino_genai makes of that file.
  it("kohya's time_emb_proj and conv_shortcut layers: applied, as GenAI applies them under their module paths", async function () {
    const { native } = require('../dist/core/binding');
    const st = require('../dist/internal').safetensors;
    const { mkdtempSync, writeFileSync, rmSync } = require('node:fs');
    const os = require('node:os');
    const layers = (await native().Model.layers(path.join(model, 'unet', 'openvino_model.xml'))).filter((l) =>
      /resnets\.\d+\.(time_emb_proj|conv_shortcut)\//.test(l.name),
    );
    assert.ok(layers.length >= 10, `${layers.length} layers`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'multilora-mangled-'));
    try {
      const write = (stemOf) => {
        let seed = 7;
        const values = (n) =>
          Float32Array.from({ length: n }, () => {
            seed = (seed * 1103515245 + 12345) % 2 ** 31;
            return (seed / 2 ** 30 - 1) * 0.5;
          });
        const tensors = layers.flatMap((l) => {
          const module = l.name.replace(/^__module\.(model\.)?/, '').replace(/\/.*$/, '');
          const [out, inn] = l.shape;
          const ones = l.type === 'Convolution' ? [1, 1] : [];
          return [
            { name: `${stemOf(module)}.lora_down.weight`, shape: [4, inn, ...ones], values: values(4 * inn) },
            { name: `${stemOf(module)}.lora_up.weight`, shape: [out, 4, ...ones], values: values(4 * out) },
          ].map(({ name, shape, values: v }) => ({ name, dtype: 'F32', shape, data: st.fromFloat32Array(v, 'F32') }));
        });
        const target = path.join(dir, `${stemOf('x').replace(/\W/g, '')}.safetensors`);
        writeFileSync(target, st.writeSafetensors(tensors));
        return target;
      };
      const kohya = write((m) => `lora_unet_${m.replaceAll('.', '_')}`);
      const modulePaths = write((m) => m);
      const pipeline = await Pipeline.load(model, { adapters: { k: { path: kohya } } });
      let mine;
      let none;
      try {
        const info = pipeline.adapters.list()[0].info;
        assert.deepEqual([info.matched, info.unmatched], [layers.length * 2, 0]);
        mine = (await pipeline.generate('x', { ...CALL, adapters: { k: 1 } })).data;
        none = (await pipeline.generate('x', { ...CALL, adapters: null })).data;
      } finally {
        await pipeline.dispose();
      }
      const call = { prompt: 'x', seed: CALL.seed, width: 64, height: 64, steps: CALL.steps, guidance_scale: 5 };
      const [raw, paths] = pythonImages({
        model,
        adapters: { raw: kohya, paths: modulePaths },
        fresh: true,
        calls: [
          { ...call, adapters: { raw: 1 } },
          { ...call, adapters: { paths: 1 } },
        ],
      });
      assert.ok(meanAbsDiff(mine, none) >= 5, `an effect of ${meanAbsDiff(mine, none)}/255`);
      assert.ok(meanAbsDiff(mine, paths) <= 0.5, `${meanAbsDiff(mine, paths)}/255 from GenAI's image of the paths`);
      // the premise: GenAI alone drops the kohya names (its image is the one without these layers)
      assert.ok(meanAbsDiff(raw, paths) >= 5, 'GenAI applied the kohya names itself');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
