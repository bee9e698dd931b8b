// The layout that CONTRIBUTING.md describes, kept by a test: lib/ in rooms (a newcomer finds where a thing lives from
// the folder names), and tests that import nothing from scripts/ (shared helpers live in test/helpers/, and a script
// that a test also drives imports them from there).
'use strict';
const assert = require('node:assert/strict');
const { readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./helpers/fixtures');

const ROOMS = ['cli', 'convert', 'core', 'lora', 'remote', 'server'];
/** The entries at lib/'s top: the public one, the internal one, and the lazy doors to the server and the worker. */
const TOP = ['index.ts', 'internal.ts', 'remote.ts', 'serve.ts'];

function files(dir) {
  const found = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const file = `${dir}/${entry.name}`;
    if (entry.isDirectory()) found.push(...files(file));
    else if (/\.(c|m)?js$/.test(entry.name)) found.push(file);
  }
  return found;
}

/** The module specifiers a JS file requires or imports, static or dynamic. */
function specifiers(source) {
  const re = /(?:require\s*\(|import\s*\(|\bfrom\s+)\s*(['"`])([^'"`]+)\1/g;
  return [...source.matchAll(re)].map((m) => m[2]);
}

describe('layout', function () {
  it('keeps lib/ in its rooms, with only the entries at the top', function () {
    const entries = readdirSync(path.join(ROOT, 'lib'), { withFileTypes: true });
    const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name);
    const top = entries.filter((e) => !e.isDirectory()).map((e) => e.name);
    assert.deepEqual(dirs.sort(), ROOMS);
    assert.deepEqual(top.sort(), TOP);
  });

  it('has tests that import nothing from scripts/', function () {
    const offenders = [];
    for (const file of files('test')) {
      const dir = path.dirname(path.join(ROOT, file));
      for (const spec of specifiers(readFileSync(path.join(ROOT, file), 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(ROOT, path.resolve(dir, spec));
        if (target.split(path.sep)[0] === 'scripts') offenders.push(`${file}: ${spec}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('finds the imports it looks for (the check above sees a relative import into scripts/)', function () {
    const dir = 'scripts'; // built, so that this file's own source holds no such import
    const source = `const a = require('../${dir}/x.cjs'); await import('../${dir}/y.mjs'); import z from '../../${dir}/z.mjs';`;
    assert.deepEqual(specifiers(source), [`../${dir}/x.cjs`, `../${dir}/y.mjs`, `../../${dir}/z.mjs`]);
  });
});
