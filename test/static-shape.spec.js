// staticShape: models reshaped to one size before compile. Same images as dynamic shapes (up to kernel rounding),
// LoRA applied in full, calls held to the shape with typed errors, and SDXL's text-encoder LoRA refused (GenAI drops
// it on that path).
'use strict';
const assert = require('node:assert/strict');
const { Pipeline } = require('..');
const { families, meanAbsDiff } = require('./helpers/fixtures');

const sd15 = families.sd15;
const sdxl = families.sdxl;
const CALL = { seed: 7, steps: 3 };

describe('staticShape', function () {
  describe('on the SD 1.5 fixture', function () {
    let fixed;
    let dynamic;
    before(async function () {
      const adapters = { a: { path: sd15.lora('style-a') } };
      fixed = await Pipeline.load(sd15.model, { adapters, staticShape: { width: 64, height: 96 } });
      dynamic = await Pipeline.load(sd15.model, { adapters });
    });
    after(async function () {
      await fixed?.dispose();
      await dynamic?.dispose();
    });

    it('makes the static size the default size', async function () {
      assert.equal(fixed.defaults.width, 64);
      assert.equal(fixed.defaults.height, 96);
      const image = await fixed.generate('a boat', CALL);
      assert.equal(image.width, 64);
      assert.equal(image.height, 96);
    });

    it('gives the images of dynamic shapes, LoRA included (text encoder and UNet)', async function () {
      for (const adapters of [null, { a: 0.8 }]) {
        const a = await fixed.generate('a boat', { ...CALL, adapters });
        const b = await dynamic.generate('a boat', { ...CALL, width: 64, height: 96, adapters });
        // Other kernels for static shapes round differently: a fraction of a level, never a different picture.
        assert.ok(meanAbsDiff(a.data, b.data) < 2, `static and dynamic differ by ${meanAbsDiff(a.data, b.data)}`);
      }
      const none = await fixed.generate('a boat', { ...CALL, adapters: null });
      const withA = await fixed.generate('a boat', { ...CALL, adapters: { a: 0.8 } });
      const dynNone = await dynamic.generate('a boat', { ...CALL, width: 64, height: 96, adapters: null });
      const dynA = await dynamic.generate('a boat', { ...CALL, width: 64, height: 96, adapters: { a: 0.8 } });
      const effect = meanAbsDiff(none.data, withA.data);
      const dynEffect = meanAbsDiff(dynNone.data, dynA.data);
      assert.ok(effect > 3, `the adapter changed the static pipeline's image by only ${effect}`);
      assert.ok(Math.abs(effect - dynEffect) < 1, `the adapter's effect: ${effect} static, ${dynEffect} dynamic`);
    });

    it('refuses another size, batch or side of guidance with a typed error, and stays usable', async function () {
      const bad = [
        [{ width: 64, height: 64 }, /Expected a size of 64x96 but received 64x64/],
        [{ numImages: 2 }, /Expected numImages 1 but received 2/],
        [{ guidanceScale: 1 }, /Expected a guidanceScale above 1 but received 1/],
      ];
      for (const [options, message] of bad) {
        await assert.rejects(fixed.generate('a boat', { ...CALL, ...options }), (err) => {
          assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
          assert.match(err.message, message);
          return true;
        });
      }
      // Another scale on the same side of 1 is fine.
      const image = await fixed.generate('a boat', { ...CALL, guidanceScale: 3 });
      assert.equal(image.height, 96);
    });

    it('holds image-to-image to the static size', async function () {
      const source = await fixed.generate('a boat', CALL);
      const out = await fixed.imageToImage('a ship', source, { ...CALL, strength: 0.5 });
      assert.equal(out.width, 64);
      const small = { data: Buffer.alloc(64 * 64 * 3, 128), width: 64, height: 64 };
      await assert.rejects(
        fixed.imageToImage('a ship', small, CALL),
        /Expected an input image of 64x96 but received 64x64/,
      );
    });
  });

  describe('on the SDXL fixture', function () {
    it('refuses an adapter with text-encoder layers, which GenAI would drop', async function () {
      await assert.rejects(
        Pipeline.load(sdxl.model, {
          adapters: { a: { path: sdxl.lora('style-a') } },
          staticShape: { width: 64, height: 64 },
        }),
        (err) => {
          assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
          assert.match(err.message, /text-encoder layers.*static shape/);
          return true;
        },
      );
    });

    it('works without such adapters, and refuses one added later without breaking the pipeline', async function () {
      const pipeline = await Pipeline.load(sdxl.model, { staticShape: { width: 64, height: 64, guidanceScale: 5 } });
      try {
        const before = await pipeline.generate('a tree', CALL);
        await assert.rejects(pipeline.adapters.add('a', { path: sdxl.lora('style-a') }), {
          code: 'ERR_INVALID_ARGUMENT',
        });
        const after = await pipeline.generate('a tree', CALL);
        assert.deepEqual(after.data, before.data);
        assert.equal(pipeline.adapters.list().length, 0);
      } finally {
        await pipeline.dispose();
      }
    });
  });

  it('checks its own fields', async function () {
    const cases = [
      [{ width: 63, height: 64 }, /multiple of 2 .*staticShape\.width/], // the fixture's VAE scale factor is 2
      [{ width: 64 }, /staticShape\.height/],
      [{ width: 64, height: 64, numImages: 0 }, /staticShape\.numImages/],
      [{ width: 64, height: 64, depth: 3 }, /Unknown option "depth"/],
      ['64x64', /Expected an object for options\.staticShape/],
    ];
    for (const [staticShape, message] of cases) {
      await assert.rejects(Pipeline.load(sd15.model, { staticShape }), (err) => {
        assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
        assert.match(err.message, message);
        return true;
      });
    }
  });
});
