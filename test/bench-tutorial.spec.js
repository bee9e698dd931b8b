// The tutorial benchmark (scripts/bench-tutorial.mjs) at a small size: its recipe runner (the SDK's Python, as the
// tutorial writes it) and multilora's runner make the same bytes in exact mode, and its results file has the fields
// the docs are generated from. No timing is asserted here: the numbers come from `npm run bench:tutorial`.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { mkdtempSync, readFileSync, readdirSync, rmSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT } = require('./helpers/fixtures');

const md5 = (buf) => createHash('md5').update(buf).digest('hex');
/** Issue 16's bound for fast mode: mean absolute difference to the recipe's image, in 0–255 units. */
const FAST_BOUND = 2;

function meanAbsDiff(a, b) {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

describe('bench:tutorial at a small size', function () {
  let dir;
  let results;
  const images = (side) => {
    const folder = path.join(dir, 'images', '64', '0', side);
    const files = readdirSync(folder).filter((f) => f.endsWith('.rgb'));
    return files
      .map((f) => Number(f.split('.')[0]))
      .sort((a, b) => a - b)
      .map((i) => readFileSync(path.join(folder, `${i}.rgb`)));
  };

  before(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'multilora-bench-tutorial-'));
    const out = path.join(dir, 'tutorial.json');
    const run = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'scripts', 'bench-tutorial.mjs'),
        '--small',
        '--out',
        out,
        '--keep-images',
        path.join(dir, 'images'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    results = JSON.parse(readFileSync(out, 'utf8'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rotates over every style and none, each image from its own seed', function () {
    const job = JSON.parse(readFileSync(path.join(dir, 'images', '64', '0', 'recipe', 'job.json'), 'utf8'));
    const styles = new Set(job.images.map((im) => im.style));
    assert.deepEqual([...styles].sort(), ['Style A', 'Style B', null].sort());
    const recipe = images('recipe');
    assert.equal(recipe.length, job.images.length);
    // the same bytes below must not come from images that are all alike
    assert.equal(new Set(recipe.map(md5)).size, recipe.length);
  });

  it('makes in exact mode the bytes of the recipe, image by image', function () {
    const recipe = images('recipe');
    const exact = images('exact');
    assert.equal(exact.length, recipe.length);
    for (const [i, buf] of exact.entries()) assert.equal(md5(buf), md5(recipe[i]), `image ${i}`);
    assert.equal(results.tutorial.exact.identical, true);
    assert.deepEqual(results.tutorial.bySize['64'].exact.md5, recipe.map(md5));
  });

  it('stays in fast mode (int8 weights, activations in groups of 128) within its bound of the recipe', function () {
    const recipe = images('recipe');
    const fast = images('fast');
    const int8 = images('int8');
    assert.equal(fast.length, recipe.length);
    const diffs = fast.map((buf, i) => meanAbsDiff(buf, recipe[i]));
    for (const [i, d] of diffs.entries()) {
      assert.ok(d <= FAST_BOUND, `image ${i}: ${d}/255 from the recipe's`);
      // other bytes than exact mode's: the int8 model did run
      assert.ok(d > 0, `image ${i} has the recipe's bytes`);
    }
    // other bytes than the int8 side's, which differs only by the group size: it reached OpenVINO
    assert.ok(
      fast.some((buf, i) => md5(buf) !== md5(int8[i])),
      'fast mode makes the bytes of int8 weights alone',
    );
    const f = results.tutorial.fast;
    assert.equal(f.meanAbsDiff, Math.max(...diffs.map((d) => Number(d.toFixed(4)))));
    assert.equal(f.bound, FAST_BOUND);
    assert.equal(f.withinBound, true);
    const [weights, groups] = f.levers;
    assert.deepEqual(f.levers, [
      'int8 weights (convert --weight-format int8)',
      'activations quantized in groups of 128 (dynamicQuantizationGroupSize)',
    ]);
    assert.ok(f.speedup > 0 && f.coldStartSpeedup > 0);
    // the levers one by one: int8 weights alone, then both
    assert.deepEqual(Object.keys(results.tutorial.levers), [weights, `${weights} + ${groups}`]);
    const alone = results.tutorial.levers[weights]['64'];
    assert.equal(alone.meanAbsDiff, results.tutorial.bySize['64'].int8.meanAbsDiff.max);
    assert.equal(results.tutorial.levers[`${weights} + ${groups}`]['64'].meanAbsDiff, f.meanAbsDiff);
  });

  it('times a draft mode (a tiny VAE decoder from convert --tiny-vae) against the recipe and exact mode', function () {
    const exact = images('exact');
    const draft = images('draft');
    assert.equal(draft.length, exact.length);
    // the tiny decoder did run: every image differs from exact mode's, whose model it otherwise is
    for (const [i, buf] of draft.entries()) {
      assert.equal(buf.length, exact[i].length, `image ${i}: not the size asked`);
      assert.ok(meanAbsDiff(buf, exact[i]) > 1, `image ${i} is exact mode's image`);
    }
    const job = JSON.parse(readFileSync(path.join(dir, 'images', '64', '0', 'draft', 'job.json'), 'utf8'));
    const vae = JSON.parse(readFileSync(path.join(job.model, 'vae_decoder', 'config.json'), 'utf8'));
    assert.equal(vae._class_name, 'AutoencoderTiny');
    const d = results.tutorial.draft;
    assert.equal(d.speedOnly, true);
    assert.equal(d.lever, 'a tiny VAE decoder (convert --tiny-vae)');
    assert.ok(d.speedup > 0 && d.coldStartSpeedup > 0 && d.overExact.speedup > 0);
    assert.equal(d.overExact.speedup, Number(results.tutorial.bySize['64'].draft.vsExact.median.toFixed(4)));
    // not a lever of fast mode: its row would claim a pixel difference that means nothing
    assert.ok(!Object.keys(results.tutorial.levers).some((name) => name.includes('tiny')));
    assert.equal(results.tutorial.bySize['64'].draft.speedOnly, true);
    assert.equal(results.tutorial.bySize['64'].fast.speedOnly, undefined);
  });

  it('calls a draft row speed only in the docs, with exact mode measured or not', async function () {
    const { renderTutorialDoc, TUTORIAL_BLOCK } = await import(path.join(ROOT, 'scripts', 'tutorial', 'doc.mjs'));
    // as `--sides recipe,draft` leaves it: no exact side, so no ratio over exact mode
    const alone = structuredClone(results);
    delete alone.tutorial.bySize['64'].exact;
    delete alone.tutorial.bySize['64'].draft.vsExact;
    for (const r of [results, alone]) {
      const doc = renderTutorialDoc(`${TUTORIAL_BLOCK[0]}\n${TUTORIAL_BLOCK[1]}\n`, r);
      const row = doc.split('\n').find((line) => line.startsWith('| 64² | draft |'));
      assert.match(row, /random tiny decoder: speed only/);
      assert.doesNotMatch(doc, /\([^()]*\(/, 'parentheses nested in a line');
    }
  });

  it("times both sides' text encoders, steps with and without LoRA, and cores busy", async function () {
    const bySize = results.tutorial.bySize['64'];
    for (const side of ['recipe', 'exact']) {
      const s = bySize[side];
      assert.ok(s.textMs.median > 0, `${side}: text encoders timed`);
      assert.ok(s.textMs.median < s.imageMs.median, `${side}: text encoders within the image`);
      assert.ok(s.repeatedTextShare > 0 && s.repeatedTextShare < 1, `${side}: share ${s.repeatedTextShare}`);
      // CPU time over wall time: some of a core at least, and no more cores than the machine has
      assert.ok(s.coresBusy.median > 0.2 && s.coresBusy.median <= results.machine.cores + 0.05, `${side}: cores busy`);
    }
    const { renderTutorialDoc, TUTORIAL_BLOCK } = await import(path.join(ROOT, 'scripts', 'tutorial', 'doc.mjs'));
    const doc = renderTutorialDoc(`${TUTORIAL_BLOCK[0]}\n${TUTORIAL_BLOCK[1]}\n`, results);
    const share = (bySize.exact.repeatedTextShare * 100).toFixed(1);
    assert.ok(
      doc.includes(`their time on those images: ${share}% of exact mode's time at 64²`),
      'the share in the docs',
    );
    // step times split by style: every measured image on one side or the other, and the split in the docs
    const recipe = bySize.recipe;
    assert.ok(recipe.styledStepMs.n > 0 && recipe.noneStepMs.n > 0, 'images with and without a style');
    assert.equal(recipe.styledStepMs.n + recipe.noneStepMs.n, recipe.stepMs.n);
    const cost = `${(recipe.styledStepMs.median / 1000).toFixed(2)} s with a style against ${(recipe.noneStepMs.median / 1000).toFixed(2)} s without at 64²`;
    assert.ok(doc.includes(cost), cost);
    const busy = bySize.exact.coresBusy.median;
    const idle = ((1 - busy / results.machine.cores) * 100).toFixed(1);
    assert.ok(doc.includes(`${busy.toFixed(2)} of ${results.machine.cores} at 64²`), 'cores busy in the docs');
    assert.ok(doc.includes(`at most ${idle}% of the time`), 'the idle share in the docs');
  });

  it('hashes every script that measures, and not the one that renders the docs', async function () {
    const { TUTORIAL_SCRIPTS } = await import(path.join(ROOT, 'scripts', 'tutorial', 'doc.mjs'));
    for (const file of readdirSync(path.join(ROOT, 'scripts', 'tutorial')))
      assert.equal(TUTORIAL_SCRIPTS.includes(`scripts/tutorial/${file}`), file !== 'doc.mjs', file);
    assert.ok(TUTORIAL_SCRIPTS.includes('scripts/bench-tutorial.mjs'));
  });

  it('records what the docs are generated from, with its provenance', function () {
    const t = results.tutorial;
    assert.deepEqual(t.sizes, [64]);
    for (const key of ['speedup', 'coldStartSpeedup']) assert.ok(t.exact[key] > 0, key);
    const side = t.bySize['64'].exact;
    for (const key of ['imageMs', 'coldStartMs', 'loadMs']) assert.ok(side[key].median > 0, key);
    assert.ok(side.peakRssMb > 50);
    assert.equal(typeof side.switchCostMs, 'number');
    assert.match(results.commit, /^[0-9a-f]{12}/);
    assert.match(results.scriptsHash, /^[0-9a-f]{16}$/);
  });
});
