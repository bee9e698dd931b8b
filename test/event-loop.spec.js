// Generation runs off the JS thread: timers keep firing while GenAI loads and denoises.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline } = require('..');
const { families } = require('./helpers/fixtures');

/** Runs `work` while a 5 ms interval ticks; returns the ticks, the time it took and what it returned. */
async function withTicks(work) {
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
  }, 5);
  const started = process.hrtime.bigint();
  try {
    const value = await work();
    return { ticks, ms: Number(process.hrtime.bigint() - started) / 1e6, value };
  } finally {
    clearInterval(timer);
  }
}

// A JS thread blocked by the work would leave 0 or 1 tick. A slow, busy machine gets a wide margin.
function assertTurned({ ticks, ms }) {
  assert.ok(ms > 100, `the work took only ${ms.toFixed(0)} ms: too short to tell`);
  assert.ok(ticks >= Math.min(10, ms / 50), `only ${ticks} ticks in ${ms.toFixed(0)} ms`);
}

describe('the event loop', function () {
  let pipeline;
  before(async function () {
    pipeline = await Pipeline.load(families.sdxl.model, { adapters: { a: { path: families.sdxl.lora('style-a') } } });
  });
  after(async function () {
    await pipeline?.dispose();
  });

  it('keeps turning during a generate', async function () {
    assertTurned(
      await withTicks(() =>
        pipeline.generate('a field', { seed: 3, width: 128, height: 128, steps: 8, adapters: 'a' }),
      ),
    );
  });

  it('keeps turning while a model loads', async function () {
    const result = await withTicks(() => Pipeline.load(families.sd15.model));
    await result.value.dispose();
    assertTurned(result);
  });
});
