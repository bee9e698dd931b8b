#!/usr/bin/env node
// Measures what the adapter lifecycle costs: a rebuild-and-swap (adapters.add / remove), and the per-step price of
// each mode (no adapters, dynamic, fuse). Writes bench-results/lifecycle.md and prints the same table.
//
//   node scripts/bench-lifecycle.mjs [--runs N] [--size PX] [--model DIR] [--family sd15|sdxl]
//
// Numbers on the tiny fixtures are dominated by fixed costs; run it with --model on a real export for real figures.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { provenance } from './bench/provenance.mjs';
import { ROOT } from './sdk-config.mjs';

const require = createRequire(import.meta.url);
const { Pipeline } = require(ROOT);
const run = provenance('lifecycle');

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    size: { type: 'string', default: '128' },
    steps: { type: 'string', default: '8' },
    family: { type: 'string', default: 'sdxl' },
    model: { type: 'string' },
  },
});
const runs = Number(args.runs);
const size = Number(args.size);
const steps = Number(args.steps);
const family = args.family;
// sdxl-tiny is the embedded default model (models/), sd15-tiny a test fixture.
const tiny =
  family === 'sdxl'
    ? { model: path.join(ROOT, 'models', 'sdxl-tiny'), loras: path.join(ROOT, 'models', 'sdxl-tiny-loras') }
    : {
        model: path.join(ROOT, 'test', 'fixtures', 'models', 'sd15-tiny'),
        loras: path.join(ROOT, 'test', 'fixtures', 'loras', 'sd15'),
      };
const model = args.model ?? tiny.model;
const lora = (name) => path.join(tiny.loras, `${name}.safetensors`);
const CALL = { seed: 1, steps, width: size, height: size };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function timeLoad(options) {
  const t0 = process.hrtime.bigint();
  const p = await Pipeline.load(model, options);
  return { pipeline: p, loadMs: ms(t0) };
}

/** Per-step time (GenAI's own iteration mean) over `runs` calls after one warm-up. */
async function stepMs(pipeline, options) {
  await pipeline.generate('a lighthouse', { ...CALL, ...options });
  const steps = [];
  const totals = [];
  for (let i = 0; i < runs; i += 1) {
    const image = await pipeline.generate('a lighthouse', { ...CALL, ...options, seed: i });
    steps.push(image.metrics.stepMs.mean);
    totals.push(image.metrics.totalMs);
  }
  return { step: median(steps), stepSpread: spread(steps), total: median(totals) };
}

const adapters = { a: { path: lora('style-a'), alpha: 0.6 }, b: { path: lora('style-b'), alpha: 0.4 } };

// Modes
const modes = [];
for (const [name, options, call] of [
  ['no adapters registered', {}, {}],
  ['dynamic, 2 registered, none used', { adapters }, {}],
  ['dynamic, 2 registered, blend a 0.6 + b 0.4', { adapters }, { adapters: ['a', 'b'] }],
  ['fuse, a 0.6 + b 0.4 in the weights', { adapters, mode: 'fuse' }, {}],
]) {
  const { pipeline, loadMs } = await timeLoad(options);
  const r = await stepMs(pipeline, call);
  modes.push({ name, loadMs, ...r });
  await pipeline.dispose();
}

// Loads with and without a warm OpenVINO model cache (the cacheDir option).
const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'multilora-bench-cache-'));
(await timeLoad({ adapters, cacheDir })).pipeline.dispose();
const coldLoads = [];
const cachedLoads = [];
for (let i = 0; i < runs; i += 1) {
  for (const [options, into] of [
    [{ adapters }, coldLoads],
    [{ adapters, cacheDir }, cachedLoads],
  ]) {
    const { pipeline, loadMs } = await timeLoad(options);
    into.push(loadMs);
    await pipeline.dispose();
  }
}
rmSync(cacheDir, { recursive: true, force: true });

// Swaps: add then remove a third adapter, while another caller keeps generating.
const { pipeline } = await timeLoad({ adapters });
await pipeline.generate('warm-up', CALL);
const adds = [];
const removes = [];
const during = [];
for (let i = 0; i < runs; i += 1) {
  let done = 0;
  let stop = false;
  const traffic = (async () => {
    while (!stop) {
      await pipeline.generate('traffic', { ...CALL, adapters: 'a' });
      done += 1;
    }
  })();
  let t0 = process.hrtime.bigint();
  await pipeline.adapters.add('c', { path: lora('style-a'), alpha: 0.3 });
  adds.push(ms(t0));
  t0 = process.hrtime.bigint();
  await pipeline.adapters.remove('c');
  removes.push(ms(t0));
  stop = true;
  await traffic;
  during.push(done);
}
const noop = [];
for (let i = 0; i < runs; i += 1) {
  const t0 = process.hrtime.bigint();
  await pipeline.adapters.add('a', { path: lora('style-a'), alpha: 0.5 + i / 100 }); // alpha only: no rebuild
  noop.push(ms(t0));
}
await pipeline.dispose();

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const done = run.finish();
const lines = [
  `# Adapter lifecycle: measured`,
  '',
  `Written by \`node scripts/bench-lifecycle.mjs\` on ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} × ${cpu}, ` +
    `Node ${process.version}, OpenVINO GenAI 2026.3, model \`${path.relative(ROOT, model) || model}\`, ${size}×${size}, ` +
    `${steps} steps, ${runs} runs after a warm-up; medians, with min–max.`,
  '',
  `Commit ${done.commit}, scripts \`${done.scriptsHash}\`; load average (1 min) ${done.loadAverage.start[0]} at the start, ` +
    `${done.loadAverage.end[0]} at the end.`,
  '',
  '## Modes',
  '',
  '| mode | load (ms) | step (ms, GenAI) | step min–max | generate (ms) |',
  '|---|---|---|---|---|',
  ...modes.map(
    (m) => `| ${m.name} | ${m.loadMs.toFixed(0)} | ${m.step.toFixed(2)} | ${m.stepSpread} | ${m.total.toFixed(1)} |`,
  ),
  '',
  '## Loading with a model cache',
  '',
  '| load, 2 adapters | ms |',
  '|---|---|',
  `| no cache | ${median(coldLoads).toFixed(0)} (${spread(coldLoads)}) |`,
  `| \`cacheDir\`, warm | ${median(cachedLoads).toFixed(0)} (${spread(cachedLoads)}) |`,
  '',
  '## Changing the set of adapters',
  '',
  '| change | ms |',
  '|---|---|',
  `| \`adapters.add()\` of a new adapter: read it, build a pipeline, swap it in | ${median(adds).toFixed(0)} (${spread(adds)}) |`,
  `| \`adapters.remove()\`: build a pipeline, swap it in | ${median(removes).toFixed(0)} (${spread(removes)}) |`,
  `| \`adapters.add()\` that changes only the alpha: no rebuild | ${median(noop).toFixed(2)} (${spread(noop)}) |`,
  '',
  `While one add and one remove ran, another caller finished ${median(during)} generate calls (median; ${spread(during)}) on ` +
    'the old pipeline: a swap does not stop the traffic.',
  '',
];
const out = path.join(ROOT, 'bench-results', 'lifecycle.md');
writeFileSync(out, lines.join('\n'));
console.log(lines.join('\n'));
console.log(`(written to ${out})`);
