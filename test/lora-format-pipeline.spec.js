// The LoRA rewrite of lib/lora/format.ts through the real pipeline (sd15 fixture): the converted PEFT file gives the
// kohya file's image, GenAI alone ignores the PEFT file, and the diffusers scale matches alpha/rank. The model-free
// half of these checks is test/lora-format.spec.js.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const lf = require('../dist/internal').loraFormat;
const { Pipeline } = require('..');
const { families, pythonImages, useTempDir } = require('./helpers/fixtures');

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
});
