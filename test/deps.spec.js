// What an app that only calls Pipeline loads (docs/DEPENDENCIES.md): the server's and the scale-out's stacks load
// on first use, so that require('multilora') and a generate bring none of them into the process.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { ROOT } = require('./helpers/fixtures');

const CHILD = `
const m = require(${JSON.stringify(ROOT)});
const heavy = () => Object.keys(require.cache).filter((f) =>
  /[\\\\/]node_modules[\\\\/](fastify|bullmq|ioredis)[\\\\/]/.test(f) || /[\\\\/]dist[\\\\/](server[\\\\/]|remote[\\\\/]worker)/.test(f));
(async () => {
  const onRequire = heavy();
  const pipeline = await m.Pipeline.load(m.defaultModelDir());
  const image = await pipeline.generate('a lighthouse', { seed: 7, steps: 2, width: 64, height: 64 });
  await pipeline.dispose();
  const afterGenerate = heavy();
  // the control: the same check sees the stacks once they are loaded
  require(require.resolve('fastify', { paths: [${JSON.stringify(ROOT)}] }));
  console.log(JSON.stringify({ onRequire, afterGenerate, size: [image.width, image.height], control: heavy().length }));
})().catch((e) => { console.error(e); process.exit(3); });
`;

describe('dependencies an app that only calls Pipeline pays for', function () {
  it('loads none of fastify, bullmq, ioredis, the server or the worker to require multilora and generate', function () {
    const r = spawnSync(process.execPath, ['-e', CHILD], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.deepEqual(out.size, [64, 64]);
    assert.deepEqual(out.onRequire, [], 'loaded by require(multilora)');
    assert.deepEqual(out.afterGenerate, [], 'loaded by a Pipeline generate');
    assert.ok(out.control > 0, 'the check does not see fastify once it is loaded');
  });
});
