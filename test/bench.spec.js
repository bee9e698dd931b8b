// The benchmark's three runners (scripts/bench.mjs): built and driven over their line protocol, they make the same
// images from the same calls, so that their times compare like with like. No timing is asserted here.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { createInterface } = require('node:readline');
const { ROOT, families, sdk } = require('./helpers/fixtures');

const DRIVER = path.join(ROOT, 'build', 'bench', 'bench', 'multilora-bench-driver');

function start(file, args) {
  const child = spawn(file, args, {
    env: { ...process.env, OPENVINO_TOKENIZERS_PATH_GENAI: sdk().tokenizersLib },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const waiting = [];
  const lines = [];
  createInterface({ input: child.stdout }).on('line', (line) =>
    waiting.length ? waiting.shift()(line) : lines.push(line),
  );
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((resolve) => waiting.push(resolve)));
  return {
    next,
    async send(...fields) {
      child.stdin.write(`${fields.join('\t')}\n`);
      return (await next()).split('\t');
    },
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.stdin.end('quit\n');
      }),
  };
}

describe('bench runners', function () {
  const fx = families.sdxl;
  const runners = {};
  before(async function () {
    const { buildNative } = await import(path.join(ROOT, 'scripts', 'build-native.mjs'));
    buildNative(['--CDMULTILORA_BENCH_DRIVER=ON', '--target', 'multilora-bench-driver'], {
      outDir: path.join(ROOT, 'build', 'bench'),
    });
    runners.node = start(process.execPath, [path.join(ROOT, 'scripts', 'bench', 'node-runner.mjs')]);
    runners.python = start(sdk().python, [path.join(ROOT, 'scripts', 'bench', 'python_runner.py')]);
    runners.cpp = start(DRIVER, []);
    for (const [name, r] of Object.entries(runners)) {
      assert.deepEqual((await r.next()).split('\t'), ['ready', name]);
      const [status] = await r.send('load', fx.model, 'CPU', '-', '-', `${fx.lora('style-a')}|${fx.lora('style-b')}`);
      assert.equal(status, 'ok');
    }
  });
  after(async function () {
    await Promise.all(Object.values(runners).map((r) => r.stop()));
  });

  it('make the same images, every byte (md5), from the same calls, switching between them', async function () {
    for (const alphas of ['0,0', '0.8,0', '0.5,0.7', '0,0', '0.8,0']) {
      const replies = {};
      for (const [name, r] of Object.entries(runners)) {
        const [status, ms, ...extra] = await r.send('gen', 42, 64, 64, 2, 5, alphas, 'a lighthouse');
        assert.equal(status, 'ok', `${name}: ${ms}`);
        assert.ok(Number(ms) > 0);
        replies[name] = extra.find((kv) => kv.startsWith('md5='));
        assert.match(replies[name], /^md5=[0-9a-f]{32}$/, name);
      }
      // The md5 of every byte of each runner's image: the same images, whole.
      assert.equal(new Set(Object.values(replies)).size, 1, `${alphas}: ${JSON.stringify(replies)}`);
    }
  });

  it('the Node runner shows zero-copy output: borrowed Buffers at GenAI tensor, copies elsewhere, same bytes', async function () {
    const [status, , ...extra] = await runners.node.send('zerocopy', 42, 64, 64, 2, 5, '0.8,0', 'a lighthouse', 2);
    assert.equal(status, 'ok');
    const got = Object.fromEntries(extra.map((kv) => kv.split('=')));
    assert.deepEqual([got.borrowedAtGenai, got.copiesElsewhere, got.sameBytes], ['2', '2', '2']);
  });

  it('answers a bad command with one err line and goes on', async function () {
    for (const r of Object.values(runners)) {
      const [status] = await r.send('gen', 42, 64, 64, 2, 5, '0,0'); // a field short
      assert.equal(status, 'err');
      const [again] = await r.send('gen', 42, 64, 64, 1, 5, '0,0', 'a lighthouse');
      assert.equal(again, 'ok');
    }
  });
});
