// The LoRA rewrite of lib/lora/format.ts through the real pipeline (sd15 fixture): the converted PEFT file gives the
// kohya file's image, GenAI alone ignores the PEFT file, and the diffusers scale matches alpha/rank. The model-free
// half of these checks is test/lora-format.spec.js.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const lf = require('../dist/internal').loraFormat;
const { Pipeline } = require('..');
const { families, meanAbsDiff, pythonImages, useTempDir } = require('./helpers/fixtures');

describe('LoRA formats', function () {
  const tmp = useTempDir('multilora-lora-format-');

  describe('through the real pipeline (sd15 fixture)', function () {
    const fx = families.sd15;
    const CALL = { seed: 1, steps: 2, width: 64, height: 64 };
    const SELECTIONS = {
      peft: 'peft',
      kohya: 'kohya',
      raw: 'raw',
      none: null,
      diffusersAt1: { peftDiffusers: 1 },
      kohyaAtHalf: { kohya: 0.5 },
    };
    const images = {};

    // One fresh pipeline per selection, each with the same adapters registered, and only its first image: GenAI
    // 2026.3 can give wrong images once a pipeline switches adapter configs. The pipelines load at once.
    before(async function () {
      const peft = fx.lora('style-a-peft');
      const a = await lf.inspectLora(peft);
      const genai = path.join(tmp(), 'peft-genai.safetensors');
      fs.writeFileSync(genai, await lf.toGenaiLora(peft, a, { family: 'sd', scale: 'genai' }));
      const diffusers = path.join(tmp(), 'peft-diffusers.safetensors');
      fs.writeFileSync(diffusers, await lf.toGenaiLora(peft, a, { family: 'sd', scale: 'diffusers' }));
      const adapters = {
        peft: { path: genai },
        peftDiffusers: { path: diffusers },
        kohya: { path: fx.lora('style-a') },
        raw: { path: peft },
      };
      const names = Object.keys(SELECTIONS);
      const pipelines = await Promise.all(names.map(() => Pipeline.load(fx.model, { adapters })));
      try {
        for (const [i, name] of names.entries()) {
          images[name] = (await pipelines[i].generate('x', { ...CALL, adapters: SELECTIONS[name] })).data;
        }
      } finally {
        await Promise.all(pipelines.map((p) => p.dispose()));
      }
    });

    it("the converted PEFT file gives the kohya file's image, and so does the PEFT file as given (multilora converts it)", function () {
      assert.ok(images.peft.equals(images.kohya), 'converted PEFT and kohya differ');
      assert.ok(!images.peft.equals(images.none), 'the converted PEFT file had no effect');
      assert.ok(images.raw.equals(images.kohya), 'the PEFT file given to Pipeline.load was not converted');
    });

    it('GenAI alone ignores the PEFT file (the premise of the conversion)', function () {
      const call = { prompt: 'x', seed: 1, width: 64, height: 64, steps: 2, guidance_scale: 7.5 };
      const [none, raw] = pythonImages({
        model: fx.model,
        adapters: { raw: fx.lora('style-a-peft') },
        fresh: true,
        calls: [
          { ...call, adapters: {} },
          { ...call, adapters: { raw: 1 } },
        ],
      });
      assert.ok(raw.equals(none), 'GenAI applied the unconverted PEFT file');
      assert.ok(images.none.length === none.length);
    });

    it('at the diffusers scale, alpha 1 gives what alpha/rank = 0.5 gives the kohya file', function () {
      assert.ok(images.diffusersAt1.equals(images.kohyaAtHalf));
      assert.ok(!images.diffusersAt1.equals(images.kohya));
    });
  });

  // LyCORIS LoHa and LoKr files (made by peft, test/fixtures/README.md) against the same change of the weights as a
  // plain full-rank LoRA (peft's get_delta_weight): multilora's exact rewrite must give its image, and visibly
  // change the image, or a rewrite to nothing could pass. In float32: in bf16 (this CPU's default) a LoRA's rank
  // changes the rounding, and the twins differ by about 0.7/255 (measured on the fixture), as two plain LoRAs would.
  describe('LyCORIS LoHa and LoKr through the real pipeline (sd15 fixture)', function () {
    const fx = families.sd15;
    const CALL = { seed: 3, steps: 2, width: 64, height: 64 };
    const images = {};
    const adapters = {
      loha: { path: fx.lora('loha'), scale: 'diffusers' },
      lohaFull: { path: fx.lora('loha-full') },
      lokr: { path: fx.lora('lokr'), scale: 'diffusers' },
      lokrFull: { path: fx.lora('lokr-full') },
    };
    const selections = [null, ...Object.keys(adapters)];

    // As above: one fresh pipeline per selection, all with the same adapters registered.
    before(async function () {
      const pipelines = await Promise.all(
        selections.map(() => Pipeline.load(fx.model, { adapters, precision: 'f32' })),
      );
      try {
        for (const [i, name] of selections.entries()) {
          const chosen = name === null ? null : { [name]: 1 };
          images[name ?? 'none'] = (await pipelines[i].generate('x', { ...CALL, adapters: chosen })).data;
        }
      } finally {
        await Promise.all(pipelines.map((p) => p.dispose()));
      }
    });

    for (const algo of ['loha', 'lokr']) {
      it(`${algo}: the image of its full-rank twin (mean difference ≤ 0.5/255), and not the image without it (≥ 5/255)`, function () {
        const twin = meanAbsDiff(images[algo], images[`${algo}Full`]);
        const effect = meanAbsDiff(images[algo], images.none);
        assert.ok(twin <= 0.5, `${twin.toFixed(3)}/255 from the full-rank twin`);
        assert.ok(effect >= 5, `an effect of only ${effect.toFixed(3)}/255`);
      });
    }

    it('a LoHa of a 3x3 convolution (its kernel flattened into the factors): ERR_ADAPTER_FORMAT, and how to fuse it', async function () {
      const st = require('../dist/internal').safetensors;
      const stem = 'lora_unet_down_blocks_0_resnets_0_conv1'; // [32, 32, 3, 3] in the sd15 fixture
      const factor = (name, shape) => ({
        name: `${stem}.${name}`,
        dtype: 'F32',
        shape,
        data: st.fromFloat32Array(new Float32Array(shape[0] * shape[1]).fill(0.01), 'F32'),
      });
      const data = st.writeSafetensors([
        factor('hada_w1_a', [32, 2]),
        factor('hada_w1_b', [2, 32 * 9]),
        factor('hada_w2_a', [32, 2]),
        factor('hada_w2_b', [2, 32 * 9]),
      ]);
      await assert.rejects(
        Pipeline.load(fx.model, { adapters: { conv: { data } } }),
        (e) =>
          e.code === 'ERR_ADAPTER_FORMAT' &&
          /is a LoHa of the convolution ".+", whose kernel is 3x3; .*--fuse-lora <file>/.test(e.message),
      );
    });

    it('reports the rank GenAI runs and the format', async function () {
      const pipeline = await Pipeline.load(fx.model, { adapters: { loha: adapters.loha, lokr: adapters.lokr } });
      try {
        const byName = Object.fromEntries(pipeline.adapters.list().map((a) => [a.name, a.info]));
        assert.deepEqual(byName.loha.ranks, [16]);
        assert.deepEqual(byName.lokr.ranks, [4, 8]);
        assert.equal(byName.loha.converted, true);
        assert.equal(byName.loha.unmatched, 0);
        assert.equal(byName.lokr.unmatched, 0);
      } finally {
        await pipeline.dispose();
      }
    });
  });
});
