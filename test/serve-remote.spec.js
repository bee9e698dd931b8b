// `multilora serve --redis URL`: the HTTP API and the page in front of `multilora worker` processes through a real
// redis-server on loopback. The server loads no model; what it answers must equal what the local server gives.
'use strict';
const assert = require('node:assert/strict');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { writeFileSync } = require('node:fs');
const path = require('node:path');

const { Pipeline, RemoteQueue, defaultModelDir, encodePng } = require('..');
const { startServer } = require('../dist/internal').server;
const { families, useTempDir, freePort, until, rejectsWith } = require('./helpers/fixtures');
const { MAIN, requireRedis, startRedis, startWorker } = require('./helpers/redis');

const fx = families.sdxl;
/** Seconds on the tiny model with one thread, so that it is caught running. */
const SLOW = { prompt: 'slow', size: '128x128', steps: 500, seed: 3 };

/** Runs the CLI to its end; resolves with its status and output. */
function cli(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe('serve --redis: the HTTP API on multilora worker processes', function () {
  this.timeout(300_000);
  const tmp = useTempDir('multilora-serve-remote-');
  let redis;
  let catalog;
  let worker;
  let local;
  let server;
  let base;

  before(async function () {
    requireRedis();
    redis = await startRedis();
    catalog = path.join(tmp(), 'catalog.json');
    writeFileSync(
      catalog,
      JSON.stringify({
        a: { path: fx.lora('style-a'), alpha: 0.8, template: 'a-style <subject>' },
        b: { path: fx.lora('style-b'), alpha: 0.6 },
      }),
    );
    worker = startWorker(redis.url, catalog);
    // Local generation with the same adapters and thread count as the worker (OpenVINO's results depend on both).
    local = await Pipeline.load(defaultModelDir(), { catalog, threads: 1 });
    await worker.ready;
    server = await startServer({ redis: redis.url, host: '127.0.0.1', port: 0, maxQueue: 2, waitForWorkersMs: 5000 });
    base = server.url;
  });

  after(async function () {
    await server?.close();
    worker?.child.kill('SIGKILL');
    await local?.dispose();
    redis?.stop();
  });

  function post(body, headers = {}) {
    return fetch(`${base}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }
  async function generate(body) {
    const res = await post(body);
    const json = await res.json();
    assert.equal(res.status, 200, JSON.stringify(json));
    return json;
  }
  async function expectError(res, statusCode, code) {
    const body = await res.json();
    assert.equal(res.status, statusCode, JSON.stringify(body));
    assert.equal(body.error.code, code, JSON.stringify(body));
    return body.error;
  }
  const jobOf = async (id) => (await fetch(`${base}/v1/jobs/${id}`)).json();
  const aborted = () => (worker.log.match(/failed: The operation was aborted/g) ?? []).length;
  const png = (image) => encodePng(image).toString('base64');

  it("shows the workers' adapters, model and defaults to the page and the API; no model is loaded here", async function () {
    const loras = await (await fetch(`${base}/v1/loras`)).json();
    const want = local.adapters.list();
    assert.deepEqual(
      loras.data.map((l) => [l.name, l.alpha, l.template, l.negative_prompt]),
      want.map((a) => [a.name, a.alpha, a.template ?? null, a.negativePrompt ?? null]),
    );
    assert.deepEqual(
      loras.data.map((l) => l.name),
      ['a', 'b'],
    );
    assert.equal(loras.data[0].template, 'a-style <subject>');
    for (const [i, l] of loras.data.entries()) {
      const { unmatchedTensors: _, ...report } = want[i].info;
      assert.deepEqual(l.report, report);
    }
    assert.ok(!JSON.stringify(loras).includes('.safetensors'), 'the catalogue shows a file path');
    const status = await (await fetch(`${base}/v1/status`)).json();
    assert.deepEqual(status.model, {
      class: local.model.pipelineClass,
      family: local.model.family,
      vae_scale_factor: local.model.vaeScaleFactor,
      name: path.basename(local.model.dir),
    });
    assert.deepEqual(status.defaults, {
      width: local.defaults.width,
      height: local.defaults.height,
      steps: local.defaults.steps,
      guidance_scale: local.defaults.guidanceScale,
    });
    assert.deepEqual(status.limits.size, { min: 32, max: 128, step: 8, multiple_of: 2 });
    assert.equal(status.backend.kind, 'redis');
    assert.equal(status.backend.queue, 'generate');
    assert.deepEqual(
      status.backend.workers.map((w) => [w.concurrency, w.adapters]),
      [[1, ['a', 'b']]],
    );
    assert.ok(!JSON.stringify(status).includes(redis.url), 'the status shows the Redis URL');
    assert.match(await (await fetch(`${base}/`)).text(), /<script src="app.js"/);
  });

  it('generates the same PNG bytes as local generation, a batch too, with seed, size and timings', async function () {
    const out = await generate({ prompt: 'a hill', size: '96x64', steps: 3, seed: 7, loras: { a: 0.5, b: null } });
    const want = await local.generate('a hill', {
      width: 96,
      height: 64,
      steps: 3,
      seed: 7,
      adapters: { a: 0.5, b: 0.6 },
    });
    assert.equal(out.data[0].b64_json, png(want));
    assert.deepEqual([out.seed, out.size, out.steps], [7, '96x64', 3]);
    assert.deepEqual(out.loras, { a: 0.5, b: 0.6 });
    assert.ok(out.timings.generate_ms > 0 && out.timings.step_ms_mean > 0, JSON.stringify(out.timings));
    const batch = await generate({
      prompt: 'a hill',
      size: '64x64',
      steps: 2,
      seed: 11,
      n: 2,
      apply_template: true,
      loras: { a: null },
    });
    const wantBatch = await local.generate('a hill', {
      width: 64,
      height: 64,
      steps: 2,
      seed: 11,
      numImages: 2,
      applyTemplate: true,
      adapters: { a: 0.8 },
    });
    assert.deepEqual(
      batch.data.map((d) => d.b64_json),
      wantBatch.map(png),
    );
    assert.notEqual(batch.data[0].b64_json, batch.data[1].b64_json);
  });

  it('checks a request once in this process: the job, with the service limits and the fields named', async function () {
    const { checkHooks } = require('../dist/internal').options;
    const checks = [];
    checkHooks.onCheck = (check) => checks.push(check);
    try {
      const out = await generate({ prompt: 'once', size: '64x64', steps: 2, seed: 5, loras: { a: null } });
      assert.equal(out.seed, 5);
      assert.deepEqual(out.loras, { a: 0.8 });
      // The worker is another process: its check is not counted here.
      assert.deepEqual(checks, ['enqueue'], 'checks of the call in the server process');
      checks.length = 0;
      for (const [body, message] of [
        [{ steps: 501 }, /^Expected an integer from 1 to 500 for steps but received 501$/],
        [{ loras: { a: 11 } }, /^Expected a finite number from -10 to 10 for loras\["a"\] but received 11$/],
        [{ negative_prompt: 'x'.repeat(2001) }, /^Expected a string of at most 2000 characters for negative_prompt/],
      ]) {
        const e = await expectError(await post({ prompt: 'x', ...body }), 400, 'ERR_INVALID_ARGUMENT');
        assert.match(e.message, message);
      }
      assert.deepEqual(checks, ['enqueue', 'enqueue', 'enqueue']);
    } finally {
      checkHooks.onCheck = undefined;
    }
  });

  it("streams the worker's progress over SSE, previews included, then done", async function () {
    const id = 'remote-sse-1';
    const { followEvents } = await import('./helpers/load-server.mjs');
    const { events, done: stream } = followEvents(base, id);
    await new Promise((r) => setTimeout(r, 100));
    const out = await generate({ prompt: 'a hill', size: '64x64', steps: 5, seed: 2, job_id: id, preview: true });
    await stream;
    assert.equal(events[0][0], 'queued');
    assert.equal(events.at(-1)[0], 'done');
    assert.equal(events.at(-1)[1].seed, out.seed);
    const progress = events.filter(([e]) => e === 'progress').map(([, d]) => d);
    assert.ok(progress.length >= 1, 'no progress event');
    for (const p of progress) {
      assert.equal(p.total, 5);
      assert.equal(p.job_id, id);
      assert.match(p.preview, /^data:image\/png;base64,/);
    }
    assert.equal(progress.at(-1).step, 5);
  });

  it('refuses an adapter the workers do not have with the typed 400, and a path', async function () {
    const before = (await (await fetch(`${base}/v1/status`)).json()).counters.accepted;
    const e = await expectError(await post({ prompt: 'x', loras: { c: 1 } }), 400, 'ERR_UNKNOWN_ADAPTER');
    assert.match(e.message, /"c".*"a", "b"/);
    await expectError(await post({ prompt: 'x', loras: { [fx.lora('style-a')]: 1 } }), 400, 'ERR_UNKNOWN_ADAPTER');
    assert.equal(
      (await (await fetch(`${base}/v1/status`)).json()).counters.accepted,
      before,
      'a refused request became a job',
    );
  });

  it('DELETE stops a running job on the worker and removes a waiting one; 429 counts the whole queue', async function () {
    const running = post({ ...SLOW, job_id: 'remote-long' });
    await until('the long job to run', async () => (await jobOf('remote-long')).step > 0);
    assert.equal((await jobOf('remote-long')).state, 'running');
    // One job of another producer waits in the same queue: with maxQueue 2, the queue is full.
    const other = new RemoteQueue({ redis: redis.url });
    try {
      const foreign = await other.enqueue('another client', { seed: 1, steps: 1 });
      const full = await post({ prompt: 'one too many', size: '64x64', steps: 1 });
      await expectError(full, 429, 'ERR_QUEUE_FULL');
      assert.equal(full.headers.get('retry-after'), '5');
      await foreign.cancel();
      await rejectsWith(foreign.result(), 'ERR_ABORTED');
    } finally {
      await other.close();
    }
    // A job of this server waiting behind the long one leaves the queue at once.
    const waiting = post({ prompt: 'behind', size: '64x64', steps: 1, job_id: 'remote-waiting' });
    await until('the second job to be queued', async () => (await jobOf('remote-waiting')).state === 'queued');
    assert.equal((await fetch(`${base}/v1/jobs/remote-waiting`, { method: 'DELETE' })).status, 202);
    await expectError(await waiting, 499, 'ERR_CANCELLED');
    assert.equal((await jobOf('remote-waiting')).step, 0);

    const t = Date.now();
    assert.equal((await fetch(`${base}/v1/jobs/remote-long`, { method: 'DELETE' })).status, 202);
    await expectError(await running, 499, 'ERR_CANCELLED');
    assert.ok(Date.now() - t < 10_000, `cancelled ${Date.now() - t} ms after DELETE`);
    const job = await jobOf('remote-long');
    assert.equal(job.state, 'cancelled');
    assert.ok(job.step < 500, `${job.step} steps ran`);
    assert.match(
      await (await fetch(`${base}/v1/jobs/remote-long/events`)).text(),
      /event: cancelled\ndata: .*"reason":"cancelled"/,
    );
    await worker.waitFor(/job \S+ failed: The operation was aborted/);
    const status = await (await fetch(`${base}/v1/status`)).json();
    assert.deepEqual([status.queue.active, status.backend.waiting, status.backend.active], [0, 0, 0]);
    // and the worker goes on
    const out = await generate({ prompt: 'after', size: '64x64', steps: 1, seed: 1 });
    assert.equal(
      out.data[0].b64_json,
      png(await local.generate('after', { width: 64, height: 64, steps: 1, seed: 1, adapters: {} })),
    );
  });

  it('cancels the job of a client that disconnects before its response', async function () {
    const req = http.request(`${base}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-job-id': 'remote-leaver' },
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify(SLOW));
    await until('the job to run', async () => {
      const res = await fetch(`${base}/v1/jobs/remote-leaver`);
      return res.ok && (await res.json()).step > 0;
    });
    const failed = aborted();
    req.destroy();
    const job = await until('the job to be cancelled', async () => {
      const j = await jobOf('remote-leaver');
      return j.state === 'cancelled' && j;
    });
    assert.equal(job.aborted_by, 'disconnected');
    await until('the worker to stop it', async () => aborted() > failed);
  });

  it('close() cancels the running job on the worker', async function () {
    const own = await startServer({ redis: redis.url, host: '127.0.0.1', port: 0 });
    const failed = aborted();
    const running = fetch(`${own.url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-job-id': 'remote-closing' },
      body: JSON.stringify(SLOW),
    }).then(
      (r) => r.json(),
      (err) => ({ error: { code: err.name } }),
    );
    await until('the job to run', async () => {
      const res = await fetch(`${own.url}/v1/jobs/remote-closing`);
      return res.ok && (await res.json()).step > 0;
    });
    await own.close();
    const body = await running;
    assert.ok(['ERR_SHUTTING_DOWN', 'TypeError'].includes(body.error.code), JSON.stringify(body));
    await until('the worker to stop it', async () => aborted() > failed, 10_000);
    await own.close(); // idempotent
  });

  it('rejects with ERR_REMOTE when no worker shows up in time, or Redis cannot be reached; refuses a model with redis', async function () {
    let t = Date.now();
    await rejectsWith(
      startServer({ redis: redis.url, queue: 'nobody', host: '127.0.0.1', port: 0, waitForWorkersMs: 500 }),
      'ERR_REMOTE',
      /No multilora worker is live on Redis at redis:\/\/127\.0\.0\.1:\d+ \(queue "nobody", prefix "multilora"\) after 0\.5 s: start one with `multilora worker --redis redis:\/\/127\.0\.0\.1:\d+ --queue nobody/,
    );
    assert.ok(Date.now() - t < 3000, `${Date.now() - t} ms`);
    t = Date.now();
    const down = `redis://127.0.0.1:${await freePort()}`;
    await rejectsWith(
      startServer({ redis: down, host: '127.0.0.1', port: 0 }),
      'ERR_REMOTE',
      new RegExp(`Could not reach Redis at ${down.replace(/[.:/]/g, '\\$&')}`),
    );
    assert.ok(Date.now() - t < 5000, `${Date.now() - t} ms`);
    await rejectsWith(
      startServer({ redis: redis.url, model: fx.model, host: '127.0.0.1', port: 0 }),
      'ERR_INVALID_ARGUMENT',
      /the workers own the model/,
    );
    await rejectsWith(
      startServer({ redis: 'http://x', host: '127.0.0.1', port: 0 }),
      'ERR_INVALID_ARGUMENT',
      /redis:\/\/ or rediss:\/\/ URL/,
    );
    await rejectsWith(
      startServer({ model: fx.model, queue: 'q', host: '127.0.0.1', port: 0 }),
      'ERR_INVALID_ARGUMENT',
      /queue only with redis/,
    );
  });

  it('multilora serve --redis serves the workers (and refuses --catalog with it: exit 2)', async function () {
    const bad = await cli(['serve', '--redis', redis.url, '--catalog', catalog]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--catalog does not go with --redis: the workers own the model and the adapters/);
    const child = spawn(process.execPath, [MAIN, 'serve', '--redis', redis.url, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise((r) => child.on('exit', (code) => r(code)));
    try {
      let out = '';
      const url = await new Promise((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += d;
          const m = /multilora serving on (\S+)\n/.exec(out);
          if (m) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
      });
      const loras = await (await fetch(`${url}/v1/loras`)).json();
      assert.deepEqual(
        loras.data.map((l) => l.name),
        ['a', 'b'],
      );
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});
