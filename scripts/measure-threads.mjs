// How long libuv-pool work (fs.readFile, crypto.pbkdf2, dns.lookup) waits in the main thread while N pipelines
// generate at once: with generation on the 4-thread pool, it waits for a generation to end; on dedicated threads it
// does not. Usage: node scripts/measure-threads.mjs [pipelines=4] [steps=30] [size=256]
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import dns from 'node:dns';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { Pipeline } = require('../dist/index.js');
const { families } = require('../test/helpers/fixtures.js');

const [pipelines = 4, steps = 30, size = 256] = process.argv.slice(2).map(Number);
const file = path.join(families.sd15.model, 'model_index.json');

const timed = (start) =>
  new Promise((resolve, reject) => {
    const t0 = performance.now();
    start((err) => (err ? reject(err) : resolve(performance.now() - t0)));
  });
const probes = {
  'fs.readFile': (done) => fs.readFile(file, done),
  'crypto.pbkdf2': (done) => crypto.pbkdf2('secret', 'salt', 1000, 32, 'sha256', done),
  "dns.lookup('localhost')": (done) => dns.lookup('localhost', done),
};

async function probeAll() {
  const out = {};
  for (const [name, start] of Object.entries(probes)) out[name] = await timed(start);
  return out;
}

const loaded = await Promise.all(Array.from({ length: pipelines }, () => Pipeline.load(families.sd15.model)));
const idle = await probeAll();
const t0 = performance.now();
const ends = [];
const runs = loaded.map((p, i) =>
  p
    .generate('a lighthouse', { seed: i, width: size, height: size, steps })
    .then(() => ends.push(performance.now() - t0)),
);
await new Promise((r) => setTimeout(r, 300)); // every generation is inside GenAI by now
const probeStart = performance.now() - t0;
const busy = await probeAll();
await Promise.all(runs);
console.log(
  `libuv pool size: ${process.env.UV_THREADPOOL_SIZE ?? 4}; ${pipelines} pipelines, ${size}x${size}, ${steps} steps`,
);
console.log(
  `generations ended at ${ends.map((ms) => ms.toFixed(0)).join(', ')} ms; probes started at ${probeStart.toFixed(0)} ms`,
);
for (const name of Object.keys(probes)) {
  console.log(
    `${name.padEnd(26)} idle ${idle[name].toFixed(1).padStart(8)} ms   while generating ${busy[name].toFixed(1).padStart(8)} ms`,
  );
}
await Promise.all(loaded.map((p) => p.dispose()));
