// Which addon file is loaded: node-gyp-build's choice, or the one MULTILORA_ADDON_PATH names (scripts/sanitize.mjs
// runs the specs against its ASan/UBSan build that way). Each case runs in a fresh node, and reads which
// multilora.node that process mapped.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { copyFileSync, existsSync } = require('node:fs');
const path = require('node:path');
const { ROOT, useTempDir } = require('./helpers/fixtures');

const BUILT = path.join(ROOT, 'build', 'Release', 'multilora.node');

const PROBE = `
const { readFileSync } = require('node:fs');
try {
  const release = require(${JSON.stringify(path.join(ROOT, 'dist', 'internal.js'))}).binding.native().genaiRelease;
  const mapped = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n')
    .map((l) => l.split(/\\s+/)[5]).filter((f) => f && f.endsWith('.node')))];
  console.log(JSON.stringify({ release, mapped }));
} catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
`;

function probe(addonPath) {
  const env = { ...process.env };
  delete env.MULTILORA_ADDON_PATH;
  if (addonPath !== undefined) env.MULTILORA_ADDON_PATH = addonPath;
  const r = spawnSync(process.execPath, ['-e', PROBE], { cwd: ROOT, env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

describe('the addon file', function () {
  const dir = useTempDir('multilora-addon-path-');

  it('is build/Release/multilora.node in a checkout, without MULTILORA_ADDON_PATH', function () {
    const r = probe(undefined);
    assert.match(r.release, /^2026\.3/);
    assert.deepEqual(r.mapped, [BUILT]);
  });

  it('is the file MULTILORA_ADDON_PATH names, when set', function () {
    const copy = path.join(dir(), 'other.node');
    copyFileSync(BUILT, copy);
    const r = probe(copy);
    assert.match(r.release, /^2026\.3/);
    assert.deepEqual(r.mapped, [copy]);
  });

  it('ERR_NATIVE_LOAD naming the variable when that file does not load', function () {
    const missing = path.join(dir(), 'missing.node');
    assert.equal(existsSync(missing), false);
    const r = probe(missing);
    assert.equal(r.code, 'ERR_NATIVE_LOAD');
    assert.ok(r.message.includes(`MULTILORA_ADDON_PATH names an addon that does not load (${missing})`), r.message);
  });
});
