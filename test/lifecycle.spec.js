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
