#!/usr/bin/env node
// Fuzzes the public API: random option objects through generate / imageToImage / inpaint, and mutated safetensors
// files through the inspection API, pipeline.adapters.add and Pipeline.load. Every failure must be a MultiloraError
// with a known code, and the process must survive.
//
//   node scripts/fuzz.mjs [--seed N] [--options N] [--files N] [--only options:I|files:I] [--out DIR] [--json]
//
// The run happens in a child process; this one watches it. If the child dies (a crash) or stops making progress
// (a hang), the seed, the case and its input are reported and saved to DIR (default test/output/fuzz/). Exit code:
// 0 when every case passed, 1 when one failed or the child crashed or hung, 2 on bad usage.
import { fork } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE =
  'usage: node scripts/fuzz.mjs [--seed N] [--options N] [--files N] [--only options:I|files:I] [--out DIR] [--json]';
let args;
try {
  args = parseArgs({
    options: {
      seed: { type: 'string' },
      options: { type: 'string', default: '10000' },
      files: { type: 'string', default: '1000' },
      only: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'test', 'output', 'fuzz') },
      json: { type: 'boolean', default: false },
      stall: { type: 'string', default: '180' },
      worker: { type: 'boolean', default: false },
      phase: { type: 'string', default: 'options' },
    },
  }).values;
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}

function count(text, name) {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} needs a non-negative integer, not ${JSON.stringify(text)}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

const seed = args.seed === undefined ? randomInt(2 ** 32) : count(args.seed, 'seed');
if (seed > 2 ** 32 - 1) {
  console.error(`--seed must be below 2^32\n${USAGE}`);
  process.exit(2);
}
let optionIndices = Array.from({ length: count(args.options, 'options') }, (_, i) => i);
let fileIndices = Array.from({ length: count(args.files, 'files') }, (_, i) => i);
if (args.only !== undefined) {
  const m = /^(options|files):(\d+)$/.exec(args.only);
  if (!m) {
    console.error(`--only needs options:I or files:I\n${USAGE}`);
    process.exit(2);
  }
  optionIndices = m[1] === 'options' ? [Number(m[2])] : [];
  fileIndices = m[1] === 'files' ? [Number(m[2])] : [];
}
const outDir = path.resolve(args.out);

if (args.worker) await worker(args.phase);
else await supervise();

/** A child: runs one phase, telling the parent each case before it starts, and sends the summary at the end. */
async function worker(phase) {
  const fuzz = require('../test/helpers/fuzz.js');
  const send = (message) => process.send?.(message);
  const log = (text) => send({ log: text });
  // For the spec's check of crash reporting only: the worker dies (SIGKILL, which no sanitizer turns into a report of
  // its own) when this case starts.
  const crashAt = process.env.MULTILORA_FUZZ_CRASH_AT;
  mkdirSync(outDir, { recursive: true });
  const currentFile = path.join(outDir, `current-${seed}-${phase}.json`);
  const onCase = (c) => {
    // Written synchronously, so that it names the case even when the process dies inside it.
    writeFileSync(currentFile, JSON.stringify(c));
    send({ case: c });
    if (crashAt === `${c.phase}:${c.index}` && c.description !== '(being made)') process.kill(process.pid, 'SIGKILL');
  };
  if (phase === 'options') {
    send({ summary: await fuzz.runOptions(seed, optionIndices, { onCase, log }) });
  } else {
    const caseDir = path.join(outDir, `files-${seed}`);
    const files = await fuzz.runFiles(seed, fileIndices, { dir: caseDir, onCase, log });
    // Keep the files of failed cases; the rest are noise.
    for (const f of new Set(files.failures.map((x) => x.file).filter(Boolean))) {
      copyFileSync(f, path.join(outDir, `failure-${seed}-${path.basename(f)}`));
    }
    rmSync(caseDir, { recursive: true, force: true });
    send({ summary: files });
  }
  rmSync(currentFile, { force: true });
  process.disconnect?.();
}

/**
 * Runs each phase in a child of its own, both at once (one mostly generates, the other mostly compiles), and
 * reports a child that dies (a crash) or goes quiet for --stall seconds (a hang) with its seed, case and input.
 */
async function supervise() {
  const started = Date.now();
  const say = (text) => (args.json ? process.stderr : process.stdout).write(`${text}\n`);
  say(
    `fuzz: seed ${seed}, ${optionIndices.length} option objects, ${fileIndices.length} files (replay: --seed ${seed})`,
  );
  const stallMs = count(args.stall, 'stall') * 1000;
  const phases = [
    ['options', optionIndices],
    ['files', fileIndices],
  ].filter(([, indices]) => indices.length > 0);
  const results = await Promise.all(phases.map(([phase]) => watch(phase, stallMs, say)));
  const report = { seed, ms: 0 };
  for (const [phase, result] of results.map((r, i) => [phases[i][0], r])) {
    report[phase] = result.summary;
    if (result.crash) (report.crash ??= []).push(result.crash);
  }
  report.ms = Date.now() - started;
  const failures = [...(report.options?.failures ?? []), ...(report.files?.failures ?? [])];
  if (failures.length) {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, `failures-${seed}.json`), JSON.stringify(failures, null, 2));
  }
  for (const phase of ['options', 'files']) {
    const s = report[phase];
    if (!s) continue;
    const codes = Object.entries(s.codes)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    const loaded = phase === 'files' ? `, ${s.accepted} loaded` : '';
    say(
      `fuzz: ${phase}: ${s.cases} cases in ${(s.ms / 1000).toFixed(1)} s: ${s.generated} generated${loaded}, ` +
        `${s.rejected} rejected (${codes || 'none'}), ${s.failures.length} failures, ` +
        `reference bytes ${s.referenceSame ? 'unchanged' : 'CHANGED'}`,
    );
  }
  for (const f of failures.slice(0, 20))
    say(`fuzz: FAILURE ${f.phase} case ${f.index}: ${f.description}\n  ${f.problem.split('\n')[0]}`);
  say(`fuzz: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exitCode = !report.crash && failures.length === 0 ? 0 : 1;
}

/** One phase's child, to its end: { summary } or { crash }. */
function watch(phase, stallMs, say) {
  const child = fork(
    fileURLToPath(import.meta.url),
    [
      '--worker',
      '--phase',
      phase,
      '--seed',
      String(seed),
      '--options',
      String(args.options),
      '--files',
      String(args.files),
      '--out',
      outDir,
      ...(args.only ? ['--only', args.only] : []),
    ],
    { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  let current;
  let summary;
  let lastProgress = Date.now();
  let stalled = false;
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress > stallMs) {
      stalled = true;
      child.kill('SIGKILL');
    }
  }, 1000);
  child.on('message', (m) => {
    lastProgress = Date.now();
    if (m.case) current = m.case;
    if (m.log) say(`fuzz: ${m.log}`);
    if (m.summary) summary = m.summary;
  });
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      if (code === 0 && summary) {
        resolve({ summary });
        return;
      }
      mkdirSync(outDir, { recursive: true });
      try {
        current = JSON.parse(readFileSync(path.join(outDir, `current-${seed}-${phase}.json`), 'utf8'));
      } catch {
        // it died before its first case: `current` (from IPC, if any) is all there is
      }
      const what = stalled
        ? `made no progress for ${stallMs / 1000} s (a hang)`
        : `exited with ${signal ?? `code ${code}`} (a crash)`;
      const crash = { phase, what, case: current, stderr: stderr.slice(-4000) };
      if (current?.file) {
        const saved = path.join(outDir, `crash-${seed}-${current.phase}-${current.index}.safetensors`);
        try {
          copyFileSync(current.file, saved);
          crash.saved = saved;
        } catch {
          // the case's file is gone: its seed and index still replay it
        }
      }
      crash.replay = `node scripts/fuzz.mjs --seed ${seed}${current ? ` --only ${current.phase}:${current.index}` : ''}`;
      writeFileSync(path.join(outDir, `crash-${seed}.json`), JSON.stringify(crash, null, 2));
      say(
        `fuzz: the ${phase} child ${what} during ${current ? `case ${current.index}: ${current.description}` : 'start-up'}`,
      );
      if (crash.saved) say(`fuzz: its input is saved as ${crash.saved}`);
      say(`fuzz: replay with ${crash.replay}; its stderr ends:\n${stderr.slice(-2000)}`);
      resolve({ crash });
    });
  });
}
