#!/usr/bin/env node
// `npm run bench`: does the binding cost anything? The same work goes through three runners, each a process of its
// own that speaks the line protocol of scripts/bench/protocol.md:
//   node   — multilora's public API (scripts/bench/node-runner.mjs)
//   python — openvino_genai from the SDK venv (scripts/bench/python_runner.py)
//   cpp    — GenAI's C++ API with no binding (native/bench/driver.cc, built here by the project's CMakeLists.txt)
// Runs are interleaved (each round visits the runners in a rotating order), the first round is a warm-up and is
// dropped, and ratios are taken pairwise within a round: a drift of the machine's speed hits both sides of a ratio.
// Then Node-only measures: event-loop delay, RSS growth, the cost of switching adapters, of idle adapters, the
// static-shape option, the model cache and the zero-copy output.
//
//   npm run bench                        # both models, full counts (about an hour on 2 cores, plus the realistic
//                                        # model's build on first use)
//   npm run bench -- --quick             # the tiny fixture, small counts (under 15 minutes on a fresh clone)
//   npm run bench -- --models tiny       # only the tiny fixture at full counts
//   npm run bench -- --phases pool       # only some phases (runners,node,idle,static,cold,pool): the results of
//                                        # the others stay as they are in bench-results/bench.json and the doc
//
// Writes bench-results/bench.json (the folder of every benchmark's results, with the commit, the scripts' hash, the
// machine and its load: scripts/bench/provenance.mjs) and the generated parts of docs/BENCHMARKS.md
// (scripts/bench/doc.mjs; `npm run bench:docs -- --check` compares them). The realistic model (SD 1.5 sizes, random
// weights, not committed) is built on first use by `bash scripts/make-fixtures.sh --bench-model`.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { buildNative } from './build-native.mjs';
import { ROOT, readCompleteSdk } from './sdk-config.mjs';
import { RESULTS, renderBenchDoc } from './bench/doc.mjs';
import { provenance } from './bench/provenance.mjs';
import { median, summary } from './stats.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    models: { type: 'string' },
    'realistic-dir': { type: 'string', default: path.join(ROOT, '.bench-models', 'sd15-512') },
    out: { type: 'string' },
    doc: { type: 'string', default: path.join(ROOT, 'docs', 'BENCHMARKS.md') },
    'no-doc': { type: 'boolean', default: false },
    phases: { type: 'string', default: 'all' },
  },
});
/**
 * What a run measures: runners (Node vs Python vs C++), node (event loop, switching, zero-copy, RSS; needs runners'
 * step time), idle (idle adapters), static (static shapes), cold (cold start), pool (PipelinePool throughput).
 */
const PHASES = ['runners', 'node', 'idle', 'static', 'cold', 'pool'];
const phases = new Set(args.phases === 'all' ? PHASES : args.phases.split(',').map((p) => p.trim()));
for (const p of phases)
  if (!PHASES.includes(p)) throw new Error(`--phases: expected some of ${PHASES.join(',')}, received ${p}`);
if (phases.has('node') && !phases.has('runners'))
  throw new Error("--phases: node needs runners (for GenAI's step time)");
const QUICK = args.quick;
// --quick measures the tiny fixture, which ships with the package: nothing to build but the C++ driver. The full run
// adds the realistic model, built on first use (about 15 minutes and 11 GB of RAM).
const MODELS = args.models ?? (QUICK ? 'tiny' : 'tiny,realistic');
// The quick run has a results file of its own, so that it never replaces the full run's.
args.out ??= path.join(ROOT, QUICK ? RESULTS.quick : RESULTS.full);
const PROMPT = 'a lighthouse on a cliff at sunset, oil painting';

// ---------------------------------------------------------------------------------------------------- statistics
const round = (x, digits = 4) => Number(x.toFixed(digits));

// ------------------------------------------------------------------------------------------------------ runners
/** The model layers each adapter file patches, as multilora matches them (what listFor needs). */
async function adapterLayers(model, files) {
  if (!files.length) return [];
  const info = internalEntry().model.inspectModel(model.dir);
  return Promise.all(
    files.map(async (file, i) => {
      const prepared = await internalEntry().diagnose.prepareAdapter(`adapter ${i}`, file, info, 'genai');
      return { layers: new Set(prepared.layers), report: prepared.report };
    }),
  );
}

// dist/ may be built after this module loads (main builds it when missing), hence a lazy require.
const internalEntry = () => createRequire(import.meta.url)(path.join(ROOT, 'dist', 'internal.js'));
const genaiQuirks = { listFor: (...a) => internalEntry().genaiQuirks.listFor(...a) };

class Runner {
  /** name: node | python | cpp; spawns the process and waits for its "ready" line. */
  static async start(name, sdk) {
    const env = { ...process.env, OPENVINO_TOKENIZERS_PATH_GENAI: sdk.tokenizersLib };
    const commands = {
      node: [process.execPath, [path.join(ROOT, 'scripts', 'bench', 'node-runner.mjs')]],
      python: [sdk.python, [path.join(ROOT, 'scripts', 'bench', 'python_runner.py')]],
      cpp: [DRIVER, []],
    };
    const [file, argv] = commands[name];
    const runner = new Runner(name, spawn(file, argv, { env, stdio: ['pipe', 'pipe', 'inherit'] }));
    const [ready] = await runner.#next();
    if (ready !== 'ready') throw new Error(`the ${name} runner did not start: ${ready}`);
    return runner;
  }

  #lines;
  #pending = [];
  #queue = [];

  constructor(name, child) {
    this.name = name;
    this.child = child;
    this.#lines = createInterface({ input: child.stdout });
    this.#lines.on('line', (line) => {
      const waiter = this.#pending.shift();
      if (waiter) waiter(line.split('\t'));
      else this.#queue.push(line.split('\t'));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.#pending.splice(0)) waiter(['err', `the ${name} runner exited (${code ?? signal})`]);
    });
  }

  #next() {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    return new Promise((resolve) => this.#pending.push(resolve));
  }

  /** Sends one command; resolves { ms, extra } or rejects with the runner's error. */
  async send(...fields) {
    this.child.stdin.write(`${fields.join('\t')}\n`);
    const [status, value, ...rest] = await this.#next();
    if (status !== 'ok') throw new Error(`${this.name}: ${fields[0]} failed: ${value}`);
    // key=value fields: numbers, except fingerprints (md5=…), kept as strings.
    const extra = Object.fromEntries(
      rest.map((kv) => kv.split('=')).map(([k, v]) => [k, /^[0-9a-f]{32}$/.test(v) ? v : Number(v)]),
    );
    return { ms: Number(value), extra };
  }

  async load(model, { shape = '-', cache = '-', adapters = [] } = {}) {
    this.#adapters = await adapterLayers(model, adapters);
    return this.send('load', model.dir, 'CPU', shape, cache, adapters.length ? adapters.join('|') : '-');
  }

  #adapters = [];

  /**
   * A call's alphas (one per registered adapter) as the runners' field: the adapters multilora's listFor leaves out
   * of GenAI's list are `~`, so that the C++ driver and Python list what the addon lists (the Node runner chooses by
   * alpha, and multilora lists by itself).
   */
  #alphas(alphas) {
    if (!alphas?.length) return '-';
    if (alphas[0] === 'empty') return 'empty';
    const chosen = alphas.flatMap((a, i) => (a !== 0 ? [[i, a]] : []));
    const listed = new Map(genaiQuirks.listFor(this.#adapters, chosen));
    return this.#adapters.map((_, i) => (listed.has(i) ? String(alphas[i] ?? 0) : '~')).join(',');
  }

  gen(model, call) {
    const alphas = this.#alphas(call.alphas);
    return this.send(
      'gen',
      call.seed ?? 42,
      model.size,
      model.size,
      call.steps ?? model.steps,
      model.guidance,
      alphas,
      PROMPT,
    );
  }

  /** Time to the end of the first step; the run stops there (2 steps asked, so that nothing of the VAE runs). */
  async first(model, call) {
    const alphas = this.#alphas(call.alphas);
    return (await this.send('first', call.seed ?? 42, model.size, model.size, 2, model.guidance, alphas, PROMPT)).ms;
  }

  async stop() {
    this.child.stdin.end('quit\n');
    await new Promise((resolve) => (this.child.exitCode !== null ? resolve() : this.child.once('exit', resolve)));
  }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// OpenVINO's worker threads spin for a moment after a run; a short rest keeps one runner's tail out of the next
// runner's clock.
const REST_MS = 300;

/**
 * entries: [name, run() -> Promise<number>]. A warm-up round, then `rounds` rounds, each running every entry once in
 * an order that rotates from round to round. Returns the numbers of the measured rounds by name, in round order, so
 * that a ratio can be taken within each round (paired).
 */
async function interleaved(rounds, entries) {
  const out = Object.fromEntries(entries.map(([name]) => [name, []]));
  for (let i = 0; i < rounds + 1; i += 1) {
    for (let k = 0; k < entries.length; k += 1) {
      const [name, run] = entries[(i + k) % entries.length];
      const value = await run();
      if (i > 0) out[name].push(value);
      await pause(REST_MS);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------------- models
/** Runs a set-up command with its output shown (its progress is the bench's progress); throws if it fails. */
function step(file, argv) {
  const done = spawnSync(file, argv, { cwd: ROOT, stdio: 'inherit' });
  if (done.status !== 0) throw new Error(`${file} ${argv.join(' ')} failed (${done.status ?? done.signal})`);
}

function models() {
  const tiny = {
    key: 'tiny',
    title: 'tiny SDXL fixture (models/sdxl-tiny)',
    dir: path.join(ROOT, 'models', 'sdxl-tiny'),
    // Two adapters, registered again under other names to make the five idle ones.
    loras: ['style-a', 'style-b', 'style-a', 'style-b', 'style-a'].map((n) =>
      path.join(ROOT, 'models', 'sdxl-tiny-loras', `${n}.safetensors`),
    ),
    // SDXL's text-encoder LoRA cannot go with static shapes (docs/GENAI-BUGS.md): that comparison goes without.
    staticAdapters: [],
    size: 128,
    steps: QUICK ? 4 : 8,
    guidance: 5,
    cases: [0, 1, 2],
    rounds: QUICK ? 12 : 16,
    eventLoopCalls: QUICK ? 3 : 8,
    switchPairs: QUICK ? 8 : 24,
    idleRounds: QUICK ? 4 : 10,
    staticRounds: QUICK ? 3 : 8,
    coldStart: true,
    // PipelinePool: pools of these sizes, calls made at once per round, rounds; loads of 2 and 3 pipelines.
    poolSizes: [1, 2, 3],
    poolCalls: QUICK ? 12 : 24,
    poolRounds: QUICK ? 3 : 6,
    poolLoads: [1, 2, 3],
    poolLoadRounds: QUICK ? 2 : 4,
  };
  const realisticDir = args['realistic-dir'];
  const realistic = {
    key: 'realistic',
    title: `SD 1.5 sizes, random weights (UNet 860M)`,
    dir: realisticDir,
    loras: [0, 1, 2, 3, 4, 5].map((i) => path.join(realisticDir, 'loras', `bench-${i}.safetensors`)),
    staticAdapters: [0, 1].map((i) => path.join(realisticDir, 'loras', `bench-${i}.safetensors`)),
    // --quick: 256×256, so that the whole run keeps within about 10 minutes on 2 cores. Two steps either way: the
    // model's PNDM scheduler is wrong at one step in GenAI 2026.3, and multilora refuses that (schedulerMinSteps).
    size: QUICK ? 256 : 512,
    steps: 2,
    guidance: 7.5,
    cases: QUICK ? [2] : [0, 2],
    rounds: QUICK ? 4 : 4,
    eventLoopCalls: QUICK ? 0 : 2,
    switchPairs: QUICK ? 5 : 6,
    idleRounds: QUICK ? 2 : 3,
    staticRounds: QUICK ? 2 : 3,
    coldStart: !QUICK,
    poolSizes: [1, 2],
    poolCalls: QUICK ? 4 : 8,
    poolRounds: QUICK ? 2 : 3,
    poolLoads: [1, 2],
    poolLoadRounds: QUICK ? 1 : 2,
  };
  return MODELS.split(',').map((key) => {
    const model = { tiny, realistic }[key.trim()];
    if (!model) throw new Error(`--models: expected tiny and/or realistic, received ${key}`);
    if (model === realistic && !existsSync(path.join(model.dir, 'model_index.json'))) {
      console.log(`building the realistic model into ${model.dir} (once; about 15 minutes and 11 GB of RAM)`);
      if (path.basename(model.dir) !== 'sd15-512')
        throw new Error(`--realistic-dir ${model.dir}: only a folder named sd15-512 can be built here`);
      step('bash', [path.join(ROOT, 'scripts', 'make-fixtures.sh'), '--bench-model', '--out', path.dirname(model.dir)]);
    }
    if (!existsSync(path.join(model.dir, 'model_index.json'))) {
      throw new Error(
        `${model.dir} has no model: build it with \`bash scripts/make-fixtures.sh --bench-model\`, or pass --models tiny`,
      );
    }
    for (const lora of model.loras)
      if (!existsSync(lora)) throw new Error(`missing LoRA ${lora}: rebuild the bench model`);
    return model;
  });
}

// The calls of the comparison: no LoRA, one adapter, a blend. Every runner makes exactly the same GenAI calls.
const CASES = [
  { name: 'no LoRA', alphas: [0, 0] },
  { name: 'one adapter (0.8)', alphas: [0.8, 0] },
  { name: 'blend (0.5 + 0.7)', alphas: [0.5, 0.7] },
];

/** Node vs Python vs C++: interleaved rounds, the first dropped, ratios paired within each round. */
async function compareRunners(model, sdk) {
  const runners = [];
  for (const name of ['node', 'python', 'cpp']) runners.push(await Runner.start(name, sdk));
  const loads = {};
  for (const r of runners) loads[r.name] = (await r.load(model, { adapters: model.loras.slice(0, 2) })).ms;
  const cases = model.cases.map((i) => CASES[i]);
  const times = Object.fromEntries(runners.map((r) => [r.name, cases.map(() => [])]));
  // Time outside GenAI's denoising steps (call minus steps × GenAI's own step time): text encoders, VAE and whatever
  // the binding adds, without the steps' noise, which dwarfs any binding cost on a busy 2-core machine.
  const outside = Object.fromEntries(runners.map((r) => [r.name, []]));
  const steps = [];
  const ratios = { nodeOverPython: [], nodeOverCpp: [], pythonOverCpp: [] };
  // The md5 of every byte of each image, by case and runner: the runners must make the same images, whole.
  const md5s = cases.map(() => Object.fromEntries(runners.map((r) => [r.name, new Set()])));
  for (let round = 0; round < model.rounds; round += 1) {
    for (const [c, call] of cases.entries()) {
      const t = {};
      for (let k = 0; k < runners.length; k += 1) {
        const r = runners[(round + c + k) % runners.length];
        const { ms, extra } = await r.gen(model, { ...call, seed: 42 });
        md5s[c][r.name].add(extra.md5);
        t[r.name] = ms;
        if (r.name === 'node' && round > 0) steps.push(extra.stepMs);
        if (round > 0) outside[r.name].push(ms - model.steps * extra.stepMs);
        await pause(REST_MS);
      }
      if (round === 0) continue; // warm-up
      for (const name of Object.keys(t)) times[name][c].push(t[name]);
      ratios.nodeOverPython.push(t.node / t.python);
      ratios.nodeOverCpp.push(t.node / t.cpp);
      ratios.pythonOverCpp.push(t.python / t.cpp);
    }
    process.stdout.write('.');
  }
  process.stdout.write('\n');
  for (const r of runners) await r.stop();
  // The same bytes from the three runners: one md5 per case, whatever the runner and the round. (The random-weight
  // realistic model overflows at the CPU's default bf16 precision: its images are NaN, turned to bytes in no defined
  // way, so they may differ there; the results say what was seen.)
  const imageMd5 = md5s.map((byRunner) =>
    Object.fromEntries(Object.entries(byRunner).map(([name, set]) => [name, [...set]])),
  );
  const runnersSameBytes = imageMd5.every((byRunner) => new Set(Object.values(byRunner).flat()).size === 1);
  return {
    loadsMs: loads,
    stepMs: median(steps),
    outsideStepsMs: Object.fromEntries(Object.entries(outside).map(([name, xs]) => [name, summary(xs)])),
    cases: cases.map((call, c) => ({
      name: call.name,
      ms: Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, summary(xs[c])])),
    })),
    ratios: Object.fromEntries(Object.entries(ratios).map(([k, xs]) => [k, summary(xs)])),
    runnersSameBytes,
    imageMd5: cases.map((call, c) => ({ name: call.name, md5: imageMd5[c] })),
  };
}

/** The event loop during generate calls, with a 1 ms timer watching it. */
async function eventLoop(node, model) {
  await node.send('elmon', 'on');
  const p99 = [];
  const max = [];
  for (let i = 0; i < model.eventLoopCalls; i += 1) {
    const { extra } = await node.gen(model, { alphas: CASES[i % CASES.length].alphas, seed: i });
    p99.push(extra.elP99);
    max.push(extra.elMax);
  }
  await node.send('elmon', 'off');
  return { p99Ms: Math.max(...p99), maxMs: Math.max(...max), calls: p99.length };
}

/**
 * What a switch of adapters or alphas costs: each selection is run twice in a row up to the end of its first step,
 * the first time right after a switch, the second time without one. The difference, over GenAI's step time.
 */
async function switching(node, model, stepMs) {
  const selections = [
    [0.8, 0],
    [0, 0.6],
    [0.5, 0.7],
    [0, 0],
    [0.3, 0.3],
  ];
  const costs = [];
  for (let i = 0; i < model.switchPairs + 1; i += 1) {
    const alphas = selections[i % selections.length];
    const switched = await node.first(model, { alphas, seed: 7 });
    const same = await node.first(model, { alphas, seed: 7 });
    if (i > 0) costs.push(switched - same);
  }
  return { switchCostMs: summary(costs), stepMs, overStep: median(costs) / stepMs };
}

/**
 * What registered adapters cost when a call does not use them, timed to the end of the first step (text encoder
 * and one denoising step, the parts that carry LoRA). Two readings:
 *  - none used: 5 registered and a call without LoRA, against a pipeline with none registered; beside it GenAI's
 *    own way (the C++ driver, an empty AdapterConfig), which multilora cannot take (docs/GENAI-BUGS.md §1);
 *  - one used: 5 registered, one of them used at 0.8, against a pipeline with only that one registered.
 */
async function idleAdapters(model, sdk) {
  const five = model.loras.slice(0, 5);
  const first = (runner, alphas) => () => runner.first(model, { seed: 3, alphas });
  const idle = await Runner.start('node', sdk);
  await idle.load(model, { adapters: five });
  const none = await Runner.start('node', sdk);
  await none.load(model);
  const cpp = await Runner.start('cpp', sdk);
  await cpp.load(model, { adapters: five });
  const ms = await interleaved(model.idleRounds, [
    ['none', first(none, [])],
    ['idle', first(idle, [])],
    ['genaiEmpty', first(cpp, ['empty'])],
  ]);
  await none.stop();
  await cpp.stop();
  const one = await Runner.start('node', sdk);
  await one.load(model, { adapters: five.slice(0, 1) });
  Object.assign(
    ms,
    await interleaved(model.idleRounds, [
      ['one', first(one, [0.8])],
      ['idleOne', first(idle, [0.8])],
    ]),
  );
  await one.stop();
  await idle.stop();
  // Paired: each ratio is taken within a round (both sides run seconds apart), then summarised.
  const paired = (a, b) => summary(ms[a].map((x, i) => x / ms[b][i]));
  const ratios = {
    idleOverNone: paired('idle', 'none'),
    genaiEmptyOverNone: paired('genaiEmpty', 'none'),
    idleOneOverOne: paired('idleOne', 'one'),
  };
  return {
    adapters: 5,
    firstStepMs: Object.fromEntries(Object.entries(ms).map(([k, xs]) => [k, summary(xs)])),
    ratios,
    overhead: ratios.idleOverNone.median - 1,
    genaiEmptyOverhead: ratios.genaiEmptyOverNone.median - 1,
    overheadWithOneUsed: ratios.idleOneOverOne.median - 1,
  };
}

/** Zero-copy output: borrowed results start at GenAI's tensor, copies elsewhere; the same bytes; times of both. */
async function zeroCopy(node, model) {
  const pairs = QUICK || model.key !== 'tiny' ? 3 : 8;
  const { ms, extra } = await node.send(
    'zerocopy',
    42,
    model.size,
    model.size,
    model.steps,
    model.guidance,
    '0.8,0',
    PROMPT,
    pairs,
  );
  return {
    pairs,
    borrowMs: ms,
    copyMs: extra.copyMs,
    borrowedAtGenai: extra.borrowedAtGenai,
    copiesElsewhere: extra.copiesElsewhere,
    sameBytes: extra.sameBytes,
  };
}

/** RSS over many calls after a warm-up (tiny model: many calls in little time). */
async function rssGrowth(node, model) {
  const warmup = 20;
  const calls = 200;
  for (let i = 0; i < warmup; i += 1) await node.gen(model, { alphas: CASES[i % 3].alphas, steps: 1, seed: i });
  const start = (await node.send('rss')).ms;
  const samples = [start];
  for (let i = 0; i < calls; i += 1) {
    await node.gen(model, { alphas: CASES[i % 3].alphas, steps: 1, seed: i });
    if ((i + 1) % 20 === 0) samples.push((await node.send('rss')).ms);
  }
  const end = samples[samples.length - 1];
  return {
    warmup,
    calls,
    startMb: start / 2 ** 20,
    endMb: end / 2 ** 20,
    maxMb: Math.max(...samples) / 2 ** 20,
    growth: end / start - 1,
  };
}

/** Static shapes (reshape before compile) against dynamic shapes: same calls, interleaved. */
async function staticShape(model, sdk) {
  const dynamic = await Runner.start('node', sdk);
  const fixed = await Runner.start('node', sdk);
  const loads = {
    dynamic: (await dynamic.load(model, { adapters: model.staticAdapters })).ms,
    static: (
      await fixed.load(model, {
        adapters: model.staticAdapters,
        shape: `${model.size}x${model.size}x1x${model.guidance}`,
      })
    ).ms,
  };
  const alphas = model.staticAdapters.length ? [0.8, 0] : [];
  const gen = (runner) => async () => (await runner.gen(model, { alphas, seed: 5 })).ms;
  const ms = await interleaved(model.staticRounds, [
    ['static', gen(fixed)],
    ['dynamic', gen(dynamic)],
  ]);
  await dynamic.stop();
  await fixed.stop();
  // Paired: dynamic ÷ static within each round.
  const dynamicOverStatic = summary(ms.dynamic.map((x, i) => x / ms.static[i]));
  return {
    loadsMs: loads,
    ms: { dynamic: summary(ms.dynamic), static: summary(ms.static) },
    dynamicOverStatic,
    speedup: dynamicOverStatic.median,
  };
}

/**
 * Cold start (Pipeline.load in a new process) with no model cache, with an empty one, then with a warm one: without
 * adapters, and with two (their diagnostics and GenAI's LoRA set-up are not cached).
 */
async function coldStart(model, sdk) {
  const result = {};
  for (const [label, adapters] of [
    ['noAdapters', []],
    ['twoAdapters', model.loras.slice(0, 2)],
  ]) {
    const cache = mkdtempSync(path.join(os.tmpdir(), 'multilora-bench-cache-'));
    const r = {};
    try {
      for (const [name, dir] of [
        ['noCache', '-'],
        ['emptyCache', cache],
        ['warmCache', cache],
      ]) {
        const node = await Runner.start('node', sdk);
        r[name] = (await node.load(model, { cache: dir, adapters })).ms;
        await node.stop();
      }
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
    r.speedup = r.noCache / r.warmCache;
    result[label] = r;
  }
  return result;
}

/**
 * PipelinePool against one pipeline: images per second with `poolCalls` calls made at once (the adapters turning
 * through none, one, a blend), one runner process per pool size, interleaved rounds; the throughput ratios are
 * paired within a round. Then the same with K native pipelines below the public API whose OpenVINO
 * INFERENCE_NUM_THREADS is cores/K (what the `threads` load option gives each member), against OpenVINO's default.
 * Then loading 2 and 3 pipelines one after the other against all at once: time and peak RSS, each in a new process.
 */
async function poolPhase(model, sdk) {
  const adapters = model.loras.slice(0, 2);
  const paths = adapters.join('|');
  const cores = os.availableParallelism();
  // Other work on the machine shows in every number: its load average is written down with them.
  const loadAverage = [os.loadavg()[0]];
  const entries = [];
  const runners = [];
  const loads = {};
  const run = (runner) => async () => {
    const { ms } = await runner.send(
      'poolrun',
      model.poolCalls,
      100,
      model.size,
      model.size,
      model.steps,
      model.guidance,
      PROMPT,
    );
    return (model.poolCalls * 1000) / ms;
  };
  for (const k of model.poolSizes) {
    const runner = await Runner.start('node', sdk);
    loads[`pool${k}`] = (await runner.send('pool', k, model.dir, 'CPU', paths)).ms;
    runners.push(runner);
    entries.push([`pool${k}`, run(runner)]);
  }
  for (const k of model.poolSizes.filter((k) => k > 1)) {
    const threads = Math.max(1, Math.floor(cores / k));
    const runner = await Runner.start('node', sdk);
    loads[`threads${k}`] = (await runner.send('rawpool', k, threads, model.dir, 'CPU', paths)).ms;
    runners.push(runner);
    entries.push([`threads${k}`, run(runner)]);
  }
  const ips = await interleaved(model.poolRounds, entries);
  for (const r of runners) await r.stop();
  const throughput = Object.fromEntries(Object.entries(ips).map(([k, xs]) => [k, summary(xs)]));
  const ratios = {};
  for (const name of Object.keys(ips).filter((k) => k !== 'pool1')) {
    ratios[`${name}OverPool1`] = summary(ips[name].map((x, i) => x / ips.pool1[i]));
  }

  const loadRuns = [];
  for (const k of model.poolLoads)
    for (const how of k === 1 ? ['sequential'] : ['sequential', 'parallel']) loadRuns.push([k, how]);
  const loadEntries = loadRuns.map(([k, how]) => [
    `${how}${k}`,
    async () => {
      const runner = await Runner.start('node', sdk);
      const { ms, extra } = await runner.send('loadk', k, how, model.dir, paths);
      await runner.stop();
      return { ms, maxRssMb: extra.maxRss / 2 ** 20 };
    },
  ]);
  const loadResults = await interleaved(model.poolLoadRounds, loadEntries);
  const loading = Object.fromEntries(
    Object.entries(loadResults).map(([k, xs]) => [
      k,
      { ms: summary(xs.map((x) => x.ms)), maxRssMb: summary(xs.map((x) => x.maxRssMb)) },
    ]),
  );
  loadAverage.push(os.loadavg()[0]);
  return {
    cores,
    loadAverage,
    size: model.size,
    steps: model.steps,
    guidance: model.guidance,
    calls: model.poolCalls,
    adapters: adapters.length,
    loadsMs: loads,
    imagesPerSecond: throughput,
    ratios,
    loading,
  };
}

// ---------------------------------------------------------------------------------------------------- the run
const DRIVER = path.join(ROOT, 'build', 'bench', 'bench', 'multilora-bench-driver');

function machine(sdk, base) {
  const python = spawnSync(
    sdk.python,
    ['-c', 'import openvino, openvino_genai; print(openvino.__version__, openvino_genai.__version__)'],
    { encoding: 'utf8' },
  );
  const [openvino, genai] = python.stdout.trim().split(' ');
  return {
    ...base,
    python: spawnSync(sdk.python, ['--version'], { encoding: 'utf8' }).stdout.trim(),
    openvino,
    openvinoGenai: genai,
    multilora: JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
  };
}

async function main() {
  const started = Date.now();
  const sdk = readCompleteSdk();
  if (!sdk) throw new Error('the SDK is not set up: run `npm install` first');
  if (!existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    console.log('building dist/ (tsc)');
    step(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  }
  const list = models();
  if (phases.has('runners') || phases.has('idle')) {
    console.log('building the C++ driver (native/bench/driver.cc)');
    buildNative(['--CDMULTILORA_BENCH_DRIVER=ON', '--target', 'multilora-bench-driver'], {
      outDir: path.join(ROOT, 'build', 'bench'),
    });
  }

  const run = provenance('bench');
  const results = { quick: QUICK, date: run.date, machine: machine(sdk, run.machine), models: {} };
  for (const model of list) {
    console.log(
      `\n== ${model.title}: ${model.size}×${model.size}, ${model.steps} steps, guidance ${model.guidance}, ${model.rounds - 1} rounds after a warm-up`,
    );
    model.title += `, ${model.size}×${model.size}`;
    const r = { title: model.title, size: model.size, steps: model.steps, guidance: model.guidance };
    results.models[model.key] = r;
    if (phases.has('runners')) {
      console.log('node vs python vs c++');
      r.runners = await compareRunners(model, sdk);
      console.log(
        `  node/python ${r.runners.ratios.nodeOverPython.median.toFixed(4)}, node/c++ ${r.runners.ratios.nodeOverCpp.median.toFixed(4)}`,
      );
    }

    if (phases.has('node')) {
      const node = await Runner.start('node', sdk);
      await node.load(model, { adapters: model.loras.slice(0, 2) });
      if (model.eventLoopCalls > 0) {
        console.log('event loop');
        r.eventLoop = await eventLoop(node, model);
        console.log(`  p99 ${r.eventLoop.p99Ms.toFixed(2)} ms`);
      }
      console.log('switching adapters and alphas');
      r.switching = await switching(node, model, r.runners.stepMs);
      console.log(
        `  ${r.switching.switchCostMs.median.toFixed(2)} ms = ${(100 * r.switching.overStep).toFixed(2)}% of a step`,
      );
      console.log('zero-copy output');
      r.zeroCopy = await zeroCopy(node, model);
      console.log(
        `  ${r.zeroCopy.borrowedAtGenai}/${r.zeroCopy.pairs} borrowed at GenAI's tensor, ${r.zeroCopy.copiesElsewhere}/${r.zeroCopy.pairs} copies elsewhere`,
      );
      if (model.key === 'tiny') {
        console.log('rss over 200 calls');
        r.rss = await rssGrowth(node, model);
        console.log(`  ${(100 * r.rss.growth).toFixed(2)}%`);
      }
      await node.stop();
    }
    if (phases.has('idle') && model.loras.length >= 5) {
      console.log('5 idle adapters');
      r.idleAdapters = await idleAdapters(model, sdk);
      console.log(`  ${(100 * r.idleAdapters.overhead).toFixed(2)}% per step`);
    }
    if (phases.has('static')) {
      console.log('static shapes');
      r.staticShape = await staticShape(model, sdk);
      console.log(`  ×${r.staticShape.speedup.toFixed(3)}`);
    }
    if (phases.has('cold') && model.coldStart) {
      console.log('cold start and the model cache');
      r.coldStart = await coldStart(model, sdk);
      for (const [label, c] of Object.entries(r.coldStart))
        console.log(`  ${label}: ${c.noCache.toFixed(0)} ms without, ${c.warmCache.toFixed(0)} ms with a warm cache`);
    }
    if (phases.has('pool')) {
      console.log(`PipelinePool of ${model.poolSizes.join(', ')}: ${model.poolCalls} calls at once`);
      r.pool = await poolPhase(model, sdk);
      Object.assign(r.pool, { date: results.date, quick: QUICK, commit: run.commit, scriptsHash: run.scriptsHash });
      for (const [k, v] of Object.entries(r.pool.imagesPerSecond))
        console.log(`  ${k}: ${v.median.toFixed(2)} images/s`);
      for (const [k, v] of Object.entries(r.pool.ratios)) console.log(`  ${k}: ×${v.median.toFixed(3)}`);
    }
  }

  if (phases.size < PHASES.length) {
    // Only some phases ran: keep what the file holds of the others (and their doc section as it is).
    if (!existsSync(args.out)) throw new Error(`--phases: ${args.out} does not exist yet; run the whole bench once`);
    const previous = JSON.parse(readFileSync(args.out, 'utf8'));
    for (const [key, r] of Object.entries(results.models)) {
      const { title, size, steps, guidance, ...measured } = r;
      previous.models[key] = { ...(previous.models[key] ?? { title, size, steps, guidance }), ...measured };
    }
    // Each phase run again records where its numbers come from.
    const done = run.finish();
    previous.phaseRuns = { ...previous.phaseRuns };
    for (const phase of phases) previous.phaseRuns[phase] = { ...done, quick: QUICK };
    writeFileSync(args.out, `${JSON.stringify(previous, null, 2)}\n`);
    console.log(
      `\nupdated ${[...phases].join(', ')} in ${path.relative(process.cwd(), args.out)} in ${Math.round((Date.now() - started) / 1000)} s`,
    );
    writeDoc();
    return;
  }

  const all = Object.values(results.models);
  const worst = (pick) => {
    const xs = all.map(pick).filter((x) => typeof x === 'number' && !Number.isNaN(x));
    return xs.length ? Math.max(...xs) : Number.NaN;
  };
  Object.assign(results, {
    nodeOverPython: round(worst((m) => m.runners.ratios.nodeOverPython.median)),
    nodeOverCpp: round(worst((m) => m.runners.ratios.nodeOverCpp.median)),
    eventLoopP99Ms: round(
      worst((m) => m.eventLoop?.p99Ms),
      3,
    ),
    rssGrowthPct: round(100 * (results.models.tiny?.rss?.growth ?? NaN), 3),
    alphaSwitchOverStep: round(worst((m) => m.switching.overStep)),
    idleAdaptersOverhead: round(
      worst((m) => m.idleAdapters?.overhead),
      4,
    ),
    staticShapeSpeedup: round((results.models.realistic ?? results.models.tiny).staticShape.speedup),
    durationS: Math.round((Date.now() - started) / 1000),
    ...run.finish(),
  });
  results.targets = {
    nodeOverCpp: { value: results.nodeOverCpp, target: '≤ 1.01', met: results.nodeOverCpp <= 1.01 },
    nodeOverPython: { value: results.nodeOverPython, target: '≤ 1.00', met: results.nodeOverPython <= 1.0 },
    eventLoopP99Ms: { value: results.eventLoopP99Ms, target: '< 10', met: results.eventLoopP99Ms < 10 },
    rssGrowthPct: { value: results.rssGrowthPct, target: '< 5', met: results.rssGrowthPct < 5 },
    alphaSwitchOverStep: {
      value: results.alphaSwitchOverStep,
      target: '< 0.05',
      met: results.alphaSwitchOverStep < 0.05,
    },
    idleAdaptersOverhead: {
      value: results.idleAdaptersOverhead,
      target: '≤ 0.02',
      met: results.idleAdaptersOverhead <= 0.02,
    },
  };
  writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), args.out)} in ${results.durationS} s`);
  for (const [k, t] of Object.entries(results.targets))
    console.log(`  ${t.met ? 'met    ' : 'MISSED '} ${k} = ${t.value} (target ${t.target})`);
  writeDoc();
}

/**
 * The generated blocks of docs/BENCHMARKS.md, from the results files as they now are (scripts/bench/doc.mjs): the
 * full run's tables, and both runs' times. A --out elsewhere leaves the doc alone.
 */
function writeDoc() {
  if (args['no-doc'] || ![RESULTS.quick, RESULTS.full].some((f) => path.resolve(args.out) === path.join(ROOT, f)))
    return;
  const json = (file) =>
    existsSync(path.join(ROOT, file)) ? JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) : undefined;
  const full = json(RESULTS.full);
  if (!full) return; // the tables need a full run
  writeFileSync(
    args.doc,
    renderBenchDoc(readFileSync(args.doc, 'utf8'), { full, quick: json(RESULTS.quick) }, args.doc),
  );
  console.log(`wrote the results of ${path.relative(process.cwd(), args.doc)}`);
}

main().catch((err) => {
  console.error(`bench: ${err.message}`);
  process.exit(1);
});
