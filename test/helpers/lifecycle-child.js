// The child processes of test/process-lifecycle.spec.js: `node lifecycle-child.js <scenario>`. Each scenario prints
// one JSON object per line on stdout ({ event, ms, ...}), ms counted from the start of the long generation where
// there is one. The spec reads them, and the exit code or signal.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { Pipeline } = require('../..');
const { families } = require('./fixtures');

/** Long enough that waiting for its end would show (hundreds of steps), small enough to start at once. */
const LONG = { seed: 11, width: 64, height: 64, steps: 500 };
/** What the worker_threads scenarios compare. */
const CALLS = [
  { prompt: 'a red barn', options: { seed: 21, width: 64, height: 64, steps: 4, adapters: { 'style-a': 0.8 } } },
  { prompt: 'a blue lake', options: { seed: 22, width: 64, height: 64, steps: 4, adapters: { 'style-b': 1 } } },
];
const LOAD = {
  adapters: { 'style-a': { path: families.sd15.lora('style-a') }, 'style-b': { path: families.sd15.lora('style-b') } },
};

let t0 = performance.now();
function say(event, fields = {}) {
  const line = JSON.stringify({ event, ms: Math.round(performance.now() - t0), ...fields });
  if (isMainThread) process.stdout.write(`${line}\n`);
  else parentPort.postMessage(line);
}

/**
 * Starts the long generation; resolves once GenAI has run `steps` steps, with the mean step time so far. The
 * generation's own promise is in `.done`.
 */
function startLong(pipeline, extra = {}, steps = 3) {
  const times = [];
  let reached;
  const started = new Promise((resolve) => {
    reached = resolve;
  });
  t0 = performance.now();
  const done = pipeline.generate('a long walk', {
    ...LONG,
    ...extra,
    onProgress: (e) => {
      times.push(e.elapsedMs);
      if (times.length === steps) {
        reached({ stepMs: (times[times.length - 1] - times[0]) / (steps - 1), step: e.step, total: e.total });
      }
    },
  });
  return { started, done };
}

/** Tells the parent that the long generation is running: its step time and how much of it is left. */
function sayGenerating({ stepMs, step, total }) {
  say('generating', { stepMs, step, total, remainingMs: Math.round(stepMs * (total - step)) });
}

const scenarios = {
  // process.exit() while a generation runs.
  async exit() {
    const pipeline = await Pipeline.load(families.sd15.model);
    const { started } = startLong(pipeline);
    sayGenerating(await started);
    process.exit(3);
  },

  // The parent sends SIGTERM; the default handler ends the process.
  async sigterm() {
    const pipeline = await Pipeline.load(families.sd15.model);
    const { started } = startLong(pipeline);
    sayGenerating(await started);
    setInterval(() => {}, 1000); // wait for the signal
  },

  // The parent sends SIGTERM; the handler aborts the running call, disposes the pipeline and exits.
  async 'sigterm-handler'() {
    const pipeline = await Pipeline.load(families.sd15.model);
    const controller = new AbortController();
    const { started, done } = startLong(pipeline, { signal: controller.signal });
    process.once('SIGTERM', async () => {
      say('signal');
      controller.abort();
      const outcome = await done.then(
        () => 'resolved',
        (err) => err.code,
      );
      await pipeline.dispose();
      say('disposed', { outcome, disposed: pipeline.disposed });
      process.exit(0);
    });
    sayGenerating(await started);
  },

  // dispose() while a call runs: it waits for the call (docs/LIFECYCLE.md), later calls are refused.
  async dispose() {
    const pipeline = await Pipeline.load(families.sd15.model);
    const order = [];
    const { started, done } = startLong(pipeline, { steps: 30 });
    const run = done.then(
      (image) => {
        order.push('generate');
        return image;
      },
      (err) => {
        order.push('generate');
        throw err;
      },
    );
    sayGenerating(await started);
    const disposing = pipeline.dispose().then(() => order.push('dispose'));
    const disposedAtOnce = pipeline.disposed;
    const later = await pipeline.generate('after', { seed: 1, width: 64, height: 64, steps: 2 }).then(
      () => 'resolved',
      (err) => err.code,
    );
    const image = await run;
    await disposing;
    say('done', { order, disposedAtOnce, later, bytes: image.data.length, width: image.width });
  },

  // One call in a worker_thread and the same call on the main thread.
  async worker() {
    const inWorker = await runWorker({ role: 'calls', calls: [CALLS[0]] });
    const pipeline = await Pipeline.load(families.sd15.model, LOAD);
    const here = await pipeline.generate(CALLS[0].prompt, CALLS[0].options);
    await pipeline.dispose();
    say('done', { equal: Buffer.from(inWorker[0]).equals(here.data), bytes: here.data.length });
  },

  // worker.terminate() while the worker generates (or, 'worker-exit', the worker calls process.exit()); then the
  // main thread still generates.
  async 'worker-exit'() {
    await scenarios.terminate('long-exit');
  },

  async terminate(role = 'long') {
    const worker = new Worker(__filename, { workerData: { role } });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const generating = await new Promise((resolve, reject) => {
      worker.on('message', (line) => {
        const m = JSON.parse(line);
        if (m.event === 'generating') resolve(m);
      });
      worker.once('error', reject);
    });
    t0 = performance.now();
    const { stepMs, step, total, remainingMs } = generating;
    say('generating', { stepMs, step, total, remainingMs });
    if (role === 'long') await worker.terminate();
    say('terminated', { exitCode: await exited });
    const pipeline = await Pipeline.load(families.sd15.model, LOAD);
    const image = await pipeline.generate(CALLS[0].prompt, CALLS[0].options);
    await pipeline.dispose();
    say('done', { bytes: image.data.length });
  },

  // Two pipelines in two workers at once, then the same calls one after the other on the main thread.
  async 'two-workers'() {
    const both = await Promise.all(CALLS.map((call) => runWorker({ role: 'calls', calls: [call] })));
    const pipeline = await Pipeline.load(families.sd15.model, LOAD);
    const serial = [];
    for (const call of CALLS) serial.push((await pipeline.generate(call.prompt, call.options)).data);
    await pipeline.dispose();
    say('done', {
      equal: both.map((images, i) => Buffer.from(images[0]).equals(serial[i])),
      differ: !serial[0].equals(serial[1]),
    });
  },
};

/** Runs a worker of this file; resolves with the RGB bytes of its calls. */
function runWorker(data) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(__filename, { workerData: data });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the worker exited (${code}) without a result`)));
  });
}

const workers = {
  async calls({ calls }) {
    const pipeline = await Pipeline.load(families.sd15.model, LOAD);
    const out = [];
    for (const call of calls) out.push((await pipeline.generate(call.prompt, call.options)).data);
    await pipeline.dispose();
    parentPort.postMessage(out.map((b) => new Uint8Array(b)));
  },
  async long() {
    const pipeline = await Pipeline.load(families.sd15.model);
    const { started } = startLong(pipeline);
    sayGenerating(await started);
  },
  async 'long-exit'() {
    await workers.long();
    setTimeout(() => process.exit(5), 50); // once the parent has the message
  },
};

if (isMainThread) {
  scenarios[process.argv[2]]().catch((err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
} else {
  workers[workerData.role](workerData);
}
