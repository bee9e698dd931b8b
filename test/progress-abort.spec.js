// Progress on every step, without ever blocking the denoising thread; cancellation by AbortSignal.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline, AbortError, MultiloraError } = require('..');
const { families } = require('./helpers/fixtures');

const fx = families.sdxl;

describe('progress and cancellation', function () {
  let pipeline;
  let reference;
  before(async function () {
    pipeline = await Pipeline.load(fx.model, { adapters: { a: { path: fx.lora('style-a') } } });
    reference = (await pipeline.generate('a hill', { seed: 9, steps: 4, adapters: 'a' })).data;
  });
  after(async function () {
    await pipeline?.dispose();
  });
  async function stillGivesReference() {
    const again = await pipeline.generate('a hill', { seed: 9, steps: 4, adapters: 'a' });
    assert.ok(again.data.equals(reference), 'the pipeline no longer gives its reference bytes');
  }

  it('reports every step, in order, before the promise settles', async function () {
    const events = [];
    const image = await pipeline.generate('a hill', { seed: 9, steps: 6, onProgress: (e) => events.push(e) });
    assert.deepEqual(events.map((e) => [e.step, e.total]), [1, 2, 3, 4, 5, 6].map((s) => [s, 6]));
    for (let i = 1; i < events.length; i += 1) assert.ok(events[i].elapsedMs >= events[i - 1].elapsedMs);
    assert.equal(events[0].preview, undefined);
    assert.ok(image.data.length > 0);
  });

  it('attaches a latent preview when asked', async function () {
    const events = [];
    await pipeline.generate('a hill', { seed: 9, steps: 2, width: 96, height: 64, preview: true, onProgress: (e) => events.push(e) });
    const { preview } = events[0];
    assert.deepEqual([preview.width, preview.height, preview.channels], [48, 32, 3]); // latent size: VAE scale 2
    assert.equal(preview.data.length, 48 * 32 * 3);
  });

  it('drops events rather than waiting when the JS thread is busy, and still finishes', async function () {
    const events = [];
    const run = pipeline.generate('a hill', { seed: 9, steps: 40, onProgress: (e) => events.push(e.step) });
    const until = Date.now() + 1500; // hold the JS thread: the denoising loop must go on without it
    while (Date.now() < until) {
      /* busy */
    }
    const image = await run;
    assert.ok(image.data.length > 0);
    assert.ok(events.length >= 1 && events.length <= 40, `${events.length} events`);
    assert.deepEqual([...events].sort((a, b) => a - b), events, 'events out of order');
  });

  it('stops a running call at the next step: AbortError, code ERR_ABORTED; the pipeline stays usable', async function () {
    const controller = new AbortController();
    let seen = 0;
    const started = Date.now();
    await assert.rejects(
      pipeline.generate('a hill', {
        seed: 9,
        steps: 500,
        signal: controller.signal,
        onProgress: (e) => {
          seen = e.step;
          if (e.step === 2) controller.abort();
        },
      }),
      (err) => err instanceof AbortError && err instanceof MultiloraError && err.code === 'ERR_ABORTED',
    );
    assert.ok(seen < 50, `ran on to step ${seen}`);
    assert.ok(Date.now() - started < 60_000);
    await stillGivesReference();
  });

  it('an abort before the start never reaches native code', async function () {
    const controller = new AbortController();
    controller.abort(new Error('changed my mind'));
    let steps = 0;
    await assert.rejects(
      pipeline.generate('a hill', { signal: controller.signal, onProgress: () => (steps += 1) }),
      (err) => err.code === 'ERR_ABORTED' && err.cause.message === 'changed my mind',
    );
    assert.equal(steps, 0);
    assert.equal(pipeline.pending, 0);
  });

  it('an abort while queued rejects at once; the calls around it are untouched', async function () {
    const controller = new AbortController();
    let queuedSteps = 0;
    const first = pipeline.generate('a hill', { seed: 9, steps: 4, adapters: 'a' });
    const queued = pipeline.generate('a hill', { steps: 4, signal: controller.signal, onProgress: () => (queuedSteps += 1) });
    const last = pipeline.generate('a hill', { seed: 9, steps: 4, adapters: 'a' });
    controller.abort();
    await assert.rejects(queued, { code: 'ERR_ABORTED' });
    assert.ok((await first).data.equals(reference));
    assert.ok((await last).data.equals(reference));
    assert.equal(queuedSteps, 0);
  });

  it('a throwing onProgress stops the run: ERR_CALLBACK with the error as cause', async function () {
    const boom = new Error('boom');
    await assert.rejects(
      pipeline.generate('a hill', { steps: 50, onProgress: () => { throw boom; } }),
      (err) => err.code === 'ERR_CALLBACK' && err.cause === boom,
    );
    await stillGivesReference();
  });
});
