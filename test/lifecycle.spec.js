// Dispose: waits, is idempotent, frees, and every later call says so.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline, DisposedError } = require('..');
const { families } = require('./helpers/fixtures');

const fx = families.sd15;

describe('pipeline lifecycle', function () {
  it('Symbol.asyncDispose disposes; every later call rejects with ERR_DISPOSED; earlier images stay valid', async function () {
    const pipeline = await Pipeline.load(fx.model, { adapters: { a: { path: fx.lora('style-a') } } });
    const image = await pipeline.generate('x', { seed: 1, steps: 2, adapters: 'a' });
    const copy = Buffer.from(image.data);
    await pipeline[Symbol.asyncDispose]();
    assert.equal(pipeline.disposed, true);
    const calls = [
      () => pipeline.generate('x'),
      () => pipeline.imageToImage('x', image),
      () => pipeline.inpaint('x', image, image),
      () => pipeline.adapters.add('b', { path: fx.lora('style-b') }),
      () => pipeline.adapters.remove('a'),
    ];
    for (const call of calls) {
      await assert.rejects(call(), (err) => err instanceof DisposedError && err.code === 'ERR_DISPOSED');
    }
    global.gc?.();
    assert.ok(image.data.equals(copy));
    await pipeline.dispose(); // idempotent
  });

  it('dispose waits for queued calls and changes, and returns one promise', async function () {
    const pipeline = await Pipeline.load(fx.model);
    const calls = [1, 2, 3].map((seed) => pipeline.generate('x', { seed, steps: 2 }));
    const change = pipeline.adapters.add('a', { path: fx.lora('style-a') });
    const first = pipeline.dispose();
    assert.equal(pipeline.dispose(), first);
    const images = await Promise.all(calls);
    assert.equal(images.length, 3);
    await change;
    await first;
    assert.equal(pipeline.pending, 0);
  });
});

describe('cacheDir', function () {
  const { useTempDir } = require('./helpers/fixtures');
  const { readdirSync } = require('node:fs');
  const path = require('node:path');
  const tmp = useTempDir('multilora-cache-');

  it("fills OpenVINO's model cache, and a pipeline loaded from it gives the same bytes", async function () {
    const cacheDir = path.join(tmp(), 'ov-cache');
    const plain = await Pipeline.load(fx.model);
    const reference = (await plain.generate('x', { seed: 4, steps: 2 })).data;
    await plain.dispose();
    const first = await Pipeline.load(fx.model, { cacheDir });
    await first.dispose();
    assert.ok(
      readdirSync(cacheDir).some((f) => f.endsWith('.blob')),
      'no compiled model in the cache',
    );
    const cached = await Pipeline.load(fx.model, { cacheDir });
    try {
      assert.ok((await cached.generate('x', { seed: 4, steps: 2 })).data.equals(reference));
    } finally {
      await cached.dispose();
    }
  });
});
