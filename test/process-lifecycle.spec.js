// Processes and threads: each case runs in a child process (test/helpers/lifecycle-child.js), which must end as
// expected, promptly, and without a crash. "Promptly" is measured against the long generation the child was running
// (hundreds of steps: its step time × the steps left): an exit that waited for it would take at least that long.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const CHILD = path.join(__dirname, 'helpers', 'lifecycle-child.js');
const BOUND_MS = 20_000;
const CRASH =
  /Segmentation fault|terminate called|Abort|core dumped|FATAL ERROR|double free|corrupted|free\(\)|Assertion/;

/**
 * Runs a scenario. `onEvent(event, child)` sees each JSON line as it comes. Resolves with the exit code or signal,
 * the events, stderr, and `endMs`: from the 'generating' event (or the spawn) to the child's exit.
 */
function runChild(scenario, { onEvent = () => {}, timeoutMs = 240_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
    const events = [];
    let stdout = '';
    let stderr = '';
    let since = performance.now();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${scenario}: no exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      let nl;
      while ((nl = stdout.indexOf('\n')) >= 0) {
        const line = stdout.slice(0, nl);
        stdout = stdout.slice(nl + 1);
        const event = JSON.parse(line);
        if (event.event === 'generating') since = performance.now();
        events.push(event);
        onEvent(event, child);
      }
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, events, stderr, endMs: performance.now() - since });
    });
  });
}

function event(result, name) {
  const found = result.events.find((e) => e.event === name);
  assert.ok(found, `no '${name}' event: ${JSON.stringify(result.events)}; stderr: ${result.stderr}`);
  return found;
}

function assertNoCrash(result) {
  assert.doesNotMatch(result.stderr, CRASH);
}

/** The end came promptly: well within the bound, and well before the long generation could have finished. */
function assertPrompt(ms, generating, what) {
  const line = `${what}: ${ms.toFixed(0)} ms; the generation had ~${generating.remainingMs} ms left (${generating.stepMs.toFixed(1)} ms/step, step ${generating.step} of ${generating.total})`;
  console.log(`      ${line}`);
  assert.ok(ms < BOUND_MS, line);
  assert.ok(ms < generating.remainingMs / 2, `${line}: it waited for the generation`);
}

describe('processes and threads (child processes)', function () {
  this.timeout(300_000);

  it('process.exit() while generating: exits at once with its code, no crash', async function () {
    const result = await runChild('exit');
    assert.equal(result.code, 3, result.stderr);
    assert.equal(result.signal, null);
    assertNoCrash(result);
    assertPrompt(result.endMs, event(result, 'generating'), 'exit');
  });

  it('SIGTERM while generating, default handler: the signal ends it at once, no crash', async function () {
    const result = await runChild('sigterm', {
      onEvent: (e, child) => e.event === 'generating' && child.kill('SIGTERM'),
    });
    assert.equal(result.signal, 'SIGTERM', `code ${result.code}; stderr: ${result.stderr}`);
    assertNoCrash(result);
    assertPrompt(result.endMs, event(result, 'generating'), 'SIGTERM');
  });

  it('SIGTERM while generating, a handler that aborts, disposes and exits: code 0, the call rejected ERR_ABORTED', async function () {
    const result = await runChild('sigterm-handler', {
      onEvent: (e, child) => e.event === 'generating' && child.kill('SIGTERM'),
    });
    assert.equal(result.code, 0, result.stderr);
    assertNoCrash(result);
    const disposed = event(result, 'disposed');
    assert.equal(disposed.outcome, 'ERR_ABORTED');
    assert.equal(disposed.disposed, true);
    assertPrompt(result.endMs, event(result, 'generating'), 'SIGTERM with a handler');
  });

  it('dispose() while generating waits for the call (docs/LIFECYCLE.md), then refuses calls', async function () {
    const result = await runChild('dispose');
    assert.equal(result.code, 0, result.stderr);
    assertNoCrash(result);
    const done = event(result, 'done');
    assert.deepEqual(done.order, ['generate', 'dispose'], 'dispose settled before the call it waits for');
    assert.equal(done.disposedAtOnce, true);
    assert.equal(done.later, 'ERR_DISPOSED');
    assert.equal(done.width, 64);
    assert.equal(done.bytes, 64 * 64 * 3);
  });

  it('a generate inside a worker_thread gives the bytes of the same call on the main thread', async function () {
    const result = await runChild('worker');
    assert.equal(result.code, 0, result.stderr);
    assertNoCrash(result);
    const done = event(result, 'done');
    assert.equal(done.bytes, 64 * 64 * 3);
    assert.equal(done.equal, true);
  });

  it('worker.terminate() mid-generate resolves promptly; the main thread then still generates', async function () {
    const result = await runChild('terminate');
    assert.equal(result.code, 0, result.stderr);
    assertNoCrash(result);
    const terminated = event(result, 'terminated');
    assert.equal(terminated.exitCode, 1); // what terminate() reports
    assertPrompt(terminated.ms, event(result, 'generating'), 'worker.terminate()');
    assert.equal(event(result, 'done').bytes, 64 * 64 * 3);
  });

  it('process.exit() in a worker mid-generate: the worker ends promptly with its code; the main thread goes on', async function () {
    const result = await runChild('worker-exit');
    assert.equal(result.code, 0, result.stderr);
    assertNoCrash(result);
    const ended = event(result, 'terminated');
    assert.equal(ended.exitCode, 5);
    assertPrompt(ended.ms, event(result, 'generating'), 'process.exit() in a worker');
    assert.equal(event(result, 'done').bytes, 64 * 64 * 3);
  });

  it('two pipelines in two workers at once: each result equals its serial bytes', async function () {
    const result = await runChild('two-workers');
    assert.equal(result.code, 0, result.stderr);
    assertNoCrash(result);
    const done = event(result, 'done');
    assert.deepEqual(done.equal, [true, true]);
    assert.equal(done.differ, true, 'the two calls should make different images');
  });
});
