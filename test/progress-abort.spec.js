// Progress on every step, without ever blocking the denoising thread; cancellation by AbortSignal.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline, AbortError, MultiloraError } = require('..');
const { families } = require('./helpers/fixtures');

const fx = families.sdxl;
/** How many progress events wait for JS at most (native/pipeline_generate_worker.cc); later ones are dropped. */
const QUEUE = 8;

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
    assert.deepEqual(
      events.map((e) => [e.step, e.total]),
      [1, 2, 3, 4, 5, 6].map((s) => [s, 6]),
    );
    for (let i = 1; i < events.length; i += 1) assert.ok(events[i].elapsedMs >= events[i - 1].elapsedMs);
    assert.equal(events[0].preview, undefined);
    assert.ok(image.data.length > 0);
  });

  it('attaches a latent preview when asked', async function () {
    const events = [];
    await pipeline.generate('a hill', {
      seed: 9,
      steps: 2,
      width: 96,
      height: 64,
      preview: true,
      onProgress: (e) => events.push(e),
    });
    const { preview } = events[0];
    assert.deepEqual([preview.width, preview.height, preview.channels], [48, 32, 3]); // latent size: VAE scale 2
    assert.equal(preview.data.length, 48 * 32 * 3);
  });

  it('drops events rather than waiting when the JS thread is busy, and still finishes', async function () {
    const steps = 120;
    const call = (onProgress) => pipeline.generate('a hill', { seed: 9, steps, onProgress });
    let t = performance.now();
    const unheld = await call(() => undefined);
    const runMs = performance.now() - t;
    // Hold the JS thread from inside the first step's event (so that the run is surely going) for half of what
    // the whole run takes: some 60 steps. GenAI calls our step callback on a thread of its own, through a queue
    // that never makes the denoising loop wait (ThreadedCallbackWrapper), so the loop is still running when the
    // hold ends. Our callback queues at most 8 events for JS and drops the rest; one that waited for JS instead
    // would hold GenAI's callback thread, and its later steps would reach us only after the hold.
    const holdMs = runMs / 2;
    const events = [];
    let heldFrom;
    const image = await call((e) => {
      events.push(e);
      if (e.step !== 1) return;
      heldFrom = e.elapsedMs;
      t = performance.now();
      while (performance.now() - t < holdMs) {
        /* busy */
      }
    });
    const got = events.map((e) => e.step);
    assert.equal(got[0], 1);
    assert.deepEqual(
      [...got].sort((a, b) => a - b),
      got,
      'events out of order',
    );
    // elapsedMs is taken in our callback, before the event is queued for JS. Waiting, the callback would stall
    // once the queue was full (step 1's event held, 8 behind it), and its next step would come after the hold.
    // Dropping, it keeps pace with the loop: the first step after the hold is many steps further on.
    const firstLate = events.find((e) => e.elapsedMs - heldFrom >= holdMs);
    assert.ok(
      firstLate === undefined || firstLate.step > QUEUE + 4,
      `the callback waited for JS: step ${firstLate?.step} came ${Math.round(firstLate?.elapsedMs - heldFrom)} ms after step 1, after the ${Math.round(holdMs)} ms hold`,
    );
    assert.ok(got.length < steps, `all ${steps} events arrived: none was dropped`);
    assert.ok(image.data.equals(unheld.data), 'the held run gave other bytes');
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
    const queued = pipeline.generate('a hill', {
      steps: 4,
      signal: controller.signal,
      onProgress: () => (queuedSteps += 1),
    });
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
      pipeline.generate('a hill', {
        steps: 50,
        onProgress: () => {
          throw boom;
        },
      }),
      (err) => err.code === 'ERR_CALLBACK' && err.cause === boom,
    );
    await stillGivesReference();
  });
});
