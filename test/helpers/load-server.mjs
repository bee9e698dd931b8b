// `multilora serve` under load: a real server in a child process on the tiny SDXL model, driven on loopback by
// autocannon with a mix of adapters (none, one, a blend), requests cancelled by DELETE, clients that disconnect
// mid-run and requests the server must refuse. test/server-load.spec.js asserts on what runLoad returns;
// scripts/load-server.mjs runs main() and prints throughput, latency percentiles, outcomes and the server's memory.
// Needs `npm run build:ts` (it loads dist/).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import autocannon from 'autocannon';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const MODEL = path.join(ROOT, 'models', 'sdxl-tiny');
export const LORAS = [
  { name: 'style-a', path: path.join(ROOT, 'models', 'sdxl-tiny-loras', 'style-a.safetensors'), alpha: 0.8 },
  { name: 'style-b', path: path.join(ROOT, 'models', 'sdxl-tiny-loras', 'style-b.safetensors'), alpha: 0.6 },
];

/**
 * The distinct calls the load repeats: no adapter, each one, a blend, a blend with a negative alpha; two sizes
 * (a size change between calls is where GenAI 2026.3 once gave black images: GENAI-BUGS §1); a batch of two; torch's
 * noise. Small and few steps, so that a call takes tens of milliseconds on the tiny model.
 */
export const VARIANTS = (() => {
  const out = [];
  const adapterSets = [{}, { 'style-a': 0.8 }, { 'style-b': 0.6 }, { 'style-a': 0.8, 'style-b': 0.6 }];
  for (const loras of adapterSets) {
    for (const [seed, size] of [
      [1, '32x32'],
      [2, '48x32'],
    ])
      out.push({ prompt: 'a lighthouse', size, steps: 1, seed, loras });
  }
  out.push({ prompt: 'a lighthouse', size: '32x32', steps: 2, seed: 3, loras: { 'style-a': -0.5, 'style-b': 1 } });
  out.push({ prompt: 'two boats', size: '32x32', steps: 1, seed: 4, loras: { 'style-b': 0.6 }, n: 2 });
  out.push({ prompt: 'a lighthouse', size: '32x32', steps: 2, seed: 5, loras: { 'style-a': 0.8 }, generator: 'torch' });
  return out;
})();

/** Bodies the server must refuse with 400 and this code, whatever the load; none may reach the pipeline. */
export const INVALID = [
  [{ prompt: 'x', loras: { 'style-z': 1 } }, 'ERR_UNKNOWN_ADAPTER'],
  [{ prompt: 'x', loras: { '../x': 1 } }, 'ERR_UNKNOWN_ADAPTER'],
  [{ prompt: 'x', loras: { '/etc/passwd': 1 } }, 'ERR_UNKNOWN_ADAPTER'],
  [{ prompt: 'x', loras: { 'a/b': 1 } }, 'ERR_UNKNOWN_ADAPTER'],
  [{ prompt: 'x', loras: { '%2e%2e': 1 } }, 'ERR_UNKNOWN_ADAPTER'],
  [{ prompt: 'x', loras: { 'style-a\u0000': 1 } }, 'ERR_UNKNOWN_ADAPTER'],
  [{ prompt: 'x', size: '33x32' }, 'ERR_INVALID_ARGUMENT'],
  [{ prompt: 'x', steps: 0 }, 'ERR_INVALID_ARGUMENT'],
  [{ prompt: 'x', sampler: 'euler' }, 'ERR_INVALID_ARGUMENT'],
];

/** The generate call a request body makes, as Pipeline.generate takes it. */
export function callOf(body) {
  const [width, height] = body.size.split('x').map(Number);
  const options = { width, height, steps: body.steps, seed: body.seed, adapters: body.loras };
  if (body.n) options.numImages = body.n;
  if (body.generator) options.generator = body.generator;
  return { prompt: body.prompt, options };
}

/** Each variant's images (raw RGB) from a Pipeline called directly, in this process, one call after another. */
export async function referenceImages(variants = VARIANTS) {
  const { Pipeline } = require(path.join(ROOT, 'dist', 'index.js'));
  const adapters = Object.fromEntries(LORAS.map((l) => [l.name, { path: l.path, alpha: l.alpha }]));
  const pipeline = await Pipeline.load(MODEL, { adapters });
  try {
    const refs = [];
    for (const body of variants) {
      const { prompt, options } = callOf(body);
      const out = await pipeline.generate(prompt, options);
      refs.push((Array.isArray(out) ? out : [out]).map((img) => Buffer.from(img.data)));
    }
    return refs;
  } finally {
    await pipeline.dispose();
  }
}

/** Resident memory of a process, in KiB, from /proc. */
export function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]);
}

const CHILD = `
const { startServer } = require(${JSON.stringify(path.join(ROOT, 'dist', 'server', 'index.js'))});
startServer(JSON.parse(process.argv[1])).then((server) => {
  // SIGUSR2: a full garbage collection, then this process's memory as a line on stdout.
  process.on('SIGUSR2', () => {
    global.gc();
    const m = process.memoryUsage();
    process.stdout.write(JSON.stringify({ memory: { rss: m.rss, heapUsed: m.heapUsed, external: m.external } }) + '\\n');
  });
  const stop = () => server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(JSON.stringify({ url: server.url }) + '\\n');
}, (err) => {
  process.stderr.write(String(err && err.stack || err) + '\\n');
  process.exit(1);
});
`;

/** Starts startServer() in a child process; resolves when it listens. */
export function spawnServer(options = {}) {
  const opts = { model: MODEL, loras: LORAS, host: '127.0.0.1', port: 0, ...options };
  const child = spawn(process.execPath, ['--expose-gc', '-e', CHILD, JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = '';
    const lines = [];
    let onLine;
    child.stdout.on('data', (d) => {
      out += d;
      let cut;
      while ((cut = out.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(out.slice(0, cut)));
        out = out.slice(cut + 1);
      }
      if (lines.length) onLine?.();
    });
    const nextLine = () =>
      new Promise((res) => {
        if (lines.length) return res(lines.shift());
        onLine = () => {
          onLine = undefined;
          res(lines.shift());
        };
      });
    nextLine().then(({ url }) => {
      resolve({
        url,
        pid: child.pid,
        rssKiB: () => rssKiB(child.pid),
        /** After a full garbage collection in the server: its RSS and V8 heap in use, in KiB. */
        async memory() {
          const line = nextLine();
          child.kill('SIGUSR2');
          const { memory } = await line;
          return {
            rssKiB: Math.round(memory.rss / 1024),
            heapKiB: Math.round(memory.heapUsed / 1024),
            externalKiB: Math.round(memory.external / 1024),
          };
        },
        exited,
        stderr: () => stderr,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          const result = await exited;
          clearTimeout(timer);
          return result;
        },
      });
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`the server exited (${code ?? signal}) before listening: ${stderr}`)),
    );
  });
}

/** A small deterministic generator, so that a run's delays and mix repeat. */
function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function percentiles(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (p) => (v.length ? v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] : null);
  return { n: v.length, p50: at(50), p90: at(90), p99: at(99), max: v.at(-1) ?? null };
}

async function json(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return { unparsed: text.slice(0, 200) };
  }
}

/**
 * Follows a job's SSE stream until it ends: `events` as [name, data], `queued` (true once the queued event came,
 * false if the stream ended first), `done` (the stream's end) and `stop()`.
 */
export function followEvents(url, id) {
  const controller = new AbortController();
  const events = [];
  let onQueued;
  const queued = new Promise((resolve) => {
    onQueued = resolve;
  });
  const done = fetch(`${url}/v1/jobs/${id}/events`, { signal: controller.signal })
    .then(async (res) => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!event) continue;
          events.push([event, JSON.parse(data)]);
          if (event === 'queued') onQueued(true);
        }
      }
    })
    .catch((err) => {
      if (err.name !== 'AbortError') events.push(['stream-error', { message: String(err) }]);
    })
    .finally(() => onQueued(false));
  return { events, queued, done, stop: () => controller.abort() };
}

/** POSTs a body on a connection of its own, to be left mid-run. */
function rawPost(url, id, body) {
  const req = http.request(`${url}/v1/images/generations`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'x-job-id': id },
  });
  const response = new Promise((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body: text }));
      res.on('error', () => resolve({ status: res.statusCode, body: text, broken: true }));
    });
    req.on('error', (err) => resolve({ status: 0, error: err.code ?? String(err) }));
  });
  req.end(JSON.stringify(body));
  return { req, response };
}

/**
 * Sends `requests` generation requests: most through autocannon (its `connections` at `rate` requests a second in
 * all), with every `cancelEvery`th cancelled by DELETE after a random delay, every `invalidEvery`th one the server
 * must refuse; and every `disconnectEvery`th from a client of its own that follows the job's events, then leaves
 * mid-run. Watches GET /v1/status meanwhile, and calls `checkpoint` (if given) a quarter of the way. Returns one
 * record per request, and what was watched.
 */
export async function runLoad(url, o = {}) {
  const {
    requests = 1000,
    connections = 5,
    rate,
    serviceMs = 80,
    cancelEvery = 10,
    disconnectEvery = 13,
    invalidEvery = 25,
    variants = VARIANTS,
    pid,
    seed = 7,
    checkpoint,
  } = o;
  const random = lcg(seed);
  const records = Array.from({ length: requests }, (_, i) => {
    let kind = 'plain';
    if (i % invalidEvery === invalidEvery - 1) kind = 'invalid';
    else if (i % disconnectEvery === 5) kind = 'disconnect';
    else if (i % cancelEvery === 3) kind = 'cancel';
    const record = { i, id: `load-${seed}-${i}`, kind };
    if (kind === 'invalid') {
      const [body, code] = INVALID[Math.floor(i / invalidEvery) % INVALID.length];
      Object.assign(record, { body, expectCode: code });
    } else {
      record.variant = (i * 7) % variants.length;
      record.body = variants[record.variant];
    }
    return record;
  });
  const viaCannon = records.filter((r) => r.kind !== 'disconnect');
  const viaRaw = records.filter((r) => r.kind === 'disconnect');
  const pending = []; // promises that must settle before the records are complete

  // The job's state as the server reports it right after the response, before it can be pruned.
  const readJob = (r) =>
    fetch(`${url}/v1/jobs/${r.id}`).then(async (res) => {
      r.job = { status: res.status, body: await json(res) };
    });

  // Watch the queue (GET /v1/status) and the server's memory while the load runs.
  const watch = { samples: 0, maxActive: 0, maxRunning: 0, maxQueued: 0, rssKiB: [] };
  let watching = true;
  const watcher = (async () => {
    let lastRss = 0;
    while (watching) {
      try {
        const s = await (await fetch(`${url}/v1/status`)).json();
        watch.samples += 1;
        watch.maxActive = Math.max(watch.maxActive, s.queue.active);
        watch.maxRunning = Math.max(watch.maxRunning, s.queue.running);
        watch.maxQueued = Math.max(watch.maxQueued, s.queue.queued);
      } catch (err) {
        watch.error = String(err);
      }
      if (pid && Date.now() - lastRss > 500) {
        watch.rssKiB.push(rssKiB(pid));
        lastRss = Date.now();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  let next = 0;
  const started = Date.now();
  const cannon = autocannon({
    url,
    connections,
    amount: viaCannon.length,
    timeout: 120,
    ...(rate ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'POST',
        path: '/v1/images/generations',
        setupRequest(req, context) {
          const r = viaCannon[next];
          next += 1;
          if (checkpoint && next === Math.floor(viaCannon.length / 4))
            pending.push(checkpoint().then((value) => (watch.checkpoint = value)));
          if (!r) return { ...req, headers: { 'content-type': 'application/json' }, body: '{}' };
          context.record = r;
          r.sent = Date.now();
          if (r.kind === 'cancel') {
            const delay = Math.floor(random() * 3 * serviceMs);
            pending.push(
              new Promise((resolve) => setTimeout(resolve, delay)).then(async () => {
                const res = await fetch(`${url}/v1/jobs/${r.id}`, { method: 'DELETE' });
                r.cancel = { delay, status: res.status, body: await json(res) };
              }),
            );
          }
          return {
            ...req,
            headers: { 'content-type': 'application/json', 'x-job-id': r.id },
            body: JSON.stringify(r.body),
          };
        },
        onResponse(status, body, context, headers) {
          const r = context.record;
          if (!r) return;
          r.ms = Date.now() - r.sent;
          r.status = status;
          r.retryAfter = headers['retry-after'];
          try {
            r.response = JSON.parse(body);
          } catch {
            r.response = { unparsed: body.slice(0, 200) };
          }
          pending.push(readJob(r));
        },
      },
    ],
  });

  // The leavers: each opens its job's events, posts, waits until the job is queued and a random delay more, and
  // leaves; the events tell how the job ended.
  const leavers = (async () => {
    for (const r of viaRaw) {
      const stream = followEvents(url, r.id);
      // A full queue (429) before the job was queued: try again shortly, as a client honouring Retry-After would
      // (sooner, to keep the run short). The retries are not among the `requests`; r.attempts counts them.
      let req;
      let response;
      let first;
      r.attempts = 0;
      for (;;) {
        r.sent = Date.now();
        ({ req, response } = rawPost(url, r.id, r.body));
        r.attempts += 1;
        first = await Promise.race([
          stream.queued.then((q) => (q ? 'queued' : 'stream-ended')),
          response.then(() => 'response'),
        ]);
        if (first !== 'response' || (await response).status !== 429 || r.attempts >= 50) break;
        await new Promise((res) => setTimeout(res, serviceMs));
      }
      if (first === 'queued') {
        const delay = Math.floor(random() * 4 * serviceMs);
        r.leaveAfter = delay;
        const answered = await Promise.race([
          new Promise((res) => setTimeout(() => res(false), delay)),
          response.then(() => true),
        ]);
        if (!answered) {
          req.destroy();
          r.left = true;
        }
      }
      const res = await Promise.race([response, new Promise((res) => setTimeout(() => res(undefined), 50))]);
      if (res && !r.left) {
        r.ms = Date.now() - r.sent;
        r.status = res.status;
        r.retryAfter = res.retryAfter;
        try {
          r.response = JSON.parse(res.body);
        } catch {
          r.response = { unparsed: String(res.body).slice(0, 200) };
        }
      }
      if (r.status !== undefined && r.status !== 200 && r.status !== 499) stream.stop(); // never accepted
      await Promise.race([stream.done, new Promise((res) => setTimeout(res, 60_000))]);
      stream.stop();
      r.events = stream.events.map(([e, d]) => [e, e === 'progress' ? d.step : d]);
      const final = stream.events.find(([e]) => e === 'done' || e === 'cancelled' || e === 'error');
      r.final = final ? { event: final[0], ...final[1] } : undefined;
      await readJob(r);
    }
  })();

  const result = await cannon;
  await leavers;
  await Promise.all(pending);
  const durationMs = Date.now() - started;
  // Let the queue drain, then stop watching.
  const drainEnd = Date.now() + 60_000;
  let status;
  for (;;) {
    status = await (await fetch(`${url}/v1/status`)).json();
    if (status.queue.active === 0 || Date.now() > drainEnd) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  watching = false;
  await watcher;
  return { records, watch, status, durationMs, cannon: result };
}

/** Counts of a run's records by outcome, and latency percentiles of the completed ones. */
export function summarize(run) {
  const by = {};
  for (const r of run.records) {
    const key =
      r.kind === 'disconnect'
        ? `disconnect:${r.left ? `left→${r.final?.event ?? '?'}` : r.status}`
        : `${r.kind}:${r.status}`;
    by[key] = (by[key] ?? 0) + 1;
  }
  const ok = run.records.filter((r) => r.status === 200 && r.ms !== undefined).map((r) => r.ms);
  const lat = run.cannon.latency;
  return {
    requests: run.records.length,
    durationS: Math.round(run.durationMs / 100) / 10,
    requestsPerS: Math.round((run.records.length / run.durationMs) * 1e4) / 10,
    imagesPerS: Math.round((run.records.filter((r) => r.status === 200).length / run.durationMs) * 1e4) / 10,
    outcomes: by,
    completedMs: percentiles(ok),
    autocannonMs: { p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max },
    maxActive: run.watch.maxActive,
    maxRunning: run.watch.maxRunning,
    statusSamples: run.watch.samples,
  };
}

/** Requests a second for a call of `serviceMs`: half as many again as the server can run, so that its queue fills. */
export function loadRate(serviceMs) {
  return Math.min(50, Math.max(2, Math.round((1.5 * 1000) / serviceMs)));
}

/** Warm-up: each variant once, one after another; returns the median time of a call, in ms. */
export async function warmUp(url, variants = VARIANTS) {
  const times = [];
  for (const body of variants) {
    const t = Date.now();
    const res = await fetch(`${url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`warm-up: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
    times.push(Date.now() - t);
  }
  return percentiles(times).p50;
}

export async function main() {
  const args = process.argv.slice(2);
  const arg = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const maxQueue = arg('max-queue', 4);
  const server = await spawnServer({ maxQueue });
  try {
    const start = await server.memory();
    await warmUp(server.url);
    const serviceMs = await warmUp(server.url);
    const warm = await server.memory();
    const rate = loadRate(serviceMs);
    const run = await runLoad(server.url, {
      requests: arg('requests', 1000),
      connections: arg('connections', maxQueue + 1),
      rate,
      serviceMs,
      pid: server.pid,
      checkpoint: () => server.memory(),
    });
    const after = await server.memory();
    const summary = summarize(run);
    const mib = (k) => Math.round(k / 102.4) / 10;
    const show = (m) => `RSS ${mib(m.rssKiB)}, V8 heap ${mib(m.heapKiB)}`;
    console.log(JSON.stringify({ maxQueue, serviceMs, rate, ...summary, counters: run.status.counters }, null, 2));
    const trend = run.watch.rssKiB.filter((_, i, all) => i % Math.max(1, Math.floor(all.length / 10)) === 0).map(mib);
    console.log(
      `server memory after a full GC (MiB): start ${show(start)}; after the warm-up ${show(warm)}; a quarter into the load ${show(run.watch.checkpoint)}; after the load ${show(after)}`,
    );
    console.log(
      `server RSS during the load (MiB, every tenth of the run, no GC): ${trend.join(' ')}; peak ${mib(Math.max(...run.watch.rssKiB))}`,
    );
  } finally {
    await server.stop();
  }
}
