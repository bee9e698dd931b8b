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
  const { sdk, useTempDir } = require('./helpers/fixtures');
  const { readdirSync } = require('node:fs');
  const { spawnSync } = require('node:child_process');
  const path = require('node:path');
  const tmp = useTempDir('multilora-cache-');

  /** Whether each of two compiles of the toy model of test/helpers/ov_cache_lora.py came from the cache. */
  function toyLoads(kind) {
    const script = path.join(__dirname, 'helpers', 'ov_cache_lora.py');
    const r = spawnSync(sdk().python, [script, path.join(tmp(), `toy-${kind}`), kind], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()).loadedFromCache;
  }

  it('OpenVINO 2026.3 still cannot read a LoRA branch back from its cache (docs/GENAI-BUGS.md#cache-lora)', function () {
    // the same model without the alpha comes back from the cache: the harness works
    assert.deepEqual(toyLoads('plain'), [false, true]);
    // with it, every compile misses: when this fails, OpenVINO reads it back, and cacheProperties can go
    assert.deepEqual(toyLoads('lora'), [false, false]);
  });

  it('is left out of builds with adapters in dynamic mode; the images stay those of a load without it', async function () {
    const cacheDir = path.join(tmp(), 'ov-cache-adapters');
    const adapters = { a: { path: fx.lora('style-a') } };
    const call = { seed: 4, steps: 2, adapters: 'a' };
    const plain = await Pipeline.load(fx.model, { adapters });
    const reference = (await plain.generate('x', call)).data;
    await plain.dispose();
    const pipeline = await Pipeline.load(fx.model, { adapters, cacheDir });
    try {
      assert.ok((await pipeline.generate('x', call)).data.equals(reference));
      assert.deepEqual(readdirSync(cacheDir), [], 'OpenVINO was given the cache');
      // without adapters left, the rebuild gets the cache again
      await pipeline.adapters.remove('a');
      await pipeline.generate('x', { seed: 4, steps: 2 });
      assert.ok(
        readdirSync(cacheDir).some((f) => f.endsWith('.blob')),
        'no compiled model in the cache after the adapters went',
      );
    } finally {
      await pipeline.dispose();
    }
  });

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
