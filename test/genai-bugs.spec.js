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

// listFor (lib/core/genai-quirks.ts): the adapters a call lists to GenAI, beside the chosen ones, so that no layer a
// registered adapter patches is left with no listed adapter (docs/GENAI-BUGS.md#switching).
describe('the adapters a call lists (listFor)', function () {
  const { listFor } = require('../dist/core/genai-quirks');
  const adapter = (rank, ...layers) => ({ layers: new Set(layers), report: { ranks: [rank] } });
  // The tutorial's case: five adapters on the same layers, ranks 16, 8, 24, 12, 28.
  const same = [16, 8, 24, 12, 28].map((r) => adapter(r, 'unet:q', 'unet:k', 'text_encoder:fc1'));

  it('lists only the chosen adapter when it patches every layer the others do', function () {
    assert.deepEqual(listFor(same, [[2, 0.8]]), [[2, 0.8]]);
    assert.deepEqual(
      listFor(same, [
        [4, 0.5],
        [0, 0.7],
      ]),
      [
        [0, 0.7],
        [4, 0.5],
      ],
    );
  });

  it('lists the cheapest adapter at 0 for a call without LoRA', function () {
    assert.deepEqual(listFor(same, []), [[1, 0]]);
  });

  it('adds, at 0, adapters for the layers the chosen ones leave out, fewest first', function () {
    const mixed = [
      adapter(4, 'unet:q'),
      adapter(32, 'unet:q', 'unet:k', 'text_encoder:fc1'),
      adapter(8, 'text_encoder:fc1'),
      adapter(16, 'unet:k'),
    ];
    // a covers unet:q; text_encoder:fc1 and unet:k are left: c (rank 8) covers fc1, then d (16) covers k
    assert.deepEqual(listFor(mixed, [[0, 1]]), [
      [0, 1],
      [2, 0],
      [3, 0],
    ]);
    // none chosen: the cheapest first, until every layer has one
    assert.deepEqual(listFor(mixed, []), [
      [0, 0],
      [2, 0],
      [3, 0],
    ]);
    assert.deepEqual(listFor(mixed, [[1, 0.5]]), [[1, 0.5]]);
  });

  it('lists nothing on a pipeline without adapters', function () {
    assert.deepEqual(listFor([], []), []);
  });
});
