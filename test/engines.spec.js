// package.json promises a range of Node.js versions (`engines.node`); every installed package must support all of
// it, or `npm install` warns EBADENGINE and the promise is not true. The override in package.json that keeps
// fastify's light-my-request on cookie 1 is what holds this today (README.md, "Quick start").
'use strict';
const assert = require('node:assert/strict');
const { existsSync, readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');
const semver = require('semver');
const { ROOT } = require('./helpers/fixtures');

/** Every package folder under `dir`/node_modules, nested ones and scoped ones included. */
function installedPackages(dir, found = []) {
  const modules = path.join(dir, 'node_modules');
  if (!existsSync(modules)) return found;
  for (const entry of readdirSync(modules, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || !entry.isDirectory()) continue;
    const folders = entry.name.startsWith('@')
      ? readdirSync(path.join(modules, entry.name)).map((name) => path.join(modules, entry.name, name))
      : [path.join(modules, entry.name)];
    for (const folder of folders) {
      if (!existsSync(path.join(folder, 'package.json'))) continue;
      found.push(folder);
      installedPackages(folder, found);
    }
  }
  return found;
}

describe('engines: the Node.js versions package.json promises', function () {
  const claimed = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).engines.node;

  it('is a valid range, and this Node.js is in it', function () {
    assert.ok(semver.validRange(claimed), `engines.node is ${claimed}`);
    assert.ok(semver.satisfies(process.version, claimed), `${process.version} is not in ${claimed}`);
  });

  it('is supported by every installed package (npm install would warn EBADENGINE otherwise)', function () {
    const packages = installedPackages(ROOT);
    assert.ok(packages.length > 100, `only ${packages.length} packages under node_modules`);
    const excluding = [];
    for (const folder of packages) {
      const { name, version, engines } = JSON.parse(readFileSync(path.join(folder, 'package.json'), 'utf8'));
      const wants = engines?.node;
      if (typeof wants !== 'string' || !semver.validRange(wants)) continue;
      if (!semver.subset(claimed, wants)) excluding.push(`${name}@${version} wants node ${wants}`);
    }
    assert.deepEqual(excluding, [], `package.json promises node ${claimed}`);
  });
});
