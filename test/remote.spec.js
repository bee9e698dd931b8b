// Scale-out on BullMQ and Redis: `multilora worker` processes take RemoteQueue's jobs from a real redis-server
// (Debian's, installed by scripts/setup-redis.sh, started here on loopback), and give the bytes of local generation.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { writeFileSync } = require('node:fs');
const path = require('node:path');

const { Pipeline, RemoteQueue, defaultModelDir } = require('..');
const { families, useTempDir, freePort, rejectsWith } = require('./helpers/fixtures');
const { MAIN, requireRedis, startRedis, startWorker, jobsOf } = require('./helpers/redis');

const fx = families.sdxl;

/**
 * Enqueues `calls` and records the order in which their progress events arrive. `overlap(worker)`, once the first two
 * have finished, tells whether the second started before the first completed (by the worker's log lines, which must
 * both be there) and whether their steps interleaved: both generations running at the same time, which one pipeline
 * never does (it runs one call at a time), so they ran on different pipelines.
 */
async function runTwoAtOnce(queue, prompt, calls) {
  const order = [];
  const jobs = [];
  for (const [i, call] of calls.entries())
    jobs.push(await queue.enqueue(prompt, { ...call, onProgress: () => order.push(i) }));
  const overlap = (w) => {
    const lines = w.log.split('\n');
    const at = (re) => {
      const n = lines.findIndex((l) => re.test(l));
      assert.ok(n >= 0, `no line ${re} in the worker's log:\n${w.log}`);
      return n;
    };
    const startedBeforeCompleted =
      at(new RegExp(`job ${jobs[1].id} started`)) < at(new RegExp(`job ${jobs[0].id} completed`));
    const first = order.filter((i) => i < 2);
    assert.ok(first.includes(0) && first.includes(1), `progress of both jobs: ${first}`);
    const interleaved = first.indexOf(1) < first.lastIndexOf(0);
    return { startedBeforeCompleted, interleaved, order: first.join('') };
  };
  return { jobs, overlap };
}

describe('RemoteQueue and multilora worker (BullMQ on Redis)', function () {
  this.timeout(600_000);
  const tmp = useTempDir('multilora-remote-');
  let redis;
  let catalog;
  let local;
  const workers = [];

  before(async function () {
    requireRedis();
    redis = await startRedis();
    catalog = path.join(tmp(), 'catalog.json');
    writeFileSync(
      catalog,
      JSON.stringify({ a: { path: fx.lora('style-a'), alpha: 0.8 }, b: { path: fx.lora('style-b'), alpha: 0.6 } }),
    );
    // Local generation, with the same adapters registered (registering adapters moves the bytes a little: SDK.md),
    // and the same thread count as the workers (OpenVINO's CPU results depend on it).
    local = await Pipeline.load(defaultModelDir(), { catalog, threads: 1 });
  });

  after(async function () {
    for (const w of workers) w.child.kill('SIGKILL');
    await local?.dispose();
    redis?.stop();
  });

  function spawnWorker(extra, adapters = catalog) {
    const w = startWorker(redis.url, adapters, extra);
    workers.push(w);
    return w;
  }

  it('checks its options, and rejects with ERR_REMOTE when Redis cannot be reached', async function () {
    assert.throws(() => new RemoteQueue({ redis: 'http://x' }), {
      code: 'ERR_INVALID_ARGUMENT',
      message: /redis:\/\/ or rediss:\/\/ URL/,
    });
    assert.throws(() => new RemoteQueue({ url: redis.url }), { code: 'ERR_INVALID_ARGUMENT' });
    const down = new RemoteQueue({ redis: `redis://127.0.0.1:${await freePort()}` });
    const t = Date.now();
    await rejectsWith(down.enqueue('a cat'), 'ERR_REMOTE', /Could not enqueue the job in Redis/);
    assert.ok(Date.now() - t < 15_000, `${Date.now() - t} ms`);
    await down.close();
    await rejectsWith(down.enqueue('a cat'), 'ERR_DISPOSED');
    const queue = new RemoteQueue({ redis: redis.url, queue: 'checks' });
    try {
      await rejectsWith(queue.enqueue('a cat', { seed: 1, sed: 2 }), 'ERR_INVALID_ARGUMENT', /did you mean "seed"/);
      await rejectsWith(queue.enqueue('a cat', { numImages: 0 }), 'ERR_INVALID_ARGUMENT', /options\.numImages/);
      await rejectsWith(queue.enqueue('a cat', { seed: 10n }), 'ERR_INVALID_ARGUMENT', /cannot travel as JSON/);
    } finally {
      await queue.close();
    }
    const r = await new Promise((resolve) => {
      const child = spawn(process.execPath, [MAIN, 'worker', '--redis', `redis://127.0.0.1:${1}`], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('exit', (code) => resolve({ code, err }));
    });
    assert.equal(r.code, 1);
    assert.match(r.err, /ERR_REMOTE: Could not reach Redis at redis:\/\/127\.0\.0\.1:1/);
  });

  it('checks a job once per process: the values on enqueue, the whole call once on the worker', async function () {
    const { remoteWorker, options } = require('../dist/internal');
    const checks = { call: 0, enqueue: 0 };
    options.checkHooks.onCheck = (check) => (checks[check] += 1);
    const worker = await remoteWorker.startWorker({
      redis: redis.url,
      model: defaultModelDir(),
      catalog,
      queue: 'once',
      threads: 1,
    });
    const queue = new RemoteQueue({ redis: redis.url, queue: 'once' });
    try {
      await rejectsWith(
        queue.enqueue('a cat', { steps: 1001 }),
        'ERR_INVALID_ARGUMENT',
        /from 1 to 1000 for options\.steps/,
      );
      const job = await queue.enqueue('a cat', { seed: 3, steps: 2, adapters: { a: 0.5 } });
      const image = await job.result();
      assert.equal(image.seed, 3);
      assert.equal(checks.call, 1, 'checkGenerate calls in this process (the caller runs none, the worker one)');
      assert.equal(checks.enqueue, 2, 'checkEnqueue calls: one for each enqueue, the refused one included');
      assert.deepEqual((await job.details()).adapters, { a: 0.5 });
    } finally {
      options.checkHooks.onCheck = undefined;
      await queue.close();
      await worker.close();
    }
  });

  it('a job that names an unknown adapter fails fast with ERR_INVALID_ARGUMENT, at enqueue or on the worker', async function () {
    const queue = new RemoteQueue({ redis: redis.url, queue: 'unknown' });
    try {
      // No worker yet: the job goes in, and the first worker fails it at once, as generate would.
      const early = await queue.enqueue('a cat', { adapters: { zzz: 1 } });
      const w = spawnWorker(['--queue', 'unknown']);
      await w.ready;
      const t = Date.now();
      await rejectsWith(early.result(), 'ERR_INVALID_ARGUMENT', /zzz/);
      assert.ok(Date.now() - t < 5000);
      assert.equal((await early.details()).state, 'failed');
      // With a worker live, the queue refuses the job itself, naming the adapters there are.
      await rejectsWith(
        queue.enqueue('a cat', { adapters: ['a', 'zz'] }),
        'ERR_INVALID_ARGUMENT',
        /Unknown adapter "zz": the workers have "a", "b"/,
      );
      // and the worker is still good for the next job
      const ok = await queue.enqueue('a cat', { adapters: 'a', seed: 3, steps: 2 });
      const image = await ok.result();
      assert.ok(image.data.equals((await local.generate('a cat', { adapters: 'a', seed: 3, steps: 2 })).data));
      w.child.kill('SIGTERM');
      assert.deepEqual(await w.exited, { code: 0, signal: null });
    } finally {
      await queue.close();
    }
  });

  it('3 workers take 20 jobs of mixed adapters; one is killed (SIGKILL) mid-job, its job is retried elsewhere; all 20 equal local generation', async function () {
    const queue = new RemoteQueue({ redis: redis.url });
    const pool = [spawnWorker(), spawnWorker(), spawnWorker()];
    try {
      await Promise.all(pool.map((w) => w.ready));
      assert.equal((await queue.workers()).length, 3);
      const selections = [null, 'a', 'b', { a: 0.5, b: 0.7 }, ['a', 'b'], { b: 1.2 }];
      const calls = Array.from({ length: 20 }, (_, i) => ({
        adapters: selections[i % selections.length],
        seed: 100 + i,
        steps: 8,
      }));
      const progress = new Map();
      const jobs = [];
      for (const call of calls) {
        const job = await queue.enqueue(`a lighthouse ${call.seed}`, {
          ...call,
          onProgress: (e) => progress.set(call.seed, e),
        });
        jobs.push(job);
      }
      // Kill one worker while it runs a job.
      const victim = pool[1];
      await victim.waitFor(/job \S+ started/);
      const [lost] = jobsOf(victim);
      victim.child.kill('SIGKILL');
      assert.equal((await victim.exited).signal, 'SIGKILL');

      const images = await Promise.all(jobs.map((j) => j.result()));
      for (const [i, call] of calls.entries()) {
        const want = await local.generate(`a lighthouse ${call.seed}`, call);
        assert.ok(
          images[i].data.equals(want.data),
          `job ${i} (${JSON.stringify(call.adapters)}) differs from local generation`,
        );
        assert.equal(images[i].seed, call.seed);
        assert.equal(progress.get(call.seed)?.total, 8);
      }
      const retried = await queue.job(lost);
      const details = await retried.details();
      assert.equal(details.state, 'completed');
      assert.ok(details.attempts >= 2, `attempts ${details.attempts}`);
      assert.ok(!details.worker.includes(`:${victim.child.pid}:`), 'another worker completed the lost job');
      assert.ok(jobsOf(pool[0]).length > 0 && jobsOf(pool[2]).length > 0, 'both survivors took jobs');
      assert.deepEqual(Object.keys((await jobs[3].details()).adapters), ['a', 'b']);
      // the killed worker stops counting once its liveness key expires, 7 s after its last heartbeat
      const t = Date.now();
      while ((await queue.workers()).length !== 2 && Date.now() - t < 15_000)
        await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual((await queue.workers()).map((w) => w.pid).sort(), [pool[0].child.pid, pool[2].child.pid].sort());
    } finally {
      for (const w of pool) w.child.kill('SIGTERM');
      await Promise.all(pool.map((w) => w.exited));
      await queue.close();
    }
  });

  it('--concurrency 2 with --lora adapters: one worker runs two jobs at once, each on its own pipeline, with local bytes', async function () {
    const queue = new RemoteQueue({ redis: redis.url, queue: 'concurrency' });
    // The catalogue's adapters, at its alphas, given on the command line instead.
    const w = spawnWorker(
      [
        '--queue',
        'concurrency',
        '--concurrency',
        '2',
        '--lora',
        `a=${fx.lora('style-a')}:0.8`,
        '--lora',
        `b=${fx.lora('style-b')}:0.6`,
      ],
      null,
    );
    try {
      await w.ready;
      const [info] = await queue.workers();
      assert.equal(info.concurrency, 2);
      assert.deepEqual(
        info.adapters.map((a) => [a.name, a.alpha]),
        [
          ['a', 0.8],
          ['b', 0.6],
        ],
      );
      const calls = [
        { adapters: 'a', seed: 21 },
        { adapters: { b: 0.9 }, seed: 22 },
        { adapters: null, seed: 23 },
        { adapters: ['a', 'b'], seed: 24 },
      ].map((c) => ({ ...c, steps: 12 }));
      const { jobs, overlap } = await runTwoAtOnce(queue, 'a windmill', calls);
      const images = await Promise.all(jobs.map((j) => j.result()));
      for (const [i, call] of calls.entries()) {
        assert.ok(
          images[i].data.equals((await local.generate('a windmill', call)).data),
          `job ${i} differs from local generation`,
        );
      }
      const seen = overlap(w);
      assert.ok(seen.startedBeforeCompleted, `the second job started after the first completed:\n${w.log}`);
      assert.ok(seen.interleaved, `the two jobs' steps did not interleave: ${seen.order}`);
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
      await queue.close();
    }
  });

  it('--concurrency 1: the same two jobs run one after the other (the check above can fail)', async function () {
    const queue = new RemoteQueue({ redis: redis.url, queue: 'one-at-a-time' });
    const w = spawnWorker(['--queue', 'one-at-a-time', '--concurrency', '1']);
    try {
      await w.ready;
      const calls = [
        { adapters: 'a', seed: 21 },
        { adapters: { b: 0.9 }, seed: 22 },
      ].map((c) => ({ ...c, steps: 12 }));
      const { jobs, overlap } = await runTwoAtOnce(queue, 'a windmill', calls);
      await Promise.all(jobs.map((j) => j.result()));
      const seen = overlap(w);
      assert.equal(seen.startedBeforeCompleted, false, w.log);
      assert.equal(seen.interleaved, false, seen.order);
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
      await queue.close();
    }
  });

  it('cancel reaches the running worker, which stops at its next step; a waiting job is removed at once', async function () {
    const queue = new RemoteQueue({ redis: redis.url, queue: 'cancel' });
    const w = spawnWorker(['--queue', 'cancel']);
    try {
      await w.ready;
      let steps = 0;
      const long = await queue.enqueue('a storm', { seed: 5, steps: 400, onProgress: () => (steps += 1) });
      const waiting = await queue.enqueue('a calm', { seed: 6, steps: 2 });
      while (steps < 2) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await waiting.state(), 'waiting');
      await waiting.cancel();
      await rejectsWith(waiting.result(), 'ERR_ABORTED');
      assert.equal(await waiting.state(), 'unknown');
      const t = Date.now();
      await long.cancel();
      await rejectsWith(long.result(), 'ERR_ABORTED');
      assert.ok(Date.now() - t < 5000, `stopped ${Date.now() - t} ms after cancel`);
      assert.ok(steps < 400, `${steps} steps ran`);
      assert.match(w.log, /failed: The operation was aborted/);
      // An AbortSignal does the same.
      const controller = new AbortController();
      const viaSignal = await queue.enqueue('a storm', {
        seed: 7,
        steps: 400,
        signal: controller.signal,
        onProgress: () => controller.abort(),
      });
      await rejectsWith(viaSignal.result(), 'ERR_ABORTED');
      // and the worker goes on
      const next = await queue.enqueue('a calm', { seed: 6, steps: 2 });
      assert.ok((await next.result()).data.equals((await local.generate('a calm', { seed: 6, steps: 2 })).data));
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
      await queue.close();
    }
  });

  it('a graceful shutdown finishes the running job; a second signal hands it back to the queue for another worker', async function () {
    const queue = new RemoteQueue({ redis: redis.url, queue: 'shutdown' });
    try {
      const first = spawnWorker(['--queue', 'shutdown']);
      await first.ready;
      let steps = 0;
      const job = await queue.enqueue('a harbour', { seed: 9, steps: 30, onProgress: () => (steps += 1) });
      while (steps < 1) await new Promise((r) => setTimeout(r, 20));
      first.child.kill('SIGTERM');
      const image = await job.result();
      assert.equal(steps, 30);
      assert.deepEqual(await first.exited, { code: 0, signal: null });
      assert.ok(image.data.equals((await local.generate('a harbour', { seed: 9, steps: 30 })).data));

      const second = spawnWorker(['--queue', 'shutdown']);
      await second.ready;
      steps = 0;
      const handed = await queue.enqueue('a harbour at night', { seed: 10, steps: 60, onProgress: () => (steps += 1) });
      while (steps < 1) await new Promise((r) => setTimeout(r, 20));
      second.child.kill('SIGTERM');
      await second.waitFor(/closing: the running jobs finish first/);
      second.child.kill('SIGTERM');
      assert.deepEqual(await second.exited, { code: 0, signal: null });
      assert.match(second.log, /handed back to the queue/);
      assert.equal(await handed.state(), 'waiting');
      const third = spawnWorker(['--queue', 'shutdown']);
      const done = await handed.result();
      assert.ok(done.data.equals((await local.generate('a harbour at night', { seed: 10, steps: 60 })).data));
      assert.equal(jobsOf(third).length, 1);
      third.child.kill('SIGTERM');
      await third.exited;
    } finally {
      await queue.close();
    }
  });

  it('results stay in Redis for --result-ttl seconds: then ERR_RESULT_EXPIRED', async function () {
    const queue = new RemoteQueue({ redis: redis.url, queue: 'ttl' });
    const other = new RemoteQueue({ redis: redis.url, queue: 'ttl' });
    const w = spawnWorker(['--queue', 'ttl', '--result-ttl', '1']);
    try {
      await w.ready;
      const job = await queue.enqueue('a cat', { seed: 1, steps: 1, scheduler: 'euler' });
      const image = await job.result();
      assert.equal(image.width, 64);
      await new Promise((r) => setTimeout(r, 2500));
      // Another process that follows the job by its id finds the record, but no longer the bytes.
      const again = await other.job(job.id);
      assert.equal((await again.details()).state, 'completed');
      await rejectsWith(again.result(), 'ERR_RESULT_EXPIRED', /results stay 1 s after the job completes/);
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
      await queue.close();
      await other.close();
    }
  });
});
