// Numbers anyone can reproduce: the benchmark docs' generated parts agree with the results files in bench-results/
// (regenerated in memory by `npm run bench:docs -- --check`), and the docs carry no measured figure of their own
// outside those parts. No benchmark runs here.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./helpers/fixtures');

const DOCS = ['README.md', 'docs/BENCHMARKS.md', 'docs/LIFECYCLE.md', 'docs/SCALING.md', 'docs/LORA-FORMATS.md'];

/** The lines of a doc outside its generated blocks (`<!-- x:y:begin -->` … `<!-- x:y:end -->`) and code fences. */
function prose(doc) {
  const out = [];
  let generated = false;
  let fence = false;
  readFileSync(path.join(ROOT, doc), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (/<!-- [\w-]+:[\w-]+:begin -->/.test(line)) generated = true;
      else if (/<!-- [\w-]+:[\w-]+:end -->/.test(line)) generated = false;
      else if (line.startsWith('```')) fence = !fence;
      else if (!generated && !fence) out.push({ line: i + 1, text: line });
    });
  return out;
}

// Figures the docs once quoted with no results file behind them (issue 16 §4): from runs of which nothing was
// written down, or credited to scripts/measure-threads.mjs, which measures something else. They must not come back.
const UNBACKED = [
  /\b0\.97, 1\.06, 1\.04\b/,
  /\b1\.006\b/,
  /\b44\.0 against 43\.3\b/,
  /\b55\.6 \(Node\), 54\.8 \(Python\), 52\.4\b/,
  /×1\.38|×1\.43/,
  /1,025 against\s+992|839 against 646/,
  /\b1 steps\b/,
  /1\.69 s → 0\.82 s|85\.7 s|0\.75\/255|0\.5 ms at 512|59\.8 MB|174\.7 MB|0\.3 to 2\.2 GB/,
];

// What a measured figure looks like: a multiplier (×1.04, not 512×512), a percentage, a decimal with a unit of
// time or size; in the benchmark pages also a bare ratio with two or more decimals (0.990, not a version such as
// 7.0.15). Targets and bounds (≤ 1.01, < 5%) are thresholds, not measurements.
const MEASURED = /(?<![\d≤<≥>] ?)(?:(?<!\d)×\d|\d+(?:\.\d+)?\s?%|\d+\.\d+\s?(?:ms|s|GB|MB)\b)/;
const RATIO = /(?<![\d.≤<≥>] ?)\b\d+\.\d{2,}\b(?!\.\d)/;

describe('benchmark docs and their results', function () {
  it('the generated parts of the docs are what bench-results/ makes of them (npm run bench:docs -- --check)', function () {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'bench-docs.mjs'), '--check'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, `${run.stderr}${run.stdout}`);
    assert.match(run.stdout, /docs\/BENCHMARKS\.md: agrees with bench-results\/bench\.json/);
  });

  it('none of the figures known to have no results file is quoted in README, BENCHMARKS, LIFECYCLE or SCALING', function () {
    const found = [];
    for (const doc of DOCS)
      for (const { line, text } of prose(doc))
        for (const re of UNBACKED) if (re.test(text)) found.push(`${doc}:${line}: ${text.trim()}`);
    assert.deepEqual(found, []);
  });

  for (const doc of DOCS) {
    it(`${doc} quotes no measured figure outside its generated blocks`, function () {
      const ratios = doc === 'docs/BENCHMARKS.md' || doc === 'docs/SCALING.md';
      const found = prose(doc)
        .filter(({ text }) => MEASURED.test(text) || (ratios && RATIO.test(text)))
        .map(({ line, text }) => `${doc}:${line}: ${text.trim()}`);
      assert.deepEqual(found, []);
    });
  }
});
