// Image to image and inpainting, with the same adapters as text to image.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline, encodePng } = require('..');
const { families, meanAbsDiff } = require('./helpers/fixtures');

for (const [family, fx] of Object.entries(families)) {
  describe(`image inputs on the ${family} fixture`, function () {
    let pipeline;
    let source;
    let mask;
    before(async function () {
      pipeline = await Pipeline.load(fx.model, { adapters: { a: { path: fx.lora('style-a') } } });
      source = await pipeline.generate('a house', { seed: 3, steps: 4 });
      mask = Buffer.alloc(64 * 64);
      for (let y = 16; y < 48; y += 1) mask.fill(255, y * 64 + 16, y * 64 + 48);
    });
    after(async function () {
      await pipeline?.dispose();
    });

    it('offers them: the model has a VAE encoder', function () {
      assert.equal(pipeline.defaults.imageInputs, true);
    });

    it('imageToImage: strength sets how many steps run; seeds reproduce; adapters apply', async function () {
      const totals = [];
      for (const strength of [0.2, 0.6, 1]) {
        let total = 0;
        await pipeline.imageToImage('a house', source, {
          seed: 5,
          steps: 10,
          strength,
          onProgress: (e) => (total = e.total),
        });
        totals.push(total);
      }
      assert.ok(totals[0] < totals[1] && totals[1] < totals[2], `steps ${totals}`);
      const one = await pipeline.imageToImage('a house', source, { seed: 5, steps: 6, strength: 0.5 });
      const two = await pipeline.imageToImage('a house', source, { seed: 5, steps: 6, strength: 0.5 });
      const lora = await pipeline.imageToImage('a house', source, { seed: 5, steps: 6, strength: 0.5, adapters: 'a' });
      assert.ok(one.data.equals(two.data));
      assert.ok(meanAbsDiff(one.data, lora.data) > 0.5);
      assert.deepEqual([one.width, one.height], [64, 64]);
    });

    it('takes the input as RGB, RGBA, grey or PNG', async function () {
      const opts = { seed: 5, steps: 4, strength: 0.5 };
      const rgb = await pipeline.imageToImage('x', source, opts);
      const png = await pipeline.imageToImage('x', encodePng(source), opts);
      const rgba = Buffer.alloc(64 * 64 * 4, 255);
      for (let i = 0; i < 64 * 64; i += 1) source.data.copy(rgba, i * 4, i * 3, i * 3 + 3);
      const fromRgba = await pipeline.imageToImage('x', { data: rgba, width: 64, height: 64, channels: 4 }, opts);
      assert.ok(png.data.equals(rgb.data) && fromRgba.data.equals(rgb.data));
    });

    it('inpaint repaints where the mask is white, more than elsewhere', async function () {
      const out = await pipeline.inpaint(
        'a house',
        source,
        { data: mask, width: 64, height: 64, channels: 1 },
        { seed: 5, steps: 8, adapters: 'a' },
      );
      let inside = 0;
      let outside = 0;
      for (let p = 0; p < 64 * 64; p += 1) {
        let d = 0;
        for (let c = 0; c < 3; c += 1) d += Math.abs(out.data[p * 3 + c] - source.data[p * 3 + c]);
        if (mask[p]) inside += d / (32 * 32);
        else outside += d / (64 * 64 - 32 * 32);
      }
      assert.ok(inside > outside, `inside ${inside.toFixed(1)}, outside ${outside.toFixed(1)}`);
    });

    it('text to image is unchanged by image tasks in between', async function () {
      const again = await pipeline.generate('a house', { seed: 3, steps: 4 });
      assert.ok(again.data.equals(source.data));
    });

    it('rejects bad inputs with ERR_INVALID_ARGUMENT', async function () {
      const bad = [
        () => pipeline.imageToImage('x', { data: Buffer.alloc(10), width: 64, height: 64 }),
        () => pipeline.imageToImage('x', { data: Buffer.alloc(63 * 64 * 3), width: 63, height: 64 }),
        () => pipeline.imageToImage('x', Buffer.from('not a png')),
        () => pipeline.imageToImage('x', source, { strength: 1.5 }),
        () => pipeline.imageToImage('x', source, { width: 64 }),
        () => pipeline.inpaint('x', source, { data: Buffer.alloc(32 * 32), width: 32, height: 32, channels: 1 }),
        () => pipeline.inpaint('x', source),
      ];
      for (const call of bad) await assert.rejects(call(), { code: 'ERR_INVALID_ARGUMENT' });
    });
  });
}
