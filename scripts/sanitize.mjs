#!/usr/bin/env node
// `npm run sanitize`: builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into build/sanitize/
// (build/Release, which everything else loads, is left alone), runs the mocha specs that load the addon against that
// build (MULTILORA_ADDON_PATH, see lib/core/binding.ts), and fails unless the specs pass with no sanitizer report at all.
//
// Node itself is not instrumented, so gcc's ASan runtime is preloaded (LD_PRELOAD), in the mocha process and in
// every child it starts (Node, Python, the bench's C++ driver). Every report goes to a file under build/sanitize/reports/ (log_path): the script fails
// if one exists, whatever the exit codes said. UBSan is built with -fno-sanitize-recover (CMakeLists.txt), so a
// report also kills the process that made it. Leaks are left to scripts/leak-check.mjs (detect_leaks=0 here):
// at exit, Node and V8 leave much allocated on purpose.
//
//   node scripts/sanitize.mjs                    build, then run every spec that loads the addon
//   node scripts/sanitize.mjs --no-build         reuse build/sanitize/Release/multilora.node
//   node scripts/sanitize.mjs test/queue.spec.js only these specs
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './sdk-config.mjs';

export const SANITIZE_DIR = path.join(ROOT, 'build', 'sanitize');
export const SANITIZED_ADDON = path.join(SANITIZE_DIR, 'Release', 'multilora.node');
const REPORTS = path.join(SANITIZE_DIR, 'reports');
/** How gcc's sanitizers start a report. */
const SANITIZER_WORDS =
  /: runtime error: |ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|AddressSanitizer: CHECK failed/;

/**
 * Specs left out, and why. None of them loads build/sanitize's addon: they test the build, the packaging or the
 * docs, or start programs that cannot run with gcc's ASan runtime preloaded.
 */
export const SKIPPED_SPECS = {
  'abi.spec.js': 'compiles a probe with g++ and reads the symbols of build/Release/multilora.node; loads no addon',
  'browser.spec.js': 'Chromium cannot run with the ASan runtime preloaded (it has its own allocator and sandbox)',
  'docs.spec.js': 'runs typedoc; loads no addon',
  'prebuild.spec.js': 'builds and packs a relocatable prebuild of its own with cmake and g++; not the sanitized addon',
  'sdk.spec.js': 'copies and sets up the SDK with pip; loads no addon',
};

/** Builds the sanitized addon (an incremental build when it exists). */
export async function buildSanitized() {
  const { buildNative } = await import('./build-native.mjs');
  buildNative(
    ['--CDMULTILORA_SANITIZE=address,undefined', `--CDMULTILORA_OUTPUT_DIR=${path.dirname(SANITIZED_ADDON)}`],
    { outDir: path.join(SANITIZE_DIR, 'cmake') },
  );
}

/** A runtime library of the compiler that built the addon (its real file). */
function compilerLibrary(name) {
  const cxx = process.env.CXX || 'g++';
  const file = execFileSync(cxx, [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(file) || !existsSync(file)) throw new Error(`${cxx} does not know where ${name} is (${file})`);
  return realpathSync(file);
}

/**
 * What to preload: gcc's shared ASan runtime, the one the addon was linked with, which must come first; and
 * libstdc++, so that the runtime finds the real __cxa_throw when it starts. Without it, a program that loads
 * libstdc++ only later (Python, which the specs run as an oracle) dies at its first C++ exception, in an ASan
 * CHECK ("real___cxa_throw != 0"). Node links libstdc++ anyway.
 */
export function preloads() {
  return [compilerLibrary('libasan.so'), compilerLibrary('libstdc++.so')];
}

/**
 * The environment that runs node with the sanitized addon: `reports` receives one file per process that reports.
 * `asan` adds to ASAN_OPTIONS (e.g. 'detect_leaks=1').
 */
export function sanitizedEnv(reports, { asan = 'detect_leaks=0' } = {}) {
  return {
    ...process.env,
    LD_PRELOAD: [...preloads(), process.env.LD_PRELOAD].filter(Boolean).join(':'),
    MULTILORA_ADDON_PATH: SANITIZED_ADDON,
    // OpenVINO's TBB dlopens libtbbbind with RTLD_DEEPBIND, which the ASan runtime refuses (it exits at the first
    // compile_model); this variable of oneTBB's makes it leave that flag out.
    TBB_ENABLE_SANITIZERS: '1',
    // gcc's UBSan runtime runs as a plugin of ASan's here, and prints its own report to stderr whatever log_path
    // says. So a UBSan error aborts (abort_on_error), and ASan reports that SIGABRT (handle_abort), with the stack
    // through __ubsan_handle_*, in a file under `reports`: every report of every process leaves a file.
    // intercept_tls_get_addr=0: ASan's bookkeeping of dynamic TLS (the TLS of dlopen'd libraries) crashed the
    // process, a SEGV inside the runtime's DTLS_Destroy at the exit of a thread, after a pipeline rebuild
    // (adapters.remove) with gcc 12 and glibc 2.36; the plain build runs the same calls cleanly. Our addon has no
    // thread_local, so LSan loses nothing of ours by not scanning dynamic TLS.
    // use_sigaltstack=0: with ASan's per-thread alternate signal stack, a thread that OpenVINO starts died with
    // SIGSEGV inside the runtime (__asan::GetCurrentThread, in operator delete of its std::thread state, as it
    // ended) once calls ran on threads of their own: adapters.spec.js at "remove unregisters it", every time, with
    // the plain addon too. Without the alternate stack it passes whole. A stack overflow is then reported as a plain
    // SEGV, without ASan's "stack-overflow" words; the run still fails.
    ASAN_OPTIONS: [
      'halt_on_error=1',
      'handle_abort=1',
      'intercept_tls_get_addr=0',
      'use_sigaltstack=0',
      'exitcode=86',
      `log_path=${path.join(reports, 'asan')}`,
      asan,
    ].join(':'),
    UBSAN_OPTIONS: [
      'print_stacktrace=1',
      'halt_on_error=1',
      'abort_on_error=1',
      `log_path=${path.join(reports, 'ubsan')}`,
    ].join(':'),
  };
}

/** The report files in `dir` (each is named <prefix>.<pid>), with their text. */
export function readReports(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => ({ file: path.join(dir, name), text: readFileSync(path.join(dir, name), 'utf8') }));
}

async function main(argv) {
  const build = !argv.includes('--no-build');
  const chosen = argv.filter((a) => !a.startsWith('--'));
  const t0 = Date.now();
  if (build) {
    await buildSanitized();
    console.log(
      `multilora sanitize: built ${path.relative(ROOT, SANITIZED_ADDON)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
  }
  if (!existsSync(SANITIZED_ADDON)) throw new Error(`${SANITIZED_ADDON} is missing: run without --no-build`);

  const specs = chosen.length
    ? chosen
    : readdirSync(path.join(ROOT, 'test'))
        .filter((f) => f.endsWith('.spec.js') && !(f in SKIPPED_SPECS))
        .sort()
        .map((f) => path.join('test', f));
  if (!chosen.length) {
    for (const [spec, why] of Object.entries(SKIPPED_SPECS))
      console.log(`multilora sanitize: skipping test/${spec}: ${why}`);
  }

  rmSync(REPORTS, { recursive: true, force: true });
  mkdirSync(REPORTS, { recursive: true });
  const mocha = createRequire(import.meta.url).resolve('mocha/bin/mocha.js');
  const t1 = Date.now();
  // mocha's stderr is passed on, and read: a sanitizer's words there fail the run too.
  const child = spawn(process.execPath, [mocha, '--no-config', '--timeout', '900000', '--reporter', 'spec', ...specs], {
    cwd: ROOT,
    stdio: ['inherit', 'inherit', 'pipe'],
    env: sanitizedEnv(REPORTS),
  });
  const said = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    process.stderr.write(`${line}\n`);
    if (SANITIZER_WORDS.test(line)) said.push(line);
  });
  const [code, signal] = await once(child, 'close');
  const seconds = ((Date.now() - t1) / 1000).toFixed(0);

  const reports = readReports(REPORTS);
  for (const { file, text } of reports) console.error(`\n==== ${path.relative(ROOT, file)}\n${text}`);
  const failures = [];
  if (code !== 0) failures.push(`mocha exited with ${code ?? signal}`);
  if (reports.length) failures.push(`${reports.length} sanitizer report(s) in ${path.relative(ROOT, REPORTS)}/`);
  if (said.length) failures.push(`${said.length} sanitizer line(s) on stderr, the first: ${said[0].trim()}`);
  console.log(
    `multilora sanitize: ${specs.length} spec files under ASan+UBSan in ${seconds} s: ` +
      (failures.length ? `FAILED (${failures.join('; ')})` : '0 sanitizer reports'),
  );
  return failures.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`multilora sanitize: ${err.message}`);
      process.exit(1);
    },
  );
}
