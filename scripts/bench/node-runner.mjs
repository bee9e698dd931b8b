// The Node side of `npm run bench` (scripts/bench.mjs): multilora's public API, driven by the runners' line
// protocol (scripts/bench/protocol.md). The clock runs from the call of pipeline.generate() to the resolution of
// its promise: validation, the queue, the worker thread, the output Buffer and the promise are all inside.
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Pipeline } from '../../dist/index.js';

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

/** The options of a `gen`-shaped command: its alphas, one per registered adapter, become a selection by name. */
function callOptions(seed, width, height, steps, guidance, alphas) {
  const adapters = {};
  if (alphas !== '-') alphas.split(',').forEach((a, i) => { if (Number(a) !== 0) adapters[names[i]] = Number(a); });
  return {
    seed: Number(seed), width: Number(width), height: Number(height), steps: Number(steps),
    guidanceScale: Number(guidance), adapters,
  };
}

async function gen([, seed, width, height, steps, guidance, alphas, prompt]) {
  const options = callOptions(seed, width, height, steps, guidance, alphas);
  monitor?.reset();
  const start = performance.now();
  const image = await pipeline.generate(prompt, options);
  const first = image.data[0];
  const ms = performance.now() - start;
  let extra = `\tfirst=${first}\tstepMs=${image.metrics.stepMs.mean}`;
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
  const options = { ...callOptions(seed, width, height, steps, guidance, alphas), onProgress, signal: controller.signal };
  await pipeline.generate(prompt, options).catch((err) => { if (err.code !== 'ERR_ABORTED') throw err; });
  return `ok\t${firstMs}`;
}

/**
 * zerocopy: the same call with the default copy and with output 'borrow', in turn. Replies whether each borrowed
 * Buffer started at GenAI's own output tensor (and each copy elsewhere), whether the bytes agreed, and the times.
 */
async function zerocopy([, seed, width, height, steps, guidance, alphas, prompt, pairs]) {
  const require = createRequire(import.meta.url);
  const { bufferAddress } = require('../../dist/binding.js');
  const { genaiOutputAddress } = require('../../dist/pipeline.js');
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

const commands = {
  load,
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
lines.close();
