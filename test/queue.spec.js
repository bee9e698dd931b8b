'use strict';
const assert = require('node:assert/strict');
const { TaskQueue } = require('../dist/internal').taskQueue;

describe('TaskQueue', function () {
  it('runs tasks one at a time, in order', async function () {
    const queue = new TaskQueue();
    const log = [];
    let running = 0;
    const task = (id, ms) => async () => {
      running += 1;
      assert.equal(running, 1, 'two tasks ran at once');
      log.push(`start ${id}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`end ${id}`);
      running -= 1;
      return id;
    };
    const results = await Promise.all([queue.run(task(1, 20)), queue.run(task(2, 1)), queue.run(task(3, 5))]);
    assert.deepEqual(results, [1, 2, 3]);
    assert.deepEqual(log, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  });

  it('keeps going after a failed task, and counts what is pending', async function () {
    const queue = new TaskQueue();
    const failed = queue.run(async () => {
      throw new Error('boom');
    });
    const ok = queue.run(async () => 'fine');
    assert.equal(queue.size, 2);
    await assert.rejects(failed, /boom/);
    assert.equal(await ok, 'fine');
    await queue.drain();
    assert.equal(queue.size, 0);
  });
});
