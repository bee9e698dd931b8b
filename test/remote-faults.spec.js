// Scale-out under faults, as an operator meets them: Redis restarted (with and without persistence), bogus records
// in the workers hash, hosts whose clocks disagree, jobs too large for a worker or not jobs at all, and a worker
// told to stop while Redis is gone. Real redis-server and `multilora worker` processes on loopback.
'use strict';
const assert = require('node:assert/strict');
const { writeFileSync } = require('node:fs');
const path = require('node:path');

const { Pipeline, RemoteQueue, defaultModelDir } = require('..');
const { startServer } = require('../dist/internal').server;
const { families, useTempDir, until, rejectsWith } = require('./helpers/fixtures');
const { requireRedis, startRedis, startWorker } = require('./helpers/redis');

const fx = families.sdxl;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A connection of the test's own, to read and write Redis as an operator (or a stranger) would. */
const redisClient = (url) => new (require('ioredis'))(url, { maxRetriesPerRequest: 1 });

describe('scale-out under faults (Redis restarts, bad records, clocks, limits, shutdown without Redis)', function () {
  this.timeout(600_000);
  const tmp = useTempDir('multilora-faults-');
  let catalog;
  let local;
  const cleanups = [];

  before(async function () {
    requireRedis();
    catalog = path.join(tmp(), 'catalog.json');
    writeFileSync(
      catalog,
      JSON.stringify({ a: { path: fx.lora('style-a'), alpha: 0.8 }, b: { path: fx.lora('style-b'), alpha: 0.6 } }),
    );
    local = await Pipeline.load(defaultModelDir(), { catalog, threads: 1 });
  });

  afterEach(async function () {
    while (cleanups.length) await cleanups.pop()();
  });

  after(async function () {
    await local?.dispose();
  });

  /** A redis-server for one test (restarts must not disturb the others). */
  async function redisServer(options) {
    const redis = await startRedis(options);
    cleanups.push(async () => redis.stop());
    return redis;
  }

  function worker(url, extra = [], env = undefined) {
    const w = startWorker(url, catalog, extra, env);
    cleanups.push(async () => {
      w.child.kill('SIGKILL');
      await w.exited;
    });
    return w;
  }

  function queue(options) {
    const q = new RemoteQueue(options);
    cleanups.push(() => q.close());
    return q;
  }

  /** Settles to { image } or { err }, and how long after `since` it did. */
  const outcome = (promise, since) =>
    promise.then(
      (image) => ({ image, ms: Date.now() - since() }),
      (err) => ({ err, ms: Date.now() - since() }),
    );

  it('Redis restarted without persistence: the waiter gets ERR_JOB_LOST, never the new job of the same number; later jobs are whole', async function () {
    const redis = await redisServer();
    const w = worker(redis.url, ['--queue', 'restart']);
    await w.ready;
    const a = queue({ redis: redis.url, queue: 'restart' });
    let steps = 0;
    const jobA = await a.enqueue('a lighthouse', {
      seed: 4242,
      width: 128,
      height: 128,
      steps: 120,
      onProgress: () => (steps += 1),
    });
    await until('a step of job A', () => steps >= 1);
    let restartedAt;
    const resultA = outcome(jobA.result(), () => restartedAt);
    await redis.restart();
    restartedAt = Date.now();

    // Another client fills the new, empty Redis with small jobs; before random ids, one of them had A's number.
    const b = queue({ redis: redis.url, queue: 'restart' });
    const jobsB = [];
    for (let i = 0; i < 25; i += 1)
      jobsB.push(await b.enqueue('a small cat', { seed: 9000 + i, width: 32, height: 32, steps: 1 }));
    assert.ok(!jobsB.some((j) => j.id === jobA.id), 'a job id came round again');

    const gotA = await resultA;
    assert.equal(
      gotA.image,
      undefined,
      `A was handed an image: ${gotA.image?.width}x${gotA.image?.height}, seed ${gotA.image?.seed}`,
    );
    assert.equal(gotA.err.code, 'ERR_JOB_LOST', gotA.err.message);
    assert.match(gotA.err.message, /no longer in Redis/);
    assert.ok(gotA.ms < 30_000, `settled ${gotA.ms} ms after the restart`);
    // The worker stops the job that Redis lost (when its lock cannot be renewed), rather than finish it for nobody.
    const stopped = w.waitFor(new RegExp(`job ${jobA.id} stopped: Redis no longer has it`));
    assert.equal(
      await Promise.race([stopped.then(() => 'stopped'), sleep(15_000).then(() => 'still running')]),
      'stopped',
      w.log,
    );

    // A leaves: its cancel flag names its own job only, and goes after a while.
    await jobA.cancel();
    const r = redisClient(redis.url);
    cleanups.push(() => r.quit());
    const ttl = await r.ttl(`multilora:restart:cancel:${jobA.id}`);
    assert.ok(ttl > 0 && ttl <= 600, `the cancel flag lives ${ttl} s`);

    // Every job of B completes as asked: its own seed and size, nothing cancelled.
    const images = await Promise.all(jobsB.map((j) => j.result()));
    for (const [i, image] of images.entries()) {
      assert.equal(image.seed, 9000 + i);
      assert.deepEqual([image.width, image.height], [32, 32]);
    }
    for (const i of [0, 24]) {
      assert.ok(
        images[i].data.equals(
          (await local.generate('a small cat', { seed: 9000 + i, width: 32, height: 32, steps: 1 })).data,
        ),
        `job ${i} of B`,
      );
    }
    const counts = await b.counts();
    assert.deepEqual([counts.waiting, counts.active], [0, 0]);
  });

  it('Redis restarted with appendonly persistence: the running job completes, and its waiter gets its own image', async function () {
    const redis = await redisServer({ appendonly: true });
    const w = worker(redis.url, ['--queue', 'aof']);
    await w.ready;
    const q = queue({ redis: redis.url, queue: 'aof' });
    let steps = 0;
    const call = { seed: 4242, width: 128, height: 128, steps: 60 };
    const job = await q.enqueue('a lighthouse', { ...call, onProgress: () => (steps += 1) });
    await until('a step of the job', () => steps >= 1);
    await redis.restart();
    const image = await job.result();
    assert.ok(image.data.equals((await local.generate('a lighthouse', call)).data), "the image is not the job's own");
    const next = await q.enqueue('a small cat', { seed: 7, width: 32, height: 32, steps: 1 });
    assert.equal((await next.result()).seed, 7);
  });

  it('serve --redis through a restart without persistence: the request answers 503 ERR_JOB_LOST and frees its slot', async function () {
    const redis = await redisServer();
    const w = worker(redis.url, ['--queue', 'serve-restart']);
    await w.ready;
    const server = await startServer({
      redis: redis.url,
      queue: 'serve-restart',
      host: '127.0.0.1',
      port: 0,
      maxQueue: 1,
    });
    cleanups.push(() => server.close());
    const post = (body) =>
      fetch(`${server.url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const pending = post({ prompt: 'a lighthouse', seed: 4242, size: '128x128', steps: 120 });
    await until('the job running on the worker', () => /job \S+ started/.test(w.log));
    await redis.restart();
    const restartedAt = Date.now();
    const res = await pending;
    const body = await res.json();
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, 'ERR_JOB_LOST');
    assert.ok(Date.now() - restartedAt < 30_000);
    const status = await (await fetch(`${server.url}/v1/status`)).json();
    assert.deepEqual([status.queue.active, status.backend.waiting, status.backend.active], [0, 0, 0]);
    // The slot is free (maxQueue 1): the next request is served.
    const ok = await post({ prompt: 'a small cat', seed: 5, size: '32x32', steps: 1 });
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal((await ok.json()).seed, 5);
  });

  it('bogus and dead entries in the workers hash are skipped and removed; the API and the queue go on', async function () {
    const redis = await redisServer();
    const w = worker(redis.url, ['--queue', 'bogus']);
    await w.ready;
    const r = redisClient(redis.url);
    cleanups.push(() => r.quit());
    const key = 'multilora:bogus:workers';
    const [real] = Object.values(await r.hgetall(key)).map((t) => JSON.parse(t));
    // Not JSON; JSON of another shape, dated in the future; the same under its own id with a liveness key (it would
    // count as live); a worker's description whose worker is dead.
    const ghost = { ...real, id: 'ghost', pid: 1 };
    const plant = () =>
      r
        .multi()
        .hset(
          key,
          'bogus',
          'not json',
          'future',
          JSON.stringify({ heartbeat: 9999999999999, adapters: null }),
          'ghost',
          JSON.stringify(ghost),
        )
        .hset(key, 'evil', JSON.stringify({ id: 'evil', heartbeat: 9999999999999, adapters: null }))
        .set('multilora:bogus:alive:evil', '1', 'EX', 600)
        .exec();
    await plant();
    const server = await startServer({ redis: redis.url, queue: 'bogus', host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.close());
    await plant(); // the server read the hash once at start: planted again for the requests below
    await sleep(1100); // past the server's cache of the workers' info

    const loras = await fetch(`${server.url}/v1/loras`);
    assert.equal(loras.status, 200, await loras.clone().text());
    assert.deepEqual(
      (await loras.json()).data.map((l) => l.name),
      ['a', 'b'],
    );
    await plant();
    await sleep(1100);
    const gen = await fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a cat', loras: { a: 0.8 }, seed: 3, steps: 2 }),
    });
    assert.equal(gen.status, 200, await gen.clone().text());

    await plant();
    const q = queue({ redis: redis.url, queue: 'bogus' });
    const live = await q.workers();
    assert.deepEqual(
      live.map((x) => x.id),
      [real.id],
    );
    assert.deepEqual(await r.hkeys(key), [real.id], 'the bogus and dead entries were removed');
    await plant();
    const job = await q.enqueue('a cat', { adapters: 'b', seed: 4, steps: 2 });
    assert.ok(
      (await job.result()).data.equals((await local.generate('a cat', { adapters: 'b', seed: 4, steps: 2 })).data),
    );
  });

  it('liveness is read from Redis: a worker 30 s behind is listed and serves, one 30 s ahead drops out once dead', async function () {
    const redis = await redisServer();
    const skew = (ms) => ({
      NODE_OPTIONS: `--require ${path.join(__dirname, 'helpers', 'skew-clock.js')}`,
      MULTILORA_TEST_CLOCK_SHIFT_MS: String(ms),
    });
    const behind = worker(redis.url, ['--queue', 'clocks'], skew(-30_000));
    await behind.ready;
    // serve --redis starts on it (with only late workers it refused to: "no worker is live").
    const server = await startServer({
      redis: redis.url,
      queue: 'clocks',
      host: '127.0.0.1',
      port: 0,
      waitForWorkersMs: 10_000,
    });
    cleanups.push(() => server.close());
    const q = queue({ redis: redis.url, queue: 'clocks' });
    for (let i = 0; i < 4; i += 1) {
      assert.deepEqual(
        (await q.workers()).map((x) => x.pid),
        [behind.child.pid],
        `read ${i}`,
      );
      await sleep(1500);
    }
    const job = await q.enqueue('a cat', { seed: 11, steps: 2 });
    assert.ok((await job.result()).data.equals((await local.generate('a cat', { seed: 11, steps: 2 })).data));

    const ahead = worker(redis.url, ['--queue', 'clocks'], skew(30_000));
    await ahead.ready;
    assert.deepEqual((await q.workers()).map((x) => x.pid).sort(), [behind.child.pid, ahead.child.pid].sort());
    ahead.child.kill('SIGKILL');
    await ahead.exited;
    const killed = Date.now();
    await until('the dead worker to drop out', async () => (await q.workers()).length === 1, 15_000);
    assert.ok(Date.now() - killed < 10_000, `listed ${Date.now() - killed} ms after it died`);
  });

  it('a worker refuses a job over its limits before allocating it, and enqueue refuses it when workers are live', async function () {
    const redis = await redisServer();
    const w = worker(redis.url, ['--queue', 'limits', '--max-size', '96', '--max-steps', '50', '--max-images', '2']);
    await w.ready;
    const q = queue({ redis: redis.url, queue: 'limits' });
    assert.deepEqual((await q.workers())[0].limits, { maxSize: 96, maxSteps: 50, maxImages: 2 });
    await rejectsWith(
      q.enqueue('a cat', { width: 2048, height: 2048 }),
      'ERR_INVALID_ARGUMENT',
      /at most 96 \(the --max-size of the live workers\) for options\.width/,
    );
    await rejectsWith(q.enqueue('a cat', { steps: 1000 }), 'ERR_INVALID_ARGUMENT', /--max-steps/);
    await rejectsWith(q.enqueue('a cat', { numImages: 16 }), 'ERR_INVALID_ARGUMENT', /--max-images/);

    // Written straight into Redis, past enqueue: the worker refuses it at once (2048x2048 takes minutes and GBs here).
    const { Queue } = require('bullmq');
    const raw = new Queue('limits', { connection: { url: redis.url }, prefix: 'multilora' });
    cleanups.push(() => raw.close());
    const t = Date.now();
    await raw.add(
      'generate',
      { v: 1, prompt: 'a cat', options: { width: 2048, height: 2048, seed: 1 } },
      { jobId: 'huge' },
    );
    await rejectsWith(
      (await q.job('huge')).result(),
      'ERR_INVALID_ARGUMENT',
      /at most 96 \(the --max-size of this worker\)/,
    );
    assert.ok(Date.now() - t < 10_000, `refused after ${Date.now() - t} ms`);
    assert.doesNotMatch(w.log, /job huge completed/);
    // Within the limits, and the defaults: a worker with no flags takes what serve allows for its model.
    const ok = await q.enqueue('a cat', { width: 96, height: 64, steps: 2, seed: 2, numImages: 2 });
    assert.equal((await ok.result()).length, 2);
    const plain = worker(redis.url, ['--queue', 'limits-default']);
    await plain.ready;
    const q2 = queue({ redis: redis.url, queue: 'limits-default' });
    assert.deepEqual((await q2.workers())[0].limits, { maxSize: 128, maxSteps: 500, maxImages: 4 });
  });

  it('malformed job records written into Redis fail with ERR_INVALID_ARGUMENT before anything is generated', async function () {
    const redis = await redisServer();
    const w = worker(redis.url, ['--queue', 'malformed']);
    await w.ready;
    const { Queue } = require('bullmq');
    const raw = new Queue('malformed', { connection: { url: redis.url }, prefix: 'multilora' });
    cleanups.push(() => raw.close());
    const q = queue({ redis: redis.url, queue: 'malformed' });
    const r = redisClient(redis.url);
    cleanups.push(() => r.quit());
    const cases = [
      [{ v: 1, prompt: 'a cat', options: null }, /its options are null/],
      [{ v: 1, prompt: 'a cat', options: [] }, /its options are an array/],
      [{ v: 1, prompt: 5, options: {} }, /its prompt is a number/],
      [{ v: 2, prompt: 'a cat', options: {} }, /expected v 1/],
      ['a cat', /its data is a string/],
      [{ v: 1, prompt: 'a cat', options: { output: 'borrow' } }, /"output"/],
      [{ v: 1, prompt: 'a cat', options: { seed: 'x' } }, /options\.seed/],
    ];
    for (const [i, [data, message]] of cases.entries()) {
      await raw.add('generate', data, { jobId: `bad-${i}` });
      await rejectsWith((await q.job(`bad-${i}`)).result(), 'ERR_INVALID_ARGUMENT', message);
      assert.deepEqual(await r.keys(`multilora:malformed:result:bad-${i}:*`), [], `case ${i} stored a result`);
    }
    const good = await q.enqueue('a cat', { seed: 8, steps: 2 });
    assert.ok((await good.result()).data.equals((await local.generate('a cat', { seed: 8, steps: 2 })).data));
  });

  for (const signals of [1, 2]) {
    it(`with Redis gone, a worker told to stop (${signals === 1 ? 'one SIGTERM' : 'SIGTERM twice'}) exits within its bound, non-zero, naming the job it could not hand back`, async function () {
      const redis = await redisServer();
      const w = worker(redis.url, ['--queue', 'gone']);
      await w.ready;
      const q = queue({ redis: redis.url, queue: 'gone', lostAfterMs: 5000 });
      let steps = 0;
      const job = await q.enqueue('a storm', { seed: 5, steps: 400, onProgress: () => (steps += 1) });
      const settled = job.result().then(
        () => 'resolved',
        (err) => err.code,
      );
      await until('a step of the job', () => steps >= 1);
      await redis.kill();
      w.child.kill('SIGTERM');
      let last = Date.now();
      if (signals === 2) {
        await w.waitFor(/closing: the running jobs finish first/);
        await sleep(500);
        w.child.kill('SIGTERM');
        last = Date.now();
      }
      const exit = await Promise.race([w.exited, sleep(40_000).then(() => 'still running')]);
      const took = Date.now() - last;
      assert.notEqual(exit, 'still running', w.log);
      assert.equal(exit.code, 1, w.log);
      assert.ok(took <= (signals === 1 ? 30_000 : 10_000), `exited ${took} ms after the last signal`);
      assert.match(w.log, new RegExp(`could not hand back 1 job \\(${job.id}\\)`));
      // The waiter learns it too, within its bound.
      assert.equal(await settled, 'ERR_JOB_LOST');
    });
  }

  it('with Redis gone, an idle worker stops on one SIGTERM within seconds', async function () {
    const redis = await redisServer();
    const w = worker(redis.url, ['--queue', 'idle']);
    await w.ready;
    await redis.kill();
    const t = Date.now();
    w.child.kill('SIGTERM');
    const exit = await Promise.race([w.exited, sleep(20_000).then(() => 'still running')]);
    assert.notEqual(exit, 'still running', w.log);
    assert.equal(exit.code, 1);
    assert.ok(Date.now() - t < 10_000, `${Date.now() - t} ms`);
    assert.match(w.log, /closed without Redis .*: nothing to hand back/);
  });
});
