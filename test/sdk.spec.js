// scripts/setup-sdk.mjs: what `npm install` runs to make the project-local OpenVINO GenAI SDK.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync, execFileSync } = require('node:child_process');
const { existsSync, unlinkSync, readFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, sdk, useTempDir } = require('./helpers/fixtures');

const SETUP = path.join(ROOT, 'scripts', 'setup-sdk.mjs');

function setup(env) {
  return spawnSync(process.execPath, [SETUP], { encoding: 'utf8', env, timeout: 600_000 });
}

function stderrLines(r) {
  return r.stderr.split('\n').filter((line) => line.trim());
}

describe('SDK set-up (scripts/setup-sdk.mjs)', function () {
  const tmpDir = useTempDir('multilora-sdk-', { each: true });

  it('records every path the build and the runtime need, inside the SDK folder', function () {
    const info = sdk();
    for (const key of [
      'python',
      'openvinoInclude',
      'openvinoCmakeDir',
      'openvinoLib',
      'tbbLib',
      'genaiLib',
      'tokenizersLib',
    ]) {
      assert.ok(existsSync(info[key]), `${key}: ${info[key]} is missing`);
      assert.ok(info[key].startsWith(info.dir + path.sep), `${key} lies outside the SDK folder`);
    }
    const versions = execFileSync(
      info.python,
      [
        '-c',
        'import importlib.metadata as m; print(m.version("openvino"), m.version("openvino-genai"), m.version("openvino-tokenizers"))',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(versions.trim(), '2026.3.0 2026.3.0.0 2026.3.0.0');
  });

  it('reuses a complete folder without calling pip', function () {
    const r = setup({ ...process.env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /SDK ready in/);
    assert.doesNotMatch(r.stdout, /setting up|repairing/);
  });

  it('repairs an incomplete folder (a library deleted from an installed wheel)', function () {
    const copy = path.join(tmpDir(), 'sdk');
    execFileSync('cp', ['-a', sdk().dir, copy]);
    const genaiLib = path.join(copy, path.relative(sdk().dir, sdk().genaiLib));
    unlinkSync(genaiLib);
    const r = setup({ ...process.env, MULTILORA_SDK_DIR: copy });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /repairing openvino-genai==2026\.3\.0\.0/);
    assert.ok(existsSync(genaiLib), 'the deleted library is still missing');
    const written = JSON.parse(readFileSync(path.join(copy, 'sdk.json'), 'utf8'));
    assert.equal(written.dir, copy);
    assert.equal(written.genaiLib, genaiLib);
  });

  it('says in one line what to do when python3 is missing', function () {
    const r = setup({ PATH: path.join(tmpDir(), 'empty-bin'), MULTILORA_SDK_DIR: path.join(tmpDir(), 'sdk') });
    assert.equal(r.status, 1);
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^multilora: python3 \(3\.10 or newer\) was not found: install it .*MULTILORA_PYTHON/);
  });

  it('says in one line what to do when the package registry cannot be reached', function () {
    const r = setup({
      PATH: process.env.PATH,
      HOME: tmpDir(),
      MULTILORA_SDK_DIR: path.join(tmpDir(), 'sdk'),
      PIP_CONFIG_FILE: os.devNull,
      PIP_INDEX_URL: 'http://127.0.0.1:9/simple',
      PIP_NO_CACHE_DIR: '1',
      PIP_RETRIES: '0',
      PIP_TIMEOUT: '2',
    });
    assert.equal(r.status, 1);
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0],
      /^multilora: pip could not fetch openvino==2026\.3\.0.* from the package registry .*MULTILORA_SDK_DIR/,
    );
  });
});
