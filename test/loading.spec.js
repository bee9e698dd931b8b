// How the addon is found and loaded: by node-gyp-build, its libraries by RPATH, with no LD_LIBRARY_PATH.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync, execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, families } = require('./helpers/fixtures');

/** Runs `code` in a fresh node, with the given environment only. */
function node(code, env) {
  return spawnSync(process.execPath, ['-e', code], { cwd: ROOT, env, encoding: 'utf8' });
}

const GENERATE = `
const { Pipeline } = require(${JSON.stringify(ROOT)});
(async () => {
  const p = await Pipeline.load(${JSON.stringify(families.sd15.model)});
  const img = await p.generate('x', { seed: 5, steps: 2 });
  await p.dispose();
  console.log(JSON.stringify({ width: img.width, height: img.height, bytes: img.data.length }));
})().catch((e) => { console.error(e.code, e.message); process.exit(3); });
`;

describe('loading the addon', function () {
  it('generates in a process with no LD_LIBRARY_PATH and no tokenizers variable', function () {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const r = node(GENERATE, env);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()), { width: 64, height: 64, bytes: 64 * 64 * 3 });
  });

  it('records an RPATH (not RUNPATH) to the SDK libraries in the binary', function () {
    const out = execFileSync('readelf', ['-d', path.join(ROOT, 'build', 'Release', 'multilora.node')], {
      encoding: 'utf8',
    });
    assert.match(out, /\(RPATH\).*openvino_genai/);
    assert.doesNotMatch(out, /\(RUNPATH\)/);
  });

  it('says what to do when the SDK is not where it should be', function () {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'multilora-nosdk-'));
    try {
      const r = node(GENERATE, { PATH: process.env.PATH, MULTILORA_SDK_DIR: empty });
      assert.equal(r.status, 3);
      assert.match(r.stderr, /^ERR_NATIVE_LOAD .*tokenizers library was not found.*npm install/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
