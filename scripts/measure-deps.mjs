#!/usr/bin/env node
// What `npm install multilora` costs an app that only calls Pipeline (issue 15, item 8): packs a checkout, installs
// the tarball into a new app, and measures
//   - the install: packages in node_modules and their size on disk, multilora's own package apart (installed with
//     --ignore-scripts: no SDK, no prebuild, so the numbers are the JavaScript dependencies; the OpenVINO GenAI
//     runtime a real install adds is ~165 MB, README.md "Prebuilt binaries"), with and without --omit=optional;
//   - what `require('multilora')` loads: modules in require.cache, time, RSS; and again after a Pipeline generated
//     one image with the embedded model (the checkout's own addon, through MULTILORA_ADDON_PATH), with the
//     dependency packages that were loaded.
// Writes bench-results/deps.json (the entry named by --as, with the commit, machine and date), prints it, and writes
// the table of docs/DEPENDENCIES.md (between its markers) from every entry of that file.
//
//   node scripts/measure-deps.mjs [--checkout DIR --commit SHA] [--as after|before|NAME] [--runs N]
//
// --checkout measures another tree (e.g. `git archive <commit>` unpacked, with this checkout's node_modules linked
// in; --commit names that commit): its tarball, with this checkout's addon and SDK for the generate.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = path.join(ROOT, 'bench-results', 'deps.json');
const DOC = path.join(ROOT, 'docs', 'DEPENDENCIES.md');
const MARKERS = ['<!-- measure-deps:start -->', '<!-- measure-deps:end -->'];
/** The server's and the scale-out's stacks: what an app that only calls Pipeline should not pay for. */
const STACKS = ['fastify', 'bullmq', 'ioredis'];

const { values: args } = parseArgs({
  options: {
    checkout: { type: 'string', default: ROOT },
    as: { type: 'string', default: 'after' },
    runs: { type: 'string', default: '5' },
    commit: { type: 'string' },
  },
});
const checkout = path.resolve(args.checkout);

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Bytes of the files under dir (their size, as `du --apparent-size` counts; symlinks not followed). */
function bytesOf(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += bytesOf(p);
    else if (entry.isFile()) total += statSync(p).size;
  }
  return total;
}

/** name → folder of every package installed under node_modules (nested ones included). */
function packagesIn(nodeModules, found = new Map()) {
  if (!existsSync(nodeModules)) return found;
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dirs = entry.name.startsWith('@')
      ? readdirSync(path.join(nodeModules, entry.name)).map((n) => [
          `${entry.name}/${n}`,
          path.join(nodeModules, entry.name, n),
        ])
      : [[entry.name, path.join(nodeModules, entry.name)]];
    for (const [name, dir] of dirs) {
      if (!existsSync(path.join(dir, 'package.json'))) continue;
      found.set(`${name}@${path.relative(nodeModules, dir)}`, dir);
      packagesIn(path.join(dir, 'node_modules'), found);
    }
  }
  return found;
}

/** The packages a top-level dependency brings (itself and what it needs, transitively, as installed). */
function closure(app, name) {
  const lock = JSON.parse(readFileSync(path.join(app, 'node_modules', '.package-lock.json'), 'utf8')).packages;
  const seen = new Set();
  const visit = (key) => {
    if (seen.has(key) || !lock[key]) return;
    seen.add(key);
    const deps = { ...lock[key].dependencies, ...lock[key].optionalDependencies };
    for (const dep of Object.keys(deps)) {
      // node's resolution: the nearest node_modules up from the dependent's folder
      let base = key;
      for (;;) {
        const candidate = `${base ? `${base}/` : ''}node_modules/${dep}`;
        if (lock[candidate]) {
          visit(candidate);
          break;
        }
        if (!base) break;
        const i = base.lastIndexOf('/node_modules/');
        base = i < 0 ? '' : base.slice(0, i);
      }
    }
  };
  visit(`node_modules/${name}`);
  return seen;
}

function installInto(tgz, omitOptional) {
  const app = mkdtempSync(path.join(os.tmpdir(), 'multilora-deps-app-'));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'an-app', private: true }));
  const flags = [
    'install',
    '--no-audit',
    '--no-fund',
    '--prefer-offline',
    '--ignore-scripts',
    ...(omitOptional ? ['--omit=optional'] : []),
    tgz,
  ];
  run('npm', flags, { cwd: app });
  const nm = path.join(app, 'node_modules');
  const ours = path.join(nm, 'multilora');
  const others = [...packagesIn(nm).values()].filter((dir) => dir !== ours);
  const ownBytes = (dir) => bytesOf(dir) - nestedBytes(dir);
  const pkg = JSON.parse(readFileSync(path.join(ours, 'package.json'), 'utf8'));
  const direct = Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }).filter((n) =>
    existsSync(path.join(nm, n)),
  );
  const closures = new Map(direct.map((n) => [n, closure(app, n)]));
  /** The packages that only `names` bring: none of multilora's other dependencies needs them. */
  const onlyBy = (names) => {
    const needed = new Set(direct.filter((n) => !names.includes(n)).flatMap((n) => [...closures.get(n)]));
    const keys = [...new Set(names.flatMap((n) => [...(closures.get(n) ?? [])]))].filter((k) => !needed.has(k));
    return {
      packages: keys.length,
      megabytes: +(keys.reduce((s, k) => s + ownBytes(path.join(app, k)), 0) / 1e6).toFixed(2),
    };
  };
  return {
    app,
    result: {
      packages: others.length,
      megabytes: +(others.reduce((sum, dir) => sum + ownBytes(dir), 0) / 1e6).toFixed(2),
      // multilora itself, without the prebuilt addon and runtime (there when the checkout had run `npm run prebuild`)
      multiloraMegabytes: +((ownBytes(ours) - prebuildBytes(ours)) / 1e6).toFixed(2),
      prebuildMegabytes: +(prebuildBytes(ours) / 1e6).toFixed(2),
      // what each direct dependency brings that no other one needs, and the server and scale-out stacks together
      onlyBy: Object.fromEntries([...direct.map((n) => [n, onlyBy([n])]), [STACKS.join('+'), onlyBy(STACKS)]]),
    },
  };
}

function prebuildBytes(pkg) {
  const dir = path.join(pkg, 'prebuilds');
  return existsSync(dir) ? bytesOf(dir) : 0;
}

/** Bytes of a package's own node_modules (counted as their own packages). */
function nestedBytes(dir) {
  const nm = path.join(dir, 'node_modules');
  return existsSync(nm) ? bytesOf(nm) : 0;
}

/** Runs in the app: require('multilora'), then one generate; prints what was loaded. */
const PROBE = `
const t0 = process.hrtime.bigint();
const m = require('multilora');
const requireMs = Number(process.hrtime.bigint() - t0) / 1e6;
const after = () => Object.keys(require.cache);
const packagesOf = (files) => [...new Set(files.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(f)?.[1]).filter((p) => p && p !== 'multilora'))].sort();
const onRequire = { modules: after().length, ms: +requireMs.toFixed(1), rssMB: +(process.memoryUsage().rss / 1e6).toFixed(1), packages: packagesOf(after()) };
(async () => {
  const p = await m.Pipeline.load(m.defaultModelDir());
  await p.generate('a lighthouse', { seed: 7, steps: 2, width: 64, height: 64 });
  await p.dispose();
  const files = after();
  console.log(JSON.stringify({ onRequire, afterGenerate: { modules: files.length, packages: packagesOf(files) } }));
})().catch((e) => { console.error(e); process.exit(3); });
`;

function probe(app, runs) {
  const env = {
    ...process.env,
    MULTILORA_ADDON_PATH: path.join(ROOT, 'build', 'Release', 'multilora.node'),
    MULTILORA_SDK_DIR: process.env.MULTILORA_SDK_DIR ?? path.join(ROOT, '.sdk'),
  };
  const samples = [];
  for (let i = 0; i < runs; i += 1)
    samples.push(JSON.parse(run(process.execPath, ['-e', PROBE], { cwd: app, env }).trim().split('\n').pop()));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const last = samples.at(-1);
  return {
    runs,
    onRequire: {
      modules: last.onRequire.modules,
      msMedian: median(samples.map((s) => s.onRequire.ms)),
      rssMBMedian: median(samples.map((s) => s.onRequire.rssMB)),
      packages: last.onRequire.packages,
    },
    afterGenerate: last.afterGenerate,
    stacksLoaded: STACKS.filter((n) => last.afterGenerate.packages.includes(n)),
  };
}

/** The table of docs/DEPENDENCIES.md: one column per entry of bench-results/deps.json. */
function writeDoc(results) {
  if (!existsSync(DOC)) return;
  const names = Object.keys(results).filter((k) => typeof results[k] === 'object');
  const cols = names.map((n) => results[n]);
  const stacks = STACKS.join('+');
  const mb = (x) => `${x.toFixed(1)} MB`;
  const row = (what, f) => `| ${what} | ${cols.map(f).join(' | ')} |`;
  const lines = [
    MARKERS[0],
    `<!-- written by scripts/measure-deps.mjs from bench-results/deps.json: do not edit by hand -->`,
    `| | ${names.map((n, i) => `${n} (${cols[i].commit})`).join(' | ')} |`,
    `|---|${names.map(() => '---|').join('')}`,
    row('packages installed with multilora', (c) => `${c.install.packages}, ${mb(c.install.megabytes)}`),
    row(
      `… of which only ${stacks} need`,
      (c) => `${c.install.onlyBy[stacks].packages}, ${mb(c.install.onlyBy[stacks].megabytes)}`,
    ),
    row(
      '… of which only cmake-js needs (builds from source)',
      (c) => `${c.install.onlyBy['cmake-js']?.packages ?? 0}, ${mb(c.install.onlyBy['cmake-js']?.megabytes ?? 0)}`,
    ),
    row(
      'packages with `--omit=optional`',
      (c) => `${c.installOmitOptional.packages}, ${mb(c.installOmitOptional.megabytes)}`,
    ),
    row('multilora itself, without the prebuilt runtime', (c) => mb(c.install.multiloraMegabytes)),
    row('the prebuilt runtime in the tarball (`npm run prebuild`)', (c) =>
      c.install.prebuildMegabytes ? mb(c.install.prebuildMegabytes) : 'not packed',
    ),
    row(
      "`require('multilora')`: modules, time, RSS",
      (c) => `${c.load.onRequire.modules}, ${c.load.onRequire.msMedian} ms, ${c.load.onRequire.rssMBMedian} MB`,
    ),
    row('… and one Pipeline generate: modules', (c) => `${c.load.afterGenerate.modules}`),
    row('packages loaded by then', (c) => c.load.afterGenerate.packages.join(', ')),
    row(`of ${STACKS.join(', ')}, loaded`, (c) =>
      c.load.stacksLoaded.length ? c.load.stacksLoaded.join(', ') : 'none',
    ),
    '',
    ...names.map(
      (n, i) =>
        `- ${n}: ${cols[i].date.slice(0, 10)}, ${cols[i].machine}, Node ${cols[i].node}, npm ${cols[i].npm}; times are medians of ${cols[i].load.runs} runs, with a load average of ${cols[i].loadAverage?.join(' then ') ?? 'unknown'}.`,
    ),
    MARKERS[1],
  ];
  const doc = readFileSync(DOC, 'utf8');
  const [a, b] = [doc.indexOf(MARKERS[0]), doc.indexOf(MARKERS[1])];
  if (a < 0 || b < a) throw new Error(`${path.relative(ROOT, DOC)} lacks the markers ${MARKERS.join(' and ')}`);
  writeFileSync(DOC, doc.slice(0, a) + lines.join('\n') + doc.slice(b + MARKERS[1].length));
  console.log(`wrote the table of ${path.relative(ROOT, DOC)}`);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'multilora-deps-'));
const apps = [];
try {
  const packed = JSON.parse(
    run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: checkout }).replace(/^[^[]*/s, ''),
  );
  const tgz = path.join(tmp, packed[0].filename);
  const full = installInto(tgz, false);
  const lean = installInto(tgz, true);
  apps.push(full.app, lean.app);
  // changes to the files this script writes (by an earlier run) do not go into the tarball
  const outputs = [RESULTS, DOC].map((f) => `:!${path.relative(checkout, f)}`);
  const dirty = () =>
    run('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ...outputs], { cwd: checkout }).trim() !==
    '';
  const entry = {
    commit:
      args.commit ??
      `${run('git', ['rev-parse', '--short', 'HEAD'], { cwd: checkout }).trim()}${dirty() ? ' with uncommitted changes' : ''}`,
    date: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}`,
    // the 1-minute load average before and after: the times are only as steady as the machine was idle
    loadAverage: [+os.loadavg()[0].toFixed(2)],
    node: process.version,
    npm: run('npm', ['--version']).trim(),
    tarball: {
      megabytes: +(packed[0].size / 1e6).toFixed(2),
      unpackedMegabytes: +(packed[0].unpackedSize / 1e6).toFixed(2),
      files: packed[0].entryCount,
    },
    install: full.result,
    installOmitOptional: lean.result,
    load: probe(full.app, Number(args.runs)),
  };
  entry.loadAverage.push(+os.loadavg()[0].toFixed(2));
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  const results = existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : {};
  results.description =
    'What `npm install multilora` costs an app that only calls Pipeline: written by scripts/measure-deps.mjs (docs/DEPENDENCIES.md).';
  results[args.as] = entry;
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(entry, null, 2));
  console.log(`wrote ${path.relative(ROOT, RESULTS)} (${args.as})`);
  writeDoc(results);
} finally {
  for (const dir of [tmp, ...apps]) rmSync(dir, { recursive: true, force: true });
}
