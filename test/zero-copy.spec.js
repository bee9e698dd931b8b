// The result's bytes: copied once by default (GenAI reuses its output memory), and with output: 'borrow' lent with no
// copy at all, the Buffer wrapping GenAI's own output tensor until the pipeline's next call, which detaches it.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline } = require('..');
const { bufferAddress } = require('../dist/internal').binding;
const { genaiOutputAddress } = require('../dist/internal').pipeline;
const { families } = require('./helpers/fixtures');

const fx = families.sd15;
const BASE = { width: 64, height: 64, steps: 2 };

describe('zero-copy output', function () {
  let pipeline;
  let fresh;
  const cache = new Map();
  /** The bytes of a call on a pipeline of its own, with the default copy. */
  async function reference(options) {
    const key = JSON.stringify(options);
    if (!cache.has(key)) {
      const out = await fresh.generate('x', options);
      cache.set(key, Buffer.concat((Array.isArray(out) ? out : [out]).map((i) => i.data)));
    }
    return cache.get(key);
  }
  before(async function () {
    pipeline = await Pipeline.load(fx.model);
    fresh = await Pipeline.load(fx.model);
  });
  after(async function () {
    await pipeline?.dispose();
    await fresh?.dispose();
  });

  it('what the design rests on: GenAI writes every result into the same output tensor, even while one is held', async function () {
    // If this fails, a later GenAI gives each result memory of its own: then borrowing could become the default.
    const a = await pipeline.generate('x', { ...BASE, seed: 1 });
    const first = genaiOutputAddress(pipeline);
    assert.notEqual(first, 0n);
    await pipeline.generate('x', { ...BASE, seed: 2 });
    assert.equal(genaiOutputAddress(pipeline), first, 'the next result went to other memory');
    const i2i = await pipeline.imageToImage('x', a, { seed: 3, steps: 2, strength: 0.5 });
    assert.equal(genaiOutputAddress(pipeline), first, 'image-to-image wrote elsewhere');
    assert.equal(i2i.data.length, a.data.length);
  });

  it("the default copy: the data is not GenAI's memory, and keeps its bytes across later calls", async function () {
    const a = await pipeline.generate('x', { ...BASE, seed: 4 });
    assert.notEqual(bufferAddress(a.data), genaiOutputAddress(pipeline));
    await pipeline.generate('x', { ...BASE, seed: 5 });
    await pipeline.generate('x', { ...BASE, seed: 6, width: 96 });
    assert.ok(a.data.equals(await reference({ ...BASE, seed: 4 })));
  });

  it("output 'borrow': the data starts at GenAI's output tensor, and holds the right bytes", async function () {
    const image = await pipeline.generate('x', { ...BASE, seed: 7, output: 'borrow' });
    assert.equal(bufferAddress(image.data), genaiOutputAddress(pipeline), "the Buffer does not wrap GenAI's memory");
    assert.equal(image.data.length, 64 * 64 * 3);
    assert.ok(image.data.equals(await reference({ ...BASE, seed: 7 })));
  });

  it('a borrowed Buffer is detached (length 0) when the next call starts, never overwritten', async function () {
    const sizes = [
      { ...BASE, seed: 8 },
      { ...BASE, seed: 9 }, // same size: GenAI writes into the very memory the last result was lent from
      { ...BASE, seed: 10, width: 96 }, // larger: GenAI reallocates, freeing the memory lent before
      { ...BASE, seed: 11, height: 32 },
    ];
    let previous;
    for (const options of sizes) {
      const image = await pipeline.generate('x', { ...options, output: 'borrow' });
      if (previous) {
        assert.equal(previous.data.length, 0, 'the earlier borrowed Buffer is still attached');
        assert.equal(previous.data.buffer.byteLength, 0);
      }
      assert.equal(bufferAddress(image.data), genaiOutputAddress(pipeline));
      assert.ok(image.data.equals(await reference(options)), `wrong bytes for ${JSON.stringify(options)}`);
      previous = image;
    }
    // Any call starts it: a copying one, an image-to-image one.
    const lent = await pipeline.generate('x', { ...BASE, seed: 12, output: 'borrow' });
    const copied = await pipeline.imageToImage(
      'x',
      { data: Buffer.alloc(64 * 64 * 3, 128), width: 64, height: 64 },
      { seed: 1, steps: 2 },
    );
    assert.equal(lent.data.length, 0);
    assert.equal(copied.data.length, 64 * 64 * 3);
  });

  it("numImages 2, borrowed: both images are views of GenAI's tensor, detached together", async function () {
    const images = await pipeline.generate('x', { ...BASE, seed: 13, numImages: 2, output: 'borrow' });
    assert.equal(bufferAddress(images[0].data), genaiOutputAddress(pipeline));
    assert.equal(bufferAddress(images[1].data), genaiOutputAddress(pipeline) + BigInt(64 * 64 * 3));
    assert.ok(Buffer.concat(images.map((i) => i.data)).equals(await reference({ ...BASE, seed: 13, numImages: 2 })));
    await pipeline.generate('x', { ...BASE, seed: 14 });
    assert.deepEqual(
      images.map((i) => i.data.length),
      [0, 0],
    );
  });

  it('a call aborted while running still detaches; calls that never reach GenAI do not', async function () {
    const lent = await pipeline.generate('x', { ...BASE, seed: 15, output: 'borrow' });
    const controller = new AbortController();
    const running = pipeline.generate('x', {
      ...BASE,
      seed: 16,
      steps: 50,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await assert.rejects(running, { code: 'ERR_ABORTED' });
    assert.equal(lent.data.length, 0);

    const kept = await pipeline.generate('x', { ...BASE, seed: 17, output: 'borrow' });
    const bytes = Buffer.from(kept.data);
    const queued = new AbortController();
    queued.abort();
    await assert.rejects(pipeline.generate('x', { ...BASE, seed: 18, signal: queued.signal }), { code: 'ERR_ABORTED' });
    await assert.rejects(pipeline.generate('x', { seed: 19, generator: 'numpy' }), { code: 'ERR_INVALID_ARGUMENT' });
    assert.ok(kept.data.equals(bytes), 'a call that never reached GenAI took the borrowed Buffer');
  });

  it('dispose detaches a borrowed Buffer too; a copy stays', async function () {
    const own = await Pipeline.load(fx.model);
    const lent = await own.generate('x', { ...BASE, seed: 20, output: 'borrow' });
    const copy = await own.generate('x', { ...BASE, seed: 20 });
    const lentAgain = await own.generate('x', { ...BASE, seed: 20, output: 'borrow' });
    assert.equal(lent.data.length, 0);
    await own.dispose();
    assert.equal(lentAgain.data.length, 0);
    assert.equal(genaiOutputAddress(own), 0n);
    assert.ok(copy.data.equals(await reference({ ...BASE, seed: 20 })));
  });

  it('a rebuild for a change of adapters detaches it too', async function () {
    const own = await Pipeline.load(fx.model);
    try {
      const lent = await own.generate('x', { ...BASE, seed: 21, output: 'borrow' });
      await own.adapters.add('a', { path: fx.lora('style-a') });
      assert.equal(own.rebuilds, 1);
      assert.equal(lent.data.length, 0);
    } finally {
      await own.dispose();
    }
  });

  it('refuses an unknown output mode with ERR_INVALID_ARGUMENT', async function () {
    await assert.rejects(pipeline.generate('x', { seed: 1, output: 'share' }), (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, /^Expected "copy" or "borrow" for options\.output but received "share"/);
      return true;
    });
  });
});
