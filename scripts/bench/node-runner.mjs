// The Node side of `npm run bench` (scripts/bench.mjs): multilora's public API, driven by the runners' line
// protocol (scripts/bench/protocol.md). The clock runs from the call of pipeline.generate() to the resolution of
// its promise: validation, the queue, the worker thread, the output Buffer and the promise are all inside.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Pipeline, PipelinePool } from '../../dist/index.js';

let pipeline = null;
let names = [];
let monitor = null;

async function load([, model, device, shape, cache, paths]) {
  if (pipeline) await pipeline.dispose();
  pipeline = null;
  names = paths === '-' ? [] : paths.split('|').map((_, i) => `a${i}`);
  const adapters = Object.fromEntries(paths === '-' ? [] : paths.split('|').map((p, i) => [names[i], { path: p }]));
  const options = { device, adapters };
  if (cache !== '-') options.cacheDir = cache;
  if (shape !== '-') {
    const [width, height, numImages, guidanceScale] = shape.split('x').map(Number);
    options.staticShape = { width, height, numImages, guidanceScale };
  }
  const start = performance.now();
  pipeline = await Pipeline.load(model, options);
  return `ok\t${performance.now() - start}`;
}

/**
 * The options of a `gen`-shaped command: its alphas, one per registered adapter, become a selection by name (an
 * alpha of 0, or `~` for an adapter the other runners leave out of the list, is not chosen: multilora lists it or
 * not by itself, with listFor).
 */
function callOptions(seed, width, height, steps, guidance, alphas) {
  const adapters = {};
  if (alphas !== '-')
    alphas.split(',').forEach((a, i) => {
      if (a !== '~' && Number(a) !== 0) adapters[names[i]] = Number(a);
    });
  return {
    seed: Number(seed),
    width: Number(width),
    height: Number(height),
    steps: Number(steps),
    guidanceScale: Number(guidance),
    adapters,
  };
}

async function gen([, seed, width, height, steps, guidance, alphas, prompt]) {
  const options = callOptions(seed, width, height, steps, guidance, alphas);
  monitor?.reset();
  const start = performance.now();
  const image = await pipeline.generate(prompt, options);
  void image.data[0]; // read inside the clock, as the other runners do
  const ms = performance.now() - start;
  // The md5 of every byte of the image, outside the clock: the runners' images are compared whole.
  const md5 = createHash('md5').update(image.data).digest('hex');
  let extra = `\tmd5=${md5}\tstepMs=${image.metrics.stepMs.mean}`;
  if (monitor) extra += `\telP99=${monitor.percentile(99) / 1e6}\telMax=${monitor.max / 1e6}`;
  return `ok\t${ms}${extra}`;
}

/** Up to the end of the first step, then abort (GenAI skips the rest and the VAE). */
async function first([, seed, width, height, steps, guidance, alphas, prompt]) {
  const controller = new AbortController();
  let firstMs;
  const start = performance.now();
  const onProgress = () => {
    firstMs ??= performance.now() - start;
    controller.abort();
  };
  const options = {
    ...callOptions(seed, width, height, steps, guidance, alphas),
    onProgress,
    signal: controller.signal,
  };
  await pipeline.generate(prompt, options).catch((err) => {
    if (err.code !== 'ERR_ABORTED') throw err;
  });
  return `ok\t${firstMs}`;
}

/**
 * zerocopy: the same call with the default copy and with output 'borrow', in turn. Replies whether each borrowed
 * Buffer started at GenAI's own output tensor (and each copy elsewhere), whether the bytes agreed, and the times.
 */
async function zerocopy([, seed, width, height, steps, guidance, alphas, prompt, pairs]) {
  const require = createRequire(import.meta.url);
  const { bufferAddress } = require('../../dist/internal.js').binding;
  const { genaiOutputAddress } = require('../../dist/internal.js').pipeline;
  const options = callOptions(seed, width, height, steps, guidance, alphas);
  let borrowedAtGenai = 0;
  let copiesElsewhere = 0;
  let sameBytes = 0;
  const ms = { copy: [], borrow: [] };
  for (let i = 0; i < Number(pairs); i += 1) {
    let start = performance.now();
    const copy = await pipeline.generate(prompt, options);
    ms.copy.push(performance.now() - start);
    if (bufferAddress(copy.data) !== genaiOutputAddress(pipeline)) copiesElsewhere += 1;
    const kept = Buffer.from(copy.data);
    start = performance.now();
    const borrowed = await pipeline.generate(prompt, { ...options, output: 'borrow' });
    ms.borrow.push(performance.now() - start);
    if (bufferAddress(borrowed.data) === genaiOutputAddress(pipeline)) borrowedAtGenai += 1;
    if (kept.equals(borrowed.data)) sameBytes += 1;
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return `ok\t${median(ms.borrow)}\tcopyMs=${median(ms.copy)}\tborrowedAtGenai=${borrowedAtGenai}\tcopiesElsewhere=${copiesElsewhere}\tsameBytes=${sameBytes}`;
}

// ------------------------------------------------------------------------------------------------ pools (bench.mjs)
/** The calls of a throughput run: seeds from `seed` on, the alphas turning through none, one adapter, a blend. */
const POOL_ALPHAS = ['-', '0.8,0', '0.5,0.7'];
let pool = null;
/** Or, for the threads experiment, K native pipelines below the public API, each with its own call loop. */
let raw = null;

/** pool <K> <model> <device> <adapter files joined by | or ->: a PipelinePool of K, each with those adapters. */
async function poolLoad([, k, model, device, paths]) {
  await pool?.dispose();
  await disposeRaw();
  names = paths === '-' ? [] : paths.split('|').map((_, i) => `a${i}`);
  const adapters = Object.fromEntries(paths === '-' ? [] : paths.split('|').map((p, i) => [names[i], { path: p }]));
  const start = performance.now();
  pool = await PipelinePool.load(model, { size: Number(k), device, adapters });
  return `ok\t${performance.now() - start}`;
}

/**
 * rawpool <K> <threads> <model> <device> <adapter files>: K native pipelines built as multilora builds them, with
 * OpenVINO's INFERENCE_NUM_THREADS set to <threads> (0: OpenVINO's default, every core) — what the `threads` load
 * option gives each member.
 */
async function rawLoad([, k, threads, model, device, paths]) {
  await pool?.dispose();
  pool = null;
  await disposeRaw();
  const require = createRequire(import.meta.url);
  const { native } = require('../../dist/internal.js').binding;
  const properties = Number(threads) > 0 ? { INFERENCE_NUM_THREADS: threads } : {};
  const start = performance.now();
  const adapters = paths === '-' ? [] : await Promise.all(paths.split('|').map((p) => native().Adapter.load(p)));
  const members = [];
  for (let i = 0; i < Number(k); i += 1)
    members.push(await native().Pipeline.load(model, device, adapters, properties));
  raw = { adapters, members };
  return `ok\t${performance.now() - start}`;
}

async function disposeRaw() {
  if (!raw) return;
  await Promise.all(raw.members.map((m) => m.dispose()));
  for (const a of raw.adapters) a.release();
  raw = null;
}

/**
 * poolrun <N> <seed> <width> <height> <steps> <guidance> <prompt>: N calls made at once on the pool (or the raw
 * pipelines); replies the wall time from the first call to the last result.
 */
async function poolRun([, n, seed, width, height, steps, guidance, prompt]) {
  const calls = Array.from({ length: Number(n) }, (_, i) => ({
    seed: Number(seed) + i,
    alphas: POOL_ALPHAS[i % POOL_ALPHAS.length],
  }));
  const start = performance.now();
  if (pool) {
    await Promise.all(
      calls.map((c) => pool.generate(prompt, callOptions(c.seed, width, height, steps, guidance, c.alphas))),
    );
  } else if (raw) {
    // The pool's dispatch, by hand: each pipeline takes the next call as soon as it is free.
    let next = 0;
    await Promise.all(
      raw.members.map(async (member) => {
        while (next < calls.length) {
          const c = calls[next++];
          const alphas = c.alphas === '-' ? [] : c.alphas.split(',').map(Number);
          const adapters = raw.adapters.map((_, i) => [i, alphas[i] ?? 0]);
          await member.generate(prompt, {
            seed: c.seed,
            width: Number(width),
            height: Number(height),
            steps: Number(steps),
            guidanceScale: Number(guidance),
            adapters,
          });
        }
      }),
    );
  } else {
    throw new Error('no pool loaded');
  }
  return `ok\t${performance.now() - start}`;
}

/**
 * loadk <K> <parallel|sequential> <model> <adapter files>: K Pipeline.load, all at once or one after the other;
 * replies the time and the process's peak RSS (run it in a new process).
 */
async function loadK([, k, how, model, paths]) {
  const adapters = Object.fromEntries(paths === '-' ? [] : paths.split('|').map((p, i) => [`a${i}`, { path: p }]));
  const start = performance.now();
  let loaded = [];
  if (how === 'parallel') {
    loaded = await Promise.all(Array.from({ length: Number(k) }, () => Pipeline.load(model, { adapters })));
  } else {
    for (let i = 0; i < Number(k); i += 1) loaded.push(await Pipeline.load(model, { adapters }));
  }
  const ms = performance.now() - start;
  const peak = process.resourceUsage().maxRSS * 1024;
  await Promise.all(loaded.map((p) => p.dispose()));
  return `ok\t${ms}\tmaxRss=${peak}`;
}

const commands = {
  load,
  pool: poolLoad,
  rawpool: rawLoad,
  poolrun: poolRun,
  loadk: loadK,
  zerocopy,
  gen,
  first,
  rss: async () => `ok\t${process.memoryUsage.rss()}`,
  // elmon on|off: measure the event loop's delay during each generate (a 1 ms timer; off for timed comparisons)
  elmon: async ([, state]) => {
    monitor?.disable();
    monitor = state === 'on' ? monitorEventLoopDelay({ resolution: 1 }) : null;
    monitor?.enable();
    return 'ok';
  },
};

console.log('ready\tnode');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const fields = line.split('\t');
  if (fields[0] === 'quit') break;
  let reply;
  try {
    const command = commands[fields[0]];
    reply = command ? await command(fields) : `err\tunknown command ${fields[0]}`;
  } catch (err) {
    reply = `err\t${String(err.message).replace(/\s+/g, ' ')}`;
  }
  console.log(reply);
}
if (pipeline) await pipeline.dispose();
await pool?.dispose();
await disposeRaw();
lines.close();
