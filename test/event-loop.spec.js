// Generation runs off the JS thread: timers keep firing while GenAI denoises.
'use strict';
const assert = require('node:assert/strict');
const { Pipeline } = require('..');
const { families } = require('./helpers/fixtures');

describe('the event loop during a generate', function () {
  let pipeline;
  before(async function () {
    pipeline = await Pipeline.load(families.sdxl.model, { adapters: { a: { path: families.sdxl.lora('style-a') } } });
  });
  after(async function () {
    await pipeline?.dispose();
  });

  it('keeps turning: a 5 ms interval ticks all along', async function () {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 5);
    const started = process.hrtime.bigint();
    try {
      await pipeline.generate('a field of flowers', { seed: 3, width: 128, height: 128, steps: 8, adapters: 'a' });
    } finally {
      clearInterval(timer);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(ms > 100, `the generate took only ${ms.toFixed(0)} ms: too short to tell`);
    // A generate that blocked the JS thread would leave 0 or 1 tick. Allow a slow, busy machine a wide margin.
    assert.ok(ticks >= Math.min(10, ms / 50), `only ${ticks} ticks in ${ms.toFixed(0)} ms`);
  });

  it('keeps turning while the model loads', async function () {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 5);
    const started = process.hrtime.bigint();
    let other;
    try {
      other = await Pipeline.load(families.sd15.model);
    } finally {
      clearInterval(timer);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    await other.dispose();
    assert.ok(ticks >= Math.min(10, ms / 50), `only ${ticks} ticks in ${ms.toFixed(0)} ms`);
  });
});
