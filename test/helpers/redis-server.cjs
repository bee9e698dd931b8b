// A redis-server of our own on a free loopback port, with no persistence: for the scale-out tests
// (test/helpers/redis.js) and the scaling benchmark (scripts/bench-scaling.mjs). CommonJS, so that both can load it.
'use strict';
const { spawn } = require('node:child_process');
const net = require('node:net');

/** A port on loopback that nothing listens on (at the time of the call). */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts Debian's redis-server (scripts/setup-test-deps.sh installs it) with its files in `dir`; resolves once it accepts
 * connections, with its URL and its child process (the caller kills it). `port`: a given one (to start a killed
 * server again where its clients expect it); `appendonly`: persistence in an append-only file in `dir`, written at
 * every command (a restart finds every write that was answered).
 */
async function startRedisServer(dir, { port = undefined, appendonly = false } = {}) {
  port ??= await freePort();
  const persistence = appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Under `npm run sanitize` every child gets the ASan runtime preloaded; Redis is not ours to check (and its
      // jemalloc does not go with ASan's allocator).
      env: { ...process.env, LD_PRELOAD: '' },
    },
  );
  let out = '';
  await new Promise((resolve, reject) => {
    child.on('error', (err) =>
      reject(new Error(`redis-server does not start (${err.message}): run bash scripts/setup-test-deps.sh`)),
    );
    child.stdout.on('data', (d) => {
      out += d;
      if (/Ready to accept connections/.test(out)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return { url: `redis://127.0.0.1:${port}`, child };
}

module.exports = { freePort, startRedisServer };
