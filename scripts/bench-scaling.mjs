#!/usr/bin/env node
// `npm run bench:scaling`: how throughput grows with `multilora worker` processes on one machine. A redis-server of
// its own on loopback (no persistence, a temp dir), then sets of K workers (`multilora worker --concurrency 1`, with
// OpenVINO's default threads, and with threads = cores / K), each set on a queue of its own; RemoteQueue enqueues N
// jobs (a fixed mix of adapters, fixed seeds) on a set once all its workers are ready, and the clock runs from the
// first enqueue to the last result. Beside them the local baseline: one in-process Pipeline making the same N images
// one after the other. Rounds are interleaved (the order of the sets goes forward, then back), the first round is a
// warm-up and is dropped, and ratios to one worker are paired within a round.
// Memory: each worker's RSS (VmRSS, and its peak VmHWM, from /proc) after the warm-up and at the end; Redis's
// used_memory.
//
//   npm run bench:scaling                       # tiny SDXL fixture, 128×128, 4 steps, N = 24, 6 rounds
//   npm run bench:scaling -- --quick            # N = 12, 3 rounds: a few minutes on 2 cores
//   npm run bench:scaling -- --model .bench-models/sd15-512 --size 512 --steps 2 --jobs 4 --rounds 1 --workers 1,2 --no-split
//
// Writes bench-results/scaling.json (the folder of every benchmark's results), prints a markdown table, and writes the
// results block of docs/SCALING.md from that file (scripts/bench/doc.mjs; `npm run bench:docs -- --check` compares).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import redisServer from '../test/helpers/redis-server.cjs';
import { renderScalingDoc } from './bench/doc.mjs';
import { provenance } from './bench/provenance.mjs';
import { ROOT } from './sdk-config.mjs';
import { summary } from './stats.mjs';

const { startRedisServer } = redisServer;

const USAGE = `usage: node scripts/bench-scaling.mjs [options]

  --quick            small counts (N = 12 jobs, 3 rounds): a few minutes on 2 cores
  --model DIR        the OpenVINO model (default: the embedded tiny SDXL fixture); another model must have
                     loras/bench-0.safetensors and loras/bench-1.safetensors (scripts/make-fixtures.sh --bench-model)
  --size PX          width and height (default 128)
  --steps N          denoising steps (default 4)
  --jobs N           jobs per run (default 24, 12 with --quick)
  --rounds R         measured rounds after the warm-up round (default 6, 3 with --quick)
  --workers LIST     the worker counts to measure (default 1,2,3)
  --no-split         only OpenVINO's default threads (not also threads = cores / K)
  --no-local         without the in-process baseline
  --json FILE        where the results go (default bench-results/scaling.json)
  -h, --help         this text`;

function fail(message) {
  console.error(`bench-scaling: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      model: { type: 'string' },
      size: { type: 'string', default: '128' },
      steps: { type: 'string', default: '4' },
      jobs: { type: 'string' },
      rounds: { type: 'string' },
      workers: { type: 'string', default: '1,2,3' },
      'no-split': { type: 'boolean', default: false },
      'no-local': { type: 'boolean', default: false },
      json: { type: 'string', default: path.join(ROOT, 'bench-results', 'scaling.json') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  fail(err.message);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function positive(name, value, max) {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max)
    fail(`expected an integer from 1 to ${max} for --${name} but received ${value}`);
  return Number(value);
}
const QUICK = args.quick;
const SIZE = positive('size', args.size, 4096);
const STEPS = positive('steps', args.steps, 1000);
const JOBS = positive('jobs', args.jobs ?? (QUICK ? '12' : '24'), 10_000);
const ROUNDS = positive('rounds', args.rounds ?? (QUICK ? '3' : '6'), 1000);
const WORKERS = args.workers.split(',').map((k) => positive('workers', k.trim(), 64));
const CORES = os.availableParallelism();
const DEFAULT_MODEL = path.join(ROOT, 'models', 'sdxl-tiny');
const MODEL = path.resolve(args.model ?? DEFAULT_MODEL);
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const PROMPT = 'a lighthouse on a cliff at sunset, oil painting';
/** The mix of adapters, job i taking selection i mod 4: none, one, the other, a blend. */
const SELECTIONS = [null, 'a', 'b', { a: 0.5, b: 0.7 }];

function loras() {
  if (MODEL === DEFAULT_MODEL)
    return ['style-a', 'style-b'].map((n) => path.join(ROOT, 'models', 'sdxl-tiny-loras', `${n}.safetensors`));
  return [0, 1].map((i) => path.join(MODEL, 'loras', `bench-${i}.safetensors`));
}
if (!existsSync(path.join(MODEL, 'model_index.json'))) fail(`${MODEL} has no model_index.json`);
for (const file of loras()) if (!existsSync(file)) fail(`missing LoRA ${file}`);
if (!existsSync(MAIN)) fail('dist/ is missing: run `npm run build:ts` first');

// ---------------------------------------------------------------------------------------------------- statistics
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (kb) => Math.round(kb / 1024);

// ---------------------------------------------------------------------------------------------- child processes
/** Every process started here: killed on exit, on error and on Ctrl-C. */
const children = new Set();
let tempDir;
/** Set once the bench ends or fails: the workers' exits are expected then. */
let stopping = false;

function killAll() {
  stopping = true;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  tempDir = undefined;
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\nbench-scaling: ${signal}, stopping the workers and Redis`);
    killAll();
    process.exit(130);
  });
}

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function startRedis() {
  const redis = await startRedisServer(tempDir);
  track(redis.child);
  return redis;
}

/** One `multilora worker` process on `queue`; its log is kept, `ready` resolves when it takes jobs. */
function startWorker(url, queue, catalog, threads) {
  const argv = [MAIN, 'worker', '--redis', url, '--queue', queue, '--catalog', catalog, '--concurrency', '1'];
  if (MODEL !== DEFAULT_MODEL) argv.push('--model', MODEL);
  if (threads !== undefined) argv.push('--threads', String(threads));
  const child = track(spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const worker = { child, log: '', stopping: false };
  // A worker that dies during the measurement would leave its jobs waiting (or, alone, for ever): stop there.
  child.on('exit', (code, signal) => {
    if (stopping || worker.stopping || !/ready/.test(worker.log)) return;
    console.error(
      `bench-scaling: a worker on ${queue} exited (${code ?? signal}) during the run:\n${worker.log.slice(-2000)}`,
    );
    killAll();
    process.exit(1);
  });
  worker.ready = new Promise((resolve, reject) => {
    const onData = (d) => {
      worker.log += d;
      if (/multilora worker \S+ ready/.test(worker.log)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) =>
      reject(new Error(`a worker on ${queue} exited (${code ?? signal}) before it was ready:\n${worker.log}`)),
    );
  });
  worker.jobs = () => (worker.log.match(/job \S+ started/g) ?? []).length;
  return worker;
}

/**
 * VmRSS and VmHWM of a process, in kB, and the RSS's parts: RssAnon is the process's own memory, RssFile the pages
 * of mapped files (the model's weights among them), which the processes that map the same files share.
 */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), anonKb: kb('RssAnon'), fileKb: kb('RssFile') };
}

async function stopWorker(worker) {
  worker.stopping = true;
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  const exited = new Promise((resolve) => worker.child.once('exit', resolve));
  worker.child.kill('SIGTERM');
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ------------------------------------------------------------------------------------------------------- the run
function machine() {
  const cpu = os.cpus();
  const sdk = JSON.parse(readFileSync(path.join(ROOT, '.sdk', 'sdk.json'), 'utf8'));
  const python = sdk.python
    ? spawnSync(
        sdk.python,
        ['-c', 'import openvino, openvino_genai; print(openvino.__version__, openvino_genai.__version__)'],
        { encoding: 'utf8' },
      )
        .stdout.trim()
        .split(' ')
    : [];
  const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.match(/v=(\S+)/)?.[1];
  const bullmq = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'bullmq', 'package.json'), 'utf8')).version;
  return {
    cpu: `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
    cores: CORES,
    memoryGb: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    openvino: python[0],
    openvinoGenai: python[1],
    redis,
    bullmq,
    multilora: JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
  };
}

const calls = Array.from({ length: JOBS }, (_, i) => ({
  prompt: `${PROMPT} ${i}`,
  options: {
    seed: 1000 + i,
    steps: STEPS,
    width: SIZE,
    height: SIZE,
    ...(SELECTIONS[i % SELECTIONS.length] ? { adapters: SELECTIONS[i % SELECTIONS.length] } : {}),
  },
}));

async function main() {
  const started = Date.now();
  const run = provenance('scaling');
  const { Pipeline, RemoteQueue } = await import(path.join(ROOT, 'dist', 'index.js')).then((m) => m.default ?? m);
  const IORedis = (await import('ioredis')).default;
  tempDir = mkdtempSync(path.join(os.tmpdir(), 'multilora-bench-scaling-'));
  const catalog = path.join(tempDir, 'catalog.json');
  const [a, b] = loras();
  writeFileSync(catalog, JSON.stringify({ a: { path: a, alpha: 0.8 }, b: { path: b, alpha: 0.6 } }));
  const redis = await startRedis();
  const info = new IORedis(redis.url);
  const loadAverage = [os.loadavg()];
  console.log(
    `model ${path.relative(ROOT, MODEL) || MODEL}, ${SIZE}×${SIZE}, ${STEPS} steps; ${JOBS} jobs per run, ${ROUNDS} rounds after a warm-up; ${CORES} cores, load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );

  // The sets of workers, each on a queue of its own, all loaded before the first round.
  const sets = [];
  for (const k of WORKERS) {
    sets.push({ name: `workers${k}`, k, threads: undefined });
    const threads = Math.max(1, Math.floor(CORES / k));
    if (!args['no-split'] && k > 1) sets.push({ name: `workers${k}-threads${threads}`, k, threads });
  }
  const loadStart = Date.now();
  for (const set of sets) {
    set.queue = new RemoteQueue({ redis: redis.url, queue: `scaling-${set.name}` });
    set.workers = Array.from({ length: set.k }, () =>
      startWorker(redis.url, `scaling-${set.name}`, catalog, set.threads),
    );
    // One set at a time: loading them all at once would only make each load slower.
    await Promise.all(set.workers.map((w) => w.ready));
    const live = await set.queue.workers();
    if (live.length !== set.k) throw new Error(`${set.name}: ${live.length} workers live, expected ${set.k}`);
    console.log(
      `  ${set.name}: ${set.k} worker${set.k > 1 ? 's' : ''} ready (threads ${set.threads ?? "OpenVINO's default"}), ${((Date.now() - loadStart) / 1000).toFixed(1)} s`,
    );
  }
  let local;
  if (!args['no-local']) local = await Pipeline.load(MODEL, { catalog });

  /** Local images by job index, from the warm-up: every remote result is compared with them. */
  let reference;
  const entries = sets.map((set) => [
    set.name,
    async () => {
      const t = Date.now();
      const jobs = [];
      for (const call of calls) jobs.push(await set.queue.enqueue(call.prompt, call.options));
      const images = await Promise.all(jobs.map((j) => j.result()));
      const ms = Date.now() - t;
      const same = reference ? images.filter((img, i) => img.data.equals(reference[i])).length : undefined;
      return { jobsPerS: (JOBS * 1000) / ms, ms, same };
    },
  ]);
  if (local) {
    entries.push([
      'local',
      async () => {
        const t = Date.now();
        const images = [];
        for (const call of calls) images.push((await local.generate(call.prompt, call.options)).data);
        const ms = Date.now() - t;
        reference ??= images;
        return { jobsPerS: (JOBS * 1000) / ms, ms };
      },
    ]);
  }
  // The local baseline runs first in the warm-up, so that the remote runs have its images to compare with.
  const order = local ? [entries.length - 1, ...entries.keys()].slice(0, entries.length) : [...entries.keys()];
  const runs = Object.fromEntries(entries.map(([name]) => [name, []]));
  let memoryAfterWarmup;
  for (let round = 0; round <= ROUNDS; round += 1) {
    const ids = round % 2 === 0 ? order : [...order].reverse();
    const line = [];
    for (const id of ids) {
      const [name, run] = entries[id];
      const load = os.loadavg()[0];
      const r = await run();
      r.loadAverage1 = load;
      r.round = round;
      if (round > 0) runs[name].push(r);
      line.push(
        `${name} ${r.jobsPerS.toFixed(2)}${r.same !== undefined ? ` (${r.same}/${JOBS} same bytes as local)` : ''}`,
      );
      await pause(300); // OpenVINO's threads spin for a moment after a run
    }
    console.log(
      `${round === 0 ? 'warm-up' : `round ${round}`}: ${line.join(', ')} jobs/s; load ${os.loadavg()[0].toFixed(2)}`,
    );
    if (round === 0) memoryAfterWarmup = memorySnapshot(sets);
  }
  const memoryAtEnd = memorySnapshot(sets);
  const redisInfo = Object.fromEntries(
    (await info.info('memory'))
      .split('\r\n')
      .filter((l) => /^used_memory(_peak)?:/.test(l))
      .map((l) => l.split(':'))
      .map(([k, v]) => [k, Number(v)]),
  );
  const resultKeys = (await info.keys('multilora:*:result:*')).length;
  loadAverage.push(os.loadavg());

  const jobsPerS = Object.fromEntries(
    Object.entries(runs).map(([name, rs]) => [name, summary(rs.map((r) => r.jobsPerS))]),
  );
  const ratios = {};
  const base = runs[`workers${WORKERS[0]}`];
  for (const [name, rs] of Object.entries(runs)) {
    if (name === `workers${WORKERS[0]}`) continue;
    // paired within a round: runs of the same round, seconds apart
    ratios[name] = summary(rs.map((r) => r.jobsPerS / base.find((x) => x.round === r.round).jobsPerS));
  }
  const jobsPerWorker = Object.fromEntries(sets.map((s) => [s.name, s.workers.map((w) => w.jobs())]));
  const sameBytes = Object.fromEntries(
    Object.entries(runs)
      .filter(([name]) => name !== 'local')
      .map(([name, rs]) => [
        name,
        rs.every((r) => r.same === undefined) ? null : `${rs.reduce((n, r) => n + r.same, 0)}/${rs.length * JOBS}`,
      ]),
  );
  const results = {
    date: new Date().toISOString(),
    commit: run.commit,
    scriptsHash: run.scriptsHash,
    command: `node scripts/bench-scaling.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machine(),
    loadAverage: { start: loadAverage[0], end: loadAverage[1] },
    model: path.relative(ROOT, MODEL) || MODEL,
    size: SIZE,
    steps: STEPS,
    jobs: JOBS,
    rounds: ROUNDS,
    selections: SELECTIONS,
    sets: sets.map(({ name, k, threads }) => ({ name, workers: k, threads: threads ?? null })),
    jobsPerS,
    ratiosToOneWorker: ratios,
    sameBytesAsLocal: sameBytes,
    jobsPerWorker,
    memory: { afterWarmup: memoryAfterWarmup, atEnd: memoryAtEnd, localProcess: memoryOfMb(process.pid) },
    redis: {
      usedMemoryMb: redisInfo.used_memory / 2 ** 20,
      usedMemoryPeakMb: redisInfo.used_memory_peak / 2 ** 20,
      resultKeys,
    },
    runs,
    durationS: Math.round((Date.now() - started) / 1000),
  };
  writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
  // The results block of docs/SCALING.md comes from the committed results file only (a --json elsewhere is a trial).
  const doc = path.join(ROOT, 'docs', 'SCALING.md');
  if (path.resolve(args.json) === path.join(ROOT, 'bench-results', 'scaling.json')) {
    writeFileSync(doc, renderScalingDoc(readFileSync(doc, 'utf8'), results));
    console.log(`wrote the results of ${path.relative(process.cwd(), doc)}`);
  }

  for (const set of sets) {
    await Promise.all(set.workers.map(stopWorker));
    await set.queue.close();
  }
  await local?.dispose();
  await info.quit();
  redis.child.kill('SIGTERM');
  console.log(`\nwrote ${path.relative(process.cwd(), args.json)} in ${results.durationS} s\n`);
  console.log(table(results));
}

function memoryOfMb(pid) {
  const m = memoryOf(pid);
  return { rssMb: mb(m.rssKb), peakMb: mb(m.hwmKb), anonMb: mb(m.anonKb), fileMb: mb(m.fileKb) };
}

/** Each worker's VmRSS, VmHWM, RssAnon and RssFile, MB. */
function memorySnapshot(sets) {
  return Object.fromEntries(sets.map((s) => [s.name, s.workers.map((w) => memoryOfMb(w.child.pid))]));
}

function table(r) {
  const f = (x, d = 2) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
  const lines = [];
  lines.push(
    '| run | workers | threads each | jobs/s, median (p25–p75) | ÷ 1 worker, paired median (p25–p75) | same bytes as local | jobs per worker | RSS per worker after warm-up / end (peak; anon + file at the end), MB |',
  );
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const [name, s] of Object.entries(r.jobsPerS)) {
    const set = r.sets.find((x) => x.name === name);
    const ratio = r.ratiosToOneWorker[name];
    const mem = set
      ? r.memory.atEnd[name]
          .map(
            (m, i) =>
              `${r.memory.afterWarmup[name][i].rssMb} / ${m.rssMb} (${m.peakMb}; ${m.anonMb} anon + ${m.fileMb} file)`,
          )
          .join(', ')
      : `${r.memory.localProcess.rssMb} (${r.memory.localProcess.peakMb}; ${r.memory.localProcess.anonMb} anon + ${r.memory.localProcess.fileMb} file), the bench's own process`;
    lines.push(
      `| ${name} | ${set ? set.workers : 'in process'} | ${set ? (set.threads ?? 'default') : 'default'} | ${f(s.median)} (${f(s.p25)}–${f(s.p75)}) | ${ratio ? `×${f(ratio.median, 3)} (${f(ratio.p25, 3)}–${f(ratio.p75, 3)})` : name === 'local' ? '–' : '1'} | ${r.sameBytesAsLocal[name] ?? '–'} | ${set ? r.jobsPerWorker[name].join(', ') : '–'} | ${mem} |`,
    );
  }
  lines.push(
    '',
    `Redis: used_memory ${f(r.redis.usedMemoryMb, 1)} MB at the end (peak ${f(r.redis.usedMemoryPeakMb, 1)} MB), ${r.redis.resultKeys} result keys held (TTL 1 h).`,
  );
  lines.push(
    `Load average (1, 5, 15 min): ${r.loadAverage.start.map((x) => f(x)).join(', ')} at the start; ${r.loadAverage.end.map((x) => f(x)).join(', ')} at the end.`,
  );
  return lines.join('\n');
}

main().catch((err) => {
  console.error(`bench-scaling: ${err.stack ?? err.message}`);
  killAll();
  process.exit(1);
});
