// Generations run on threads of their own, not on libuv's pool: with as many pipelines generating as the pool has
// threads (4 unless UV_THREADPOOL_SIZE says otherwise), fs, crypto and dns calls still complete at once. On the pool,
// each would wait for a generation to end.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const dns = require('node:dns');
const fs = require('node:fs');
const path = require('node:path');
const { Pipeline } = require('..');
const { families } = require('./helpers/fixtures');

const POOL = Number(process.env.UV_THREADPOOL_SIZE) || 4;

describe('threads', function () {
  this.timeout(300_000);
  const pipelines = [];
  before(async function () {
    for (let i = 0; i < POOL; i += 1) pipelines.push(await Pipeline.load(families.sd15.model));
  });
  after(async function () {
    await Promise.all(pipelines.map((p) => p.dispose()));
  });

  it(`fs, crypto and dns calls complete while ${POOL} pipelines generate (as many as libuv's pool has threads)`, async function () {
    const controller = new AbortController();
    const settled = [];
    const stepping = [];
    const runs = pipelines.map((pipeline, i) => {
      let first;
      stepping.push(new Promise((resolve) => (first = resolve)));
      // Hundreds of steps: minutes, unless aborted. Each reports its first step once it is inside GenAI.
      return pipeline
        .generate('a harbour', {
          seed: i,
          width: 64,
          height: 64,
          steps: 400,
          signal: controller.signal,
          onProgress: () => first(),
        })
        .then(
          () => 'resolved',
          (err) => err.code,
        )
        .finally(() => settled.push(i));
    });
    try {
      await Promise.all(stepping); // every generation is running
      const started = performance.now();
      const probes = Promise.all([
        fs.promises.readFile(path.join(families.sd15.model, 'model_index.json'), 'utf8'),
        new Promise((resolve, reject) =>
          crypto.pbkdf2('secret', 'salt', 1000, 32, 'sha256', (err, k) => (err ? reject(err) : resolve(k))),
        ),
        dns.promises.lookup('localhost'),
      ]);
      probes.catch(() => undefined); // awaited through the race below
      let timer;
      const late = new Promise((resolve) => (timer = setTimeout(resolve, 30_000, 'late')));
      const outcome = await Promise.race([probes, late]);
      clearTimeout(timer);
      assert.notEqual(outcome, 'late', 'fs, crypto and dns calls waited more than 30 s while the generations ran');
      const [read, key, address] = outcome;
      const ms = performance.now() - started;
      assert.deepEqual(settled, [], 'a generation ended before the fs, crypto and dns calls did');
      assert.match(JSON.parse(read)._class_name, /StableDiffusion/);
      assert.equal(key.length, 32);
      assert.ok(address.address);
      console.log(`      fs.readFile, crypto.pbkdf2 and dns.lookup: ${ms.toFixed(1)} ms while ${POOL} generations ran`);
    } finally {
      controller.abort();
    }
    assert.deepEqual(await Promise.all(runs), Array(POOL).fill('ERR_ABORTED'));
  });
});
