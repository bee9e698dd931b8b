#!/usr/bin/env node
// `npm run bench:docs`: writes the generated parts of the benchmark docs from the results files in bench-results/,
// the same way the benchmarks write them after a run; `-- --check` writes nothing and fails (exit 1) when a doc
// differs from what its results file makes (test/bench-docs.spec.js runs it). Never edit those parts by hand.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RESULTS, renderBenchDoc, renderScalingDoc } from './bench/doc.mjs';
import { SCRIPTS, scriptsHash } from './bench/provenance.mjs';
import { ROOT } from './sdk-config.mjs';
import { FUSE_LOAD_RESULTS, renderFuseLoadDoc } from './bench/fuse-load.mjs';
import { LORA_RANK_RESULTS, renderLoraRankDoc } from './bench/lora-rank.mjs';
import { TUTORIAL_RESULTS, TUTORIAL_SCRIPTS, renderTutorialDoc } from './tutorial/doc.mjs';

const { values: args } = parseArgs({ options: { check: { type: 'boolean', default: false } } });

const json = (file) =>
  existsSync(path.join(ROOT, file)) ? JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) : undefined;

/** Each doc with generated parts: its results files and the function that renders them. */
const DOCS = [
  {
    doc: 'docs/BENCHMARKS.md',
    results: Object.values(RESULTS).join(' and '),
    render: (text, name) => renderBenchDoc(text, { full: json(RESULTS.full), quick: json(RESULTS.quick) }, name),
  },
  {
    doc: 'docs/BENCHMARKS.md',
    results: TUTORIAL_RESULTS,
    render: (text, name) => renderTutorialDoc(text, json(TUTORIAL_RESULTS), name),
  },
  {
    doc: 'docs/SCALING.md',
    results: 'bench-results/scaling.json',
    render: (text, name) => renderScalingDoc(text, json('bench-results/scaling.json'), name),
  },
  {
    doc: 'docs/LORA-FORMATS.md',
    results: LORA_RANK_RESULTS,
    render: (text, name) => renderLoraRankDoc(text, json(LORA_RANK_RESULTS), name),
  },
  {
    doc: 'docs/LORA-FORMATS.md',
    results: FUSE_LOAD_RESULTS,
    render: (text, name) => renderFuseLoadDoc(text, json(FUSE_LOAD_RESULTS), name),
  },
];

// A results file made by other scripts than the checkout's is still what the doc must show, but it is worth saying:
// the next run of its command will change the numbers' meaning or their layout.
for (const [file, name] of [
  [RESULTS.full, 'bench'],
  [RESULTS.quick, 'bench'],
  ['bench-results/scaling.json', 'scaling'],
  [TUTORIAL_RESULTS, TUTORIAL_SCRIPTS],
  [LORA_RANK_RESULTS, 'loraRank'],
  [FUSE_LOAD_RESULTS, 'fuseLoad'],
]) {
  const r = json(file);
  if (!r) continue;
  const now = scriptsHash(Array.isArray(name) ? name : SCRIPTS[name]);
  if (r.scriptsHash !== now)
    console.log(
      `${file}: made by ${r.scriptsHash ? `scripts ${r.scriptsHash}` : 'scripts that predate scriptsHash'}, the checkout's are ${now}: rerun its command to refresh it`,
    );
}

let stale = 0;
for (const { doc, results, render } of DOCS) {
  const text = readFileSync(path.join(ROOT, doc), 'utf8');
  const made = render(text, doc);
  if (made === text) {
    console.log(`${doc}: agrees with ${results}`);
    continue;
  }
  if (!args.check) {
    writeFileSync(path.join(ROOT, doc), made);
    console.log(`${doc}: written from ${results}`);
    continue;
  }
  stale += 1;
  const have = text.split('\n');
  const want = made.split('\n');
  const line = want.findIndex((l, i) => l !== have[i]);
  console.error(
    `${doc} differs from what ${results} makes, from line ${line + 1}:\n  doc:     ${have[line]}\n  results: ${want[line]}\nrun \`npm run bench:docs\` (or the benchmark) to write it`,
  );
}
process.exit(stale ? 1 : 0);
