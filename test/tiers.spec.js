// The test tiers: `npm run test:unit` (no addon, no services, seconds), `test:native` (the tiny fixtures through the
// addon) and `test:system` (redis-server, Chromium, the converter's venv, the load and fuzz runs), each a mocha config
// that names its spec files. `npm test` runs .mocharc.json, which finds every spec file by its glob: a new spec runs
// there from the start, and this spec fails until it is put in exactly one tier.
'use strict';
const assert = require('node:assert/strict');
const { readdirSync, readFileSync, existsSync } = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./helpers/fixtures');

const TIERS = ['unit', 'native', 'system'];

const readJson = (file) => JSON.parse(readFileSync(path.join(ROOT, file), 'utf8'));

/** The spec files under test/ (what .mocharc.json's `test/**\/*.spec.js` finds), as `test/...` paths. */
function specFiles(dir = 'test') {
  const found = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const file = `${dir}/${entry.name}`;
    if (entry.isDirectory()) found.push(...specFiles(file));
    else if (entry.name.endsWith('.spec.js')) found.push(file);
  }
  return found.sort();
}

describe('test tiers', function () {
  const all = readJson('.mocharc.json');
  const tiers = Object.fromEntries(TIERS.map((tier) => [tier, readJson(`.mocharc.${tier}.json`)]));

  it('puts every spec file under test/ in exactly one tier, and names only files that exist', function () {
    assert.deepEqual(all.spec, ['test/**/*.spec.js'], 'npm test must find every spec file');
    const tierOf = new Map();
    for (const [tier, config] of Object.entries(tiers)) {
      for (const file of config.spec) {
        assert.ok(existsSync(path.join(ROOT, file)), `.mocharc.${tier}.json names ${file}, which does not exist`);
        assert.ok(!tierOf.has(file), `${file} is in two tiers: ${tierOf.get(file)} and ${tier}`);
        tierOf.set(file, tier);
      }
    }
    const missing = specFiles().filter((file) => !tierOf.has(file));
    assert.deepEqual(
      missing,
      [],
      `spec files in no tier: add each to the spec list of .mocharc.unit.json, .mocharc.native.json or .mocharc.system.json`,
    );
    assert.deepEqual([...tierOf.keys()].sort(), specFiles());
  });

  it("runs each tier with npm test's mocha options, by npm run test:<tier>; npm test runs them all at once", function () {
    const { scripts } = readJson('package.json');
    assert.equal(scripts.test, 'mocha');
    assert.equal(scripts.pretest, undefined, 'npm test installs nothing: bash scripts/setup-test-deps.sh does');
    const { spec: _spec, ...options } = all;
    for (const [tier, config] of Object.entries(tiers)) {
      assert.equal(scripts[`test:${tier}`], `mocha --config .mocharc.${tier}.json`);
      const { spec: files, require: hooks, ...own } = config;
      assert.deepEqual(own, options, `.mocharc.${tier}.json`);
      assert.deepEqual(hooks, tier === 'unit' ? ['test/helpers/unit-tier.js'] : undefined, `.mocharc.${tier}.json`);
      assert.ok(
        files.every((file) => !/[*?{[]/.test(file)),
        `.mocharc.${tier}.json names its files one by one`,
      );
    }
  });
});
