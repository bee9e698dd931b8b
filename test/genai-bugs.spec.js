// docs/GENAI-BUGS.md and the code that works around GenAI's bugs point at each other: every `GENAI-BUGS.md#anchor`
// in lib/ and native/ must name a section of the page, and every section must be named by some code, so that a GenAI
// upgrade finds each workaround from the page, and each workaround's story from the code.
'use strict';
const assert = require('node:assert/strict');
const { readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const SOURCE = /\.(?:ts|cc|h)$/;

/** The source files under `dir` (a path from the root), as root-relative paths. */
function sources(dir) {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const file = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sources(file);
    return SOURCE.test(entry.name) ? [file] : [];
  });
}

/** The anchors of the page's sections: `<a id="..."></a>` before each heading. */
function sections() {
  const page = readFileSync(path.join(ROOT, 'docs', 'GENAI-BUGS.md'), 'utf8');
  const ids = [...page.matchAll(/^<a id="([a-z0-9-]+)"><\/a>\n\n## /gm)].map((m) => m[1]);
  const headings = page.match(/^## /gm) ?? [];
  assert.equal(
    ids.length,
    headings.length,
    'every section of docs/GENAI-BUGS.md has an anchor line (<a id="..."></a>) right before its heading',
  );
  return ids;
}

/** Each `GENAI-BUGS.md#anchor` in lib/ and native/, with where it stands. */
function pointers() {
  return ['lib', 'native'].flatMap(sources).flatMap((file) =>
    readFileSync(path.join(ROOT, file), 'utf8')
      .split('\n')
      .flatMap((line, i) =>
        [...line.matchAll(/GENAI-BUGS\.md#([A-Za-z0-9_-]*)/g)].map((m) => ({ anchor: m[1], at: `${file}:${i + 1}` })),
      ),
  );
}

describe('docs/GENAI-BUGS.md and the code', function () {
  it('every GENAI-BUGS.md#anchor in lib/ and native/ names a section of the page', function () {
    const known = new Set(sections());
    const found = pointers();
    assert.ok(found.length > 0, 'no pointer found: the search is broken');
    assert.deepEqual(
      found.filter((p) => !known.has(p.anchor)).map((p) => `${p.at}: #${p.anchor}`),
      [],
      `known anchors: ${[...known].join(', ')}`,
    );
  });

  it('every section of the page is named by code in lib/ or native/', function () {
    const named = new Set(pointers().map((p) => p.anchor));
    assert.deepEqual(
      sections().filter((id) => !named.has(id)),
      [],
    );
  });
});
