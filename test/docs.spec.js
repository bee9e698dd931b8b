// The API reference in docs/api is generated from the types (TypeDoc): it must match them.
'use strict';
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT } = require('./helpers/fixtures');

describe('docs/api', function () {
  it('is what TypeDoc makes of lib/ now (run `npm run docs` after changing the API)', function () {
    const out = mkdtempSync(path.join(os.tmpdir(), 'multilora-docs-'));
    try {
      execFileSync(
        process.execPath,
        [path.join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out, '--logLevel', 'Error'],
        { cwd: ROOT },
      );
      assert.equal(
        readFileSync(path.join(out, 'README.md'), 'utf8'),
        readFileSync(path.join(ROOT, 'docs', 'api', 'README.md'), 'utf8'),
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
