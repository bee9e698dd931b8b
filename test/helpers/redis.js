// A redis-server of the tests' own on loopback, and `multilora worker` processes on it: shared by remote.spec.js and
// serve-remote.spec.js. Debian's redis-server, installed by scripts/setup-test-deps.sh (scripts/setup-redis.sh).
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT } = require('./fixtures');
const { startRedisServer } = require('./redis-server.cjs');

const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
/** Short, so that a killed worker's job is retried within seconds (the default is 30 s). */
const LOCK_MS = 3000;

/** Throws, saying how to install it, when redis-server is missing. */
function requireRedis() {
  try {
    execFileSync('redis-server', ['--version']);
  } catch {
    throw new Error(
      "redis-server is not installed: run bash scripts/setup-test-deps.sh (as root; it installs Debian's redis-server and chromium), then npm test",
    );
  }
}

/**
 * A redis-server of our own on loopback, with no persistence unless `appendonly`; stopped by `stop()`. `kill()` ends
 * it at once (SIGKILL) and `restart()` starts it again on the same port and files, as an operator's restart would.
 */
async function startRedis({ appendonly = false } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'multilora-redis-'));
  let { url, child } = await startRedisServer(dir, { appendonly });
  const port = Number(new URL(url).port);
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    kill,
    restart: async () => {
      await kill();
      ({ child } = await startRedisServer(dir, { port, appendonly }));
    },
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A `multilora worker` process; `log` collects its output, `waitFor(re)` waits for a line of it, `ready` for its start.
 * `env`: more environment variables for it.
 */
function startWorker(url, catalog, extra = [], env = undefined) {
  const adapters = catalog === null ? [] : ['--catalog', catalog]; // null: the adapters come as --lora in `extra`
  const child = spawn(
    process.execPath,
    [MAIN, 'worker', '--redis', url, ...adapters, '--lock-duration', String(LOCK_MS), '--threads', '1', ...extra],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: env ? { ...process.env, ...env } : process.env,
    },
  );
  const worker = {
    child,
    log: '',
    exited: new Promise((r) => child.on('exit', (code, signal) => r({ code, signal }))),
  };
  const waiters = [];
  const collect = (d) => {
    worker.log += d;
    for (const w of [...waiters]) if (w.re.test(worker.log)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  };
  child.stderr.on('data', collect);
  child.stdout.on('data', collect);
  worker.waitFor = (re) =>
    re.test(worker.log) ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, resolve }));
  worker.ready = worker.waitFor(/multilora worker \S+ ready/);
  return worker;
}

/** The ids of the jobs a worker started, in order. */
function jobsOf(worker) {
  return [...worker.log.matchAll(/job (\S+) started/g)].map((m) => m[1]);
}

module.exports = { MAIN, LOCK_MS, requireRedis, startRedis, startWorker, jobsOf };
