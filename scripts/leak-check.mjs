#!/usr/bin/env node
// `npm run leak-check`: does the addon leak? Two checks, each in a child process that runs a workload of N generates
// on the tiny SD 1.5 fixture with two adapters: every call picks other adapters, alphas or options (progress,
// previews, a borrowed output, torch's generator, a batch, image-to-image), one call in ten is aborted and one fails
// in its progress callback (ERR_CALLBACK); then an adapter is added and removed (a native rebuild each), a load
// fails inside GenAI (ERR_GENAI: no such device), a second pipeline is loaded, used and disposed, everything is
// disposed, and the process ends by itself after a few GCs.
//
// - leaks (the default): N = 50 with the ASan build of scripts/sanitize.mjs, LeakSanitizer on at exit. Every leak
//   LSan reports whose allocation stack has a frame in our addon (multilora.node, native/) fails the check. Leaks
//   with no frame of ours (Node, V8, OpenVINO, TBB keep some memory until exit on purpose) are counted and shown;
//   scripts/lsan.supp silences the known ones. Stacks come from ASan's fast unwinder (frame pointers, 64 frames):
//   exact through our code, which is built with frame pointers; Node and OpenVINO are not, so a stack may stop
//   inside them. A leaked object of ours is still caught: it was allocated by our code, at the top of its stack
//   (the full DWARF unwinder, fast_unwind_on_malloc=0, made 10 generates take over 15 minutes).
// - --rss: the plain build (build/Release), N = 500 by default: the resident set size after 10, 50, 100, ...
//   generates, to see whether it stays flat.
//
//   node scripts/leak-check.mjs [--no-build] [--generates N]
//   node scripts/leak-check.mjs --rss [--generates N]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './sdk-config.mjs';
import { SANITIZED_ADDON, SANITIZE_DIR, buildSanitized, readReports, sanitizedEnv } from './sanitize.mjs';

const SELF = fileURLToPath(import.meta.url);
const REPORTS = path.join(SANITIZE_DIR, 'leak-reports');
const SUPPRESSIONS = path.join(ROOT, 'scripts', 'lsan.supp');

/** A frame of ours: in the addon's binary, or in a source file under native/. */
const OUR_FRAME = /multilora\.node|\/native\/[\w/.-]+\.(cc|h)\b/;

// ---- the workload (the child process) ----

async function workload(generates, { rssEvery = 0, verbose = false } = {}) {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const { Pipeline, AbortError, MultiloraError } = require(ROOT);
  const { bufferAddress } = require(path.join(ROOT, 'dist', 'internal.js')).binding;
  const { genaiOutputAddress } = require(path.join(ROOT, 'dist', 'pipeline.js'));
  const model = path.join(ROOT, 'test', 'fixtures', 'models', 'sd15-tiny');
  const lora = (name) => path.join(ROOT, 'test', 'fixtures', 'loras', 'sd15', `${name}.safetensors`);
  const counts = { images: 0, aborted: 0, failed: 0 };
  const rss = [];
  const note = (done) => {
    if (rssEvery && (done === 10 || done % rssEvery === 0)) {
      global.gc?.();
      rss.push([done, Math.round(process.memoryUsage().rss / 2 ** 20)]);
    }
  };

  const pipeline = await Pipeline.load(model, {
    adapters: { a: { path: lora('style-a') }, b: { path: lora('style-b') } },
  });
  const base = { steps: 2, width: 64, height: 64 };
  let last;
  for (let i = 0; i < generates; i += 1) {
    const seed = i;
    const events = [];
    const onProgress = (e) => events.push(e.step);
    switch (i % 10) {
      case 0:
        last = await pipeline.generate('a boat', { ...base, seed });
        break;
      case 1:
        last = await pipeline.generate('a boat', { ...base, seed, adapters: 'a', onProgress });
        break;
      case 2:
        last = await pipeline.generate('a boat', {
          ...base,
          seed,
          adapters: { a: 0.5, b: 0.7 },
          preview: true,
          onProgress,
        });
        break;
      case 3: {
        last = await pipeline.generate('a boat', { ...base, seed, adapters: 'b', output: 'borrow' });
        if (bufferAddress(last.data) !== genaiOutputAddress(pipeline))
          throw new Error(`call ${i}: the borrowed output was copied`);
        break;
      }
      case 4:
        last = await pipeline.generate('a boat', { ...base, seed, adapters: { a: 0.3 }, generator: 'torch' });
        break;
      case 5: {
        const controller = new AbortController();
        try {
          await pipeline.generate('a boat', {
            ...base,
            seed,
            steps: 20,
            adapters: 'a',
            signal: controller.signal,
            onProgress: () => controller.abort(),
          });
          throw new Error('the aborted call resolved');
        } catch (err) {
          if (!(err instanceof AbortError)) throw err;
          counts.aborted += 1;
        }
        continue;
      }
      case 6:
        try {
          await pipeline.generate('a boat', {
            ...base,
            seed,
            adapters: 'b',
            onProgress: () => {
              throw new Error('a failing progress callback');
            },
          });
          throw new Error('the failing call resolved');
        } catch (err) {
          if (!(err instanceof MultiloraError) || err.code !== 'ERR_CALLBACK') throw err;
          counts.failed += 1;
        }
        continue;
      case 7: {
        const batch = await pipeline.generate('a boat', { ...base, seed, adapters: ['a', 'b'], numImages: 2 });
        counts.images += batch.length - 1;
        last = batch[0];
        break;
      }
      case 8:
        last = pipeline.defaults.imageInputs
          ? await pipeline.imageToImage(
              'a boat',
              { ...last, data: Buffer.from(last.data) },
              { steps: 2, seed, strength: 0.5, adapters: 'a' },
            )
          : await pipeline.generate('a boat', { ...base, seed, guidanceScale: 1 });
        break;
      default:
        last = await pipeline.generate('a boat', { ...base, seed, steps: 3, adapters: { b: 1 }, onProgress });
        break;
    }
    if (last.data.length !== 64 * 64 * 3 && !(i % 10 === 3)) throw new Error(`call ${i}: ${last.data.length} bytes`);
    counts.images += 1;
    note(i + 1);
    if (verbose) console.error(`multilora leak-check: call ${i + 1} done`);
  }

  // Adapter changes rebuild the native pipeline: the old one must go.
  await pipeline.adapters.add('c', { path: lora('style-a-peft') });
  await pipeline.generate('a boat', { ...base, seed: 1, adapters: 'c' });
  await pipeline.adapters.remove('c');
  await pipeline.dispose();
  if (verbose) console.error('multilora leak-check: adapters added, removed, pipeline disposed');

  // A load that fails inside GenAI (OpenVINO knows no such device).
  try {
    await Pipeline.load(model, { device: 'NO_SUCH_DEVICE', adapters: { a: { path: lora('style-a') } } });
    throw new Error('the load on a missing device resolved');
  } catch (err) {
    if (!(err instanceof MultiloraError) || err.code !== 'ERR_GENAI') throw err;
    counts.failed += 1;
  }

  if (verbose) console.error('multilora leak-check: a load failed');
  const plain = await Pipeline.load(model);
  await plain.generate('a boat', { ...base, seed: 2 });
  await plain.dispose();
  if (verbose) console.error('multilora leak-check: a second pipeline used and disposed');

  for (let k = 0; k < 4; k += 1) {
    global.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(JSON.stringify({ generates, ...counts, rss }));
}

// ---- the parent ----

/** LSan's reports, one per leak: its kind, size and frames. */
export function parseLeaks(text) {
  const leaks = [];
  for (const block of text.split(/\n(?=(?:Direct|Indirect) leak of )/)) {
    const head = /^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\)/.exec(block);
    if (!head) continue;
    const frames = block
      .split('\n')
      .filter((l) => /^\s+#\d+ /.test(l))
      .map((l) => l.trim());
    leaks.push({
      kind: head[1],
      bytes: Number(head[2]),
      objects: Number(head[3]),
      frames,
      ours: frames.some((f) => OUR_FRAME.test(f)),
    });
  }
  return leaks;
}

function child(args, env) {
  const r = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  // GenAI writes its warnings to stdout too, with no line end: the result is the last JSON object there.
  const at = r.stdout.lastIndexOf('{"generates":');
  let result;
  try {
    result = at >= 0 ? JSON.parse(r.stdout.slice(at).split('\n')[0]) : undefined;
  } catch {
    result = undefined;
  }
  return { status: r.status, signal: r.signal, stderr: r.stderr, result };
}

async function checkLeaks(generates, build) {
  if (build) await buildSanitized();
  if (!existsSync(SANITIZED_ADDON)) throw new Error(`${SANITIZED_ADDON} is missing: run without --no-build`);
  rmSync(REPORTS, { recursive: true, force: true });
  mkdirSync(REPORTS, { recursive: true });
  const env = sanitizedEnv(REPORTS, {
    asan: ['detect_leaks=1', 'malloc_context_size=64'].join(':'),
  });
  env.LSAN_OPTIONS = [`suppressions=${SUPPRESSIONS}`, 'print_suppressions=1', 'report_objects=0'].join(':');
  const t0 = Date.now();
  const run = child(['--generates', String(generates)], env);
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  if (!run.result) {
    console.error(run.stderr);
    throw new Error(`the workload did not finish (exit ${run.status ?? run.signal})`);
  }
  const reports = readReports(REPORTS);
  const leaks = reports.flatMap((r) => parseLeaks(r.text));
  const ours = leaks.filter((l) => l.ours);
  const foreign = leaks.filter((l) => !l.ours);
  // Any other report (ASan, UBSan, a runtime CHECK) fails the check too.
  const otherReports = reports.filter((r) =>
    /ERROR: AddressSanitizer|runtime error|CHECK failed|ERROR: UndefinedBehavior/.test(r.text),
  );
  // LSan's table after "Suppressions used:": count, bytes, the entry.
  const suppressed = reports.flatMap((r) =>
    [...(r.text.split('Suppressions used:')[1] ?? '').matchAll(/^\s*(\d+)\s+(\d+)\s+(\S+)\s*$/gm)].map(
      (m) => `${m[3]} (${m[1]}x, ${m[2]} B)`,
    ),
  );
  const sum = (ls) => ls.reduce((n, l) => n + l.bytes, 0);
  console.log(`multilora leak-check: ${JSON.stringify(run.result)} under ASan+LSan in ${seconds} s`);
  console.log(`  leaks with a frame in our code: ${ours.length} (${sum(ours)} bytes)`);
  console.log(
    `  leaks with no frame of ours (Node, V8, OpenVINO, TBB), not suppressed: ${foreign.length} (${sum(foreign)} bytes)`,
  );
  console.log(`  suppressed by scripts/lsan.supp: ${suppressed.length ? suppressed.join(', ') : 'none'}`);
  for (const l of ours)
    console.error(`\n${l.kind} leak of ${l.bytes} byte(s) in ${l.objects} object(s):\n  ${l.frames.join('\n  ')}`);
  for (const r of otherReports) console.error(`\n==== ${r.file}\n${r.text}`);
  for (const l of foreign.slice(0, 5))
    console.log(`  e.g. ${l.kind} ${l.bytes} B: ${l.frames.slice(0, 6).join(' | ')}`);
  return ours.length === 0 && otherReports.length === 0 ? 0 : 1;
}

function measureRss(generates) {
  const t0 = Date.now();
  const env = { ...process.env };
  delete env.MULTILORA_ADDON_PATH;
  const run = child(['--generates', String(generates), '--rss-every', '50'], env);
  if (!run.result) {
    console.error(run.stderr);
    throw new Error(`the workload did not finish (exit ${run.status ?? run.signal})`);
  }
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  console.log(`multilora leak-check --rss: ${run.result.generates} generates in ${seconds} s, plain build`);
  console.log(`  RSS (MiB) after n generates: ${run.result.rss.map(([n, mb]) => `${n}: ${mb}`).join(', ')}`);
  return 0;
}

const argv = process.argv.slice(2);
const option = (name, fallback) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback);
if (import.meta.url === `file://${process.argv[1]}`) {
  if (argv.includes('--child')) {
    workload(option('--generates', 50), {
      rssEvery: option('--rss-every', 0),
      verbose: argv.includes('--verbose'),
    }).catch((err) => {
      console.error(err);
      process.exit(2);
    });
  } else {
    const rss = argv.includes('--rss');
    Promise.resolve()
      .then(() =>
        rss
          ? measureRss(option('--generates', 500))
          : checkLeaks(option('--generates', 50), !argv.includes('--no-build')),
      )
      .then(
        (code) => process.exit(code),
        (err) => {
          console.error(`multilora leak-check: ${err.message}`);
          process.exit(1);
        },
      );
  }
}
