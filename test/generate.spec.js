// Generation on both tiny fixtures through the real OpenVINO GenAI: adapters change images, seeds reproduce them.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline } = require('..');
const { families, meanAbsDiff } = require('./helpers/fixtures');

const BASE = { seed: 42, width: 64, height: 64, steps: 4 };

for (const [family, fx] of Object.entries(families)) {
  describe(`generate on the ${family} fixture`, function () {
    let pipeline;
    before(async function () {
      pipeline = await Pipeline.load(fx.model, {
        adapters: { a: { path: fx.lora('style-a') }, b: { path: fx.lora('style-b'), alpha: 0.7 } },
      });
    });
    after(async function () {
      await pipeline?.dispose();
    });

    it('gives four different images for no adapter, A, B and a blend', async function () {
      const images = [];
      for (const adapters of [null, { a: 1 }, { b: 1 }, { a: 0.5, b: 0.7 }]) {
        images.push((await pipeline.generate('a house by the sea', { ...BASE, adapters })).data);
      }
      for (let i = 0; i < images.length; i += 1) {
        for (let j = i + 1; j < images.length; j += 1) {
          const d = meanAbsDiff(images[i], images[j]);
          assert.ok(d >= 0.5, `images ${i} and ${j} differ by only ${d.toFixed(3)}/255 on average`);
        }
      }
    });

    it('returns an RGB image with the requested size and seed', async function () {
      const image = await pipeline.generate('a house', BASE);
      assert.equal(image.width, 64);
      assert.equal(image.height, 64);
      assert.equal(image.channels, 3);
      assert.equal(image.seed, 42);
      assert.ok(Buffer.isBuffer(image.data));
      assert.equal(image.data.length, 64 * 64 * 3);
    });

    it('gives identical bytes for the same seed, and other bytes for another seed', async function () {
      const one = await pipeline.generate('a house', { ...BASE, adapters: { a: 0.8 } });
      const two = await pipeline.generate('a house', { ...BASE, adapters: { a: 0.8 } });
      const other = await pipeline.generate('a house', { ...BASE, seed: 43, adapters: { a: 0.8 } });
      assert.ok(one.data.equals(two.data));
      assert.ok(!one.data.equals(other.data));
    });

    it('gives a non-square image the right shape', async function () {
      const image = await pipeline.generate('a tower', { ...BASE, width: 96, height: 64 });
      assert.equal(image.width, 96);
      assert.equal(image.height, 64);
      assert.equal(image.data.length, 96 * 64 * 3);
    });

    it('picks a random seed when none is given, and reports it', async function () {
      const first = await pipeline.generate('a tree', { steps: 2, width: 64, height: 64 });
      assert.ok(Number.isInteger(first.seed) && first.seed >= 0 && first.seed <= 2 ** 32 - 1);
      const again = await pipeline.generate('a tree', { steps: 2, width: 64, height: 64, seed: first.seed });
      assert.ok(first.data.equals(again.data));
    });

    it('takes adapters by name, by list at their default alphas, and as a map', async function () {
      const byMap = await pipeline.generate('a road', { ...BASE, adapters: { a: 1, b: 0.7 } });
      const byList = await pipeline.generate('a road', { ...BASE, adapters: ['a', 'b'] });
      assert.ok(byMap.data.equals(byList.data));
      const byName = await pipeline.generate('a road', { ...BASE, adapters: 'b' });
      const byAlpha = await pipeline.generate('a road', { ...BASE, adapters: { b: 0.7 } });
      assert.ok(byName.data.equals(byAlpha.data));
      const none = await pipeline.generate('a road', { ...BASE, adapters: {} });
      const nullish = await pipeline.generate('a road', { ...BASE, adapters: null });
      assert.ok(none.data.equals(nullish.data));
    });

    it('uses the model defaults for options left out', async function () {
      assert.deepEqual({ width: pipeline.defaults.width, height: pipeline.defaults.height }, { width: 64, height: 64 });
      const image = await pipeline.generate('a lake', { seed: 1, steps: 2 });
      assert.equal(image.width, pipeline.defaults.width);
      assert.equal(image.height, pipeline.defaults.height);
    });

    it('queues concurrent calls: each result equals its serial bytes', async function () {
      const calls = [
        ['a cat', { ...BASE, seed: 1, adapters: 'a' }],
        ['a dog', { ...BASE, seed: 2, adapters: { b: 0.3 } }],
        ['a cow', { ...BASE, seed: 3 }],
        ['a fox', { ...BASE, seed: 4, adapters: { a: 0.2, b: 0.9 } }],
      ];
      const concurrent = await Promise.all(calls.map(([p, o]) => pipeline.generate(p, o)));
      for (let i = 0; i < calls.length; i += 1) {
        const serial = await pipeline.generate(...calls[i]);
        assert.ok(concurrent[i].data.equals(serial.data), `call ${i} differs from its serial run`);
      }
    });
  });
}

describe('images returned earlier', function () {
  it('keep their bytes when the pipeline generates again', async function () {
    const pipeline = await Pipeline.load(families.sd15.model);
    try {
      const first = await pipeline.generate('x', { ...BASE, seed: 1 });
      const kept = Buffer.from(first.data);
      await pipeline.generate('x', { ...BASE, seed: 2 });
      await pipeline.generate('x', { ...BASE, seed: 3, width: 96 });
      assert.ok(first.data.equals(kept), 'a later generate overwrote an earlier image');
    } finally {
      await pipeline.dispose();
    }
  });
});
