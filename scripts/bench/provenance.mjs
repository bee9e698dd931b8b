// Where a results file comes from: every benchmark writes these fields beside its numbers, so that a number in the
// docs can be traced to the commit and the scripts that made it, the machine it ran on, and how busy that machine was.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../sdk-config.mjs';

/** The scripts behind each results file (files, or folders taken whole), relative to the repository. */
export const SCRIPTS = {
  bench: ['scripts/bench.mjs', 'scripts/bench', 'scripts/stats.mjs', 'native/bench'],
  scaling: ['scripts/bench-scaling.mjs', 'scripts/bench/doc.mjs', 'scripts/bench/provenance.mjs', 'scripts/stats.mjs'],
  lifecycle: ['scripts/bench-lifecycle.mjs', 'scripts/bench/provenance.mjs'],
  fuseLoad: [
    'scripts/bench-fuse-load.mjs',
    'scripts/bench/fuse-load.mjs',
    'scripts/bench/doc.mjs',
    'scripts/bench/provenance.mjs',
    'scripts/stats.mjs',
  ],
  loraRank: [
    'scripts/bench-lora-rank.mjs',
    'scripts/bench/lora-rank.mjs',
    'scripts/bench/doc.mjs',
    'scripts/bench/provenance.mjs',
    'scripts/stats.mjs',
  ],
};

function files(entry) {
  const full = path.join(ROOT, entry);
  if (!statSync(full).isDirectory()) return [entry];
  return readdirSync(full)
    .sort()
    .flatMap((name) => files(path.join(entry, name)));
}

/**
 * sha256 (first 16 hex digits) over the paths and bytes of the scripts that make a results file: the same hash means
 * the same measuring code, whatever else changed in the commit.
 */
export function scriptsHash(entries) {
  const hash = createHash('sha256');
  for (const file of entries.flatMap(files).sort()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(path.join(ROOT, file)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** The commit of the checkout, with a note when the scripts that made the results had uncommitted changes. */
export function commit(entries) {
  const git = (...args) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const head = git('rev-parse', '--short=12', 'HEAD');
  if (head.status !== 0) return 'unknown (not a git checkout)';
  const dirty = git('status', '--porcelain', '--', ...entries).stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? ' with uncommitted changes to the scripts' : ''}`;
}

const loadAverage = () => os.loadavg().map((x) => Number(x.toFixed(2)));

/**
 * Call at the start of a run: `machine` describes it; `finish()` at the end gives the other fields every results file
 * carries: commit, scriptsHash, date, loadAverage (1, 5 and 15 minutes, at the start and at the end).
 */
export function provenance(name) {
  const entries = SCRIPTS[name];
  if (!entries) throw new Error(`provenance: no scripts listed for ${name}`);
  const start = loadAverage();
  const fields = {
    commit: commit(entries),
    scriptsHash: scriptsHash(entries),
    date: new Date().toISOString(),
  };
  const cpu = os.cpus();
  const machine = {
    cpu: `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
    cores: os.availableParallelism(),
    memoryGb: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
  };
  return {
    ...fields,
    machine,
    finish: () => ({ ...fields, loadAverage: { start, end: loadAverage() } }),
  };
}
