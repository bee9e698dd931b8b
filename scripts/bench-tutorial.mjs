#!/usr/bin/env node
// `npm run bench:tutorial`: the tutorial's workload, the Python recipe against multilora, side by side.
//
// The model is the full-size random SDXL that `npm run bench:tutorial-model` builds (LCM-LoRA fused, five style
// LoRAs in a catalogue; it is built on first use: about 6 minutes and 19 GB of RAM). Per size, a rotation of images
// over the five styles and "none" (each style twice in a row: a switch, then the same style again, with a new seed),
// 4 steps, guidance 0. Each side runs in a process of its own per size and round (two SDXL pipelines do not fit in
// 24 GB together): it loads, makes a warm-up image that is dropped (load + warm-up = its cold start to a first
// image), then the rotation. Sides run in turn, and the order turns round every round; a ratio is the recipe's time
// over multilora's for the same image of the same round (paired), summarised by median and p25–p75.
//
// Sides: recipe (scripts/tutorial/recipe.py, the SDK's Python), exact (multilora's defaults: bytes equal to the
// recipe's), fast (multilora on the same model converted with `--weight-format int8`, its activations quantized
// in groups of 128: within FAST_BOUND of the recipe's images), int8 (the int8 model alone: fast mode's first lever,
// to measure the levers one by one), draft (exact mode's model with a tiny VAE decoder in place of its own, from
// `convert --tiny-vae`: speed only, its decoder's weights being random); MODES lists multilora's modes. The int8
// and draft models are built on first use too (the full size: by `npm run bench:tutorial-model -- --weight-format
// int8` into .bench-models/int8/ and `-- --tiny-vae` into .bench-models/draft/, about 10 minutes each; --small: the
// tiny diffusers fixture through `multilora convert`, under a minute each).
//
//   npm run bench:tutorial                                  # sizes 512,1024, 12 images, 1 round: hours on 2 cores
//   npm run bench:tutorial -- --sizes 512 --images 6        # one size, a short rotation
//   npm run bench:tutorial -- --small                       # the tiny SDXL fixture at 64x64 (what the tests run)
//   npm run bench:tutorial -- --model DIR --fast-model DIR2 --draft-model DIR3   # models built elsewhere
//
// Writes bench-results/tutorial.json and the tutorial block of docs/BENCHMARKS.md from it (with --small or --out:
// only the file given), and prints a summary.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { commit, scriptsHash } from './bench/provenance.mjs';
import { TUTORIAL_RESULTS, TUTORIAL_SCRIPTS, renderTutorialDoc } from './tutorial/doc.mjs';
import { ROOT, readCompleteSdk } from './sdk-config.mjs';
import { median, summary } from './stats.mjs';

export const SUBJECTS = ['a cute cat in sunglasses', 'a lighthouse on a cliff', 'an old tram in the rain'];

const INT8_WEIGHTS = 'int8 weights (convert --weight-format int8)';
const DQ_GROUP = 128;
const TINY_VAE = 'a tiny VAE decoder (convert --tiny-vae)';
/**
 * multilora's modes: the model's weights (`fp16`: the workload's model; `int8`: the same model converted with
 * `--weight-format int8`; `draft`: the same model converted with `--tiny-vae`), the load and call options each adds
 * to the public API's defaults (`load` gets the size), and the levers it pulls, as the results name them. A mode
 * with `speedOnly` makes other images than the recipe's by design: it is timed, and held to no pixel bound.
 */
export const MODES = {
  exact: { weights: 'fp16', load: () => ({}), generate: {}, levers: [] },
  // fast mode's levers one at a time, each side adding one to the one before (--sides recipe,int8,fast)
  int8: { weights: 'int8', load: () => ({}), generate: {}, levers: [INT8_WEIGHTS] },
  fast: {
    weights: 'int8',
    load: () => ({ dynamicQuantizationGroupSize: DQ_GROUP }),
    generate: {},
    levers: [INT8_WEIGHTS, `activations quantized in groups of ${DQ_GROUP} (dynamicQuantizationGroupSize)`],
  },
  // exact mode's model and options with a tiny decoder: its gain over exact mode is the tiny decoder's alone
  draft: { weights: 'draft', load: () => ({}), generate: {}, levers: [], speedOnly: TINY_VAE },
};
/** The sides that pull fast mode's levers, in MODES' order: each one's figures are those of its levers together. */
const LEVER_SIDES = Object.keys(MODES).filter((side) => MODES[side].levers.length > 0);

/** Fast mode's bound: the mean absolute difference of every image to the recipe's, in 0–255 units. */
export const FAST_BOUND = 2;

const OPTIONS = {
  model: { type: 'string' },
  small: { type: 'boolean', default: false },
  sizes: { type: 'string' },
  images: { type: 'string' },
  rounds: { type: 'string', default: '1' },
  steps: { type: 'string', default: '4' },
  sides: { type: 'string', default: 'recipe,exact,int8,fast,draft' },
  'fast-model': { type: 'string' },
  'draft-model': { type: 'string' },
  out: { type: 'string' },
  'keep-images': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
};
let args;

const log = (...a) => console.error('[bench:tutorial]', ...a);
const round = (x, digits = 4) => (x === null || x === undefined ? x : Number(x.toFixed(digits)));

// ------------------------------------------------------------------------------------------------------ workload
/** The model folder and its catalogue (paths made absolute); builds the full-size model when it is missing. */
function workload(tmp) {
  if (args.small) {
    const loras = path.join(ROOT, 'models', 'sdxl-tiny-loras');
    const catalog = {
      'Style A': { path: path.join(loras, 'style-a.safetensors'), alpha: 0.8, template: 'xray <subject>' },
      'Style B': {
        path: path.join(loras, 'style-b.safetensors'),
        alpha: 0.6,
        template: 'an illustration of <subject> in Ukiyo-e Art style',
        negativePrompt: 'realistic, portrait, 3d',
      },
    };
    const source = path.join(ROOT, 'test', 'fixtures', 'diffusers', 'sdxl-tiny');
    const int8 = () => convertSmall(source, tmp, 'sdxl-tiny-int8', INT8);
    const draft = async () => convertSmall(source, tmp, 'sdxl-tiny-draft', ['--tiny-vae', await smallTinyVae(tmp)]);
    return { models: { fp16: () => path.join(ROOT, 'models', 'sdxl-tiny'), int8, draft }, catalog, unetParams: null };
  }
  const dir = tutorialModel(args.model, '.bench-models', []);
  const stamp = JSON.parse(readFileSync(path.join(dir, 'tutorial-model.json'), 'utf8'));
  const catalog = JSON.parse(readFileSync(path.join(dir, 'catalog.json'), 'utf8'));
  for (const e of Object.values(catalog)) e.path = path.join(dir, e.path);
  const int8 = () => path.join(tutorialModel(args['fast-model'], path.join('.bench-models', 'int8'), INT8), 'model');
  const draft = () =>
    path.join(tutorialModel(args['draft-model'], path.join('.bench-models', 'draft'), ['--tiny-vae']), 'model');
  return {
    models: { fp16: () => path.join(dir, 'model'), int8, draft },
    catalog,
    unetParams: stamp.build?.parameters?.unet,
  };
}

const INT8 = ['--weight-format', 'int8'];

/** The folder of a tutorial model: `given`, or the default one under `out`, built there when it is missing. */
function tutorialModel(given, out, buildArgs) {
  const dir = path.resolve(given ?? path.join(ROOT, out, 'sdxl-tutorial'));
  if (existsSync(path.join(dir, 'tutorial-model.json'))) return dir;
  const command = ['npm run bench:tutorial-model --', '--out', out, ...buildArgs].join(' ');
  if (given) throw new Error(`${dir} has no tutorial-model.json: build it with ${command}`);
  log(`building the tutorial's model into ${dir} (${command})`);
  const script = path.join(ROOT, 'scripts', 'make-fixtures.sh');
  const built = spawnSync('bash', [script, '--tutorial-model', '--out', path.join(ROOT, out), ...buildArgs], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error(`building the tutorial's model failed (exit ${built.status})`);
  return dir;
}

/** The tiny diffusers fixture converted by `multilora convert <options>` into `tmp`/`name` (for --small). */
function convertSmall(source, tmp, name, options) {
  const out = path.join(tmp, name);
  if (existsSync(path.join(out, 'model_index.json'))) return out;
  log(`converting ${path.relative(ROOT, source)} with ${options.map((o) => path.basename(o)).join(' ')}`);
  const cli = path.join(ROOT, 'dist', 'cli', 'main.js');
  const run = spawnSync(process.execPath, [cli, 'convert', source, out, ...options, '--no-verify'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (run.status !== 0) throw new Error(`converting the fixture (${name}) failed (exit ${run.status})`);
  return out;
}

/** A random AutoencoderTiny of the tiny fixture's scale (2 blocks) in `tmp`, made in the converter's venv. */
async function smallTinyVae(tmp) {
  const out = path.join(tmp, 'tiny-vae');
  const { ensureConverter } = await import('../dist/convert/env.js');
  const env = await ensureConverter({});
  const made = spawnSync(env.python, [path.join(ROOT, 'test', 'helpers', 'make_tiny_vae.py'), out, '4', '2'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (made.status !== 0) throw new Error(`making a tiny VAE failed (exit ${made.status})`);
  return out;
}

/** Per size: a warm-up image, then `count` images, each style twice in a row (a switch, then the same again). */
export function rotation(styles, size, count) {
  const order = [...styles, null];
  const images = [{ size, style: styles[0], subject: SUBJECTS[0], seed: 7, warmUp: true }];
  for (let k = 0; k < count; k++) {
    const pair = Math.floor(k / 2);
    images.push({
      size,
      style: order[pair % order.length],
      subject: SUBJECTS[pair % SUBJECTS.length],
      seed: 1000 + size + k,
      switched: k % 2 === 0,
    });
  }
  return images;
}

// --------------------------------------------------------------------------------------------------------- sides
/** Runs one side for one size in a process of its own; resolves with its events and the folder of its images. */
function runSide(side, job, sdk, dir) {
  mkdirSync(dir, { recursive: true });
  const jobFile = path.join(dir, 'job.json');
  writeFileSync(jobFile, JSON.stringify({ ...job, outDir: dir }));
  const [file, argv] =
    side === 'recipe'
      ? [sdk.python, [path.join(ROOT, 'scripts', 'tutorial', 'recipe.py'), jobFile]]
      : [process.execPath, [path.join(ROOT, 'scripts', 'tutorial', 'multilora.mjs'), jobFile]];
  const env = { ...process.env, OPENVINO_TOKENIZERS_PATH_GENAI: sdk.tokenizersLib };
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const events = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const event = JSON.parse(line);
      events.push(event);
      if (event.type === 'image') {
        const image = job.images[event.index];
        const what = event.index === 0 ? 'warm-up' : `${event.index}/${job.images.length - 1}`;
        log(`  ${side} ${image.size}² ${what} ${image.style ?? 'none'}: ${(event.ms / 1000).toFixed(2)} s`);
      } else if (event.type === 'load') log(`  ${side} loaded in ${(event.ms / 1000).toFixed(1)} s`);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code !== 0) reject(new Error(`the ${side} side exited ${signal ?? code}`));
      else resolve(events);
    });
  });
}

/** The CPU plugin's default inference precision on this machine (GenAI sets none for these models on CPU). */
function cpuPrecision(sdk) {
  const run = spawnSync(
    sdk.python,
    ['-c', "import openvino as ov; print(ov.Core().get_property('CPU', 'INFERENCE_PRECISION_HINT'))"],
    { encoding: 'utf8' },
  );
  return run.status === 0 ? run.stdout.trim() : null;
}

/** Mean absolute difference of two RGB buffers, in 0–255 units. */
export function meanAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

// ------------------------------------------------------------------------------------------------------- summary
/** One side of one size over the rounds: cold start, per-image times, switch cost, peak RSS, md5s. */
function sideSummary(runs, images) {
  const measured = images.map((im, i) => ({ ...im, i })).filter((im) => !im.warmUp);
  const ms = (run, i) => run.images[i].ms;
  const steps = (ims) => runs.flatMap((run) => ims.map((im) => run.images[im.i].stepMs).filter((x) => x != null));
  const switched = runs.flatMap((run) => measured.filter((im) => im.switched).map((im) => ms(run, im.i)));
  const same = runs.flatMap((run) => measured.filter((im) => !im.switched).map((im) => ms(run, im.i)));
  return {
    loadMs: summary(runs.map((r) => r.loadMs)),
    coldStartMs: summary(runs.map((r) => r.loadMs + ms(r, 0))),
    imageMs: summary(runs.flatMap((run) => measured.map((im) => ms(run, im.i)))),
    stepMs: summary(steps(measured)),
    // with a style and without: the recipe makes an image without one with an empty AdapterConfig, no LoRA product
    // at all, so on its side the difference is what GenAI's LoRA products cost per step
    styledStepMs: summary(steps(measured.filter((im) => im.style !== null))),
    noneStepMs: summary(steps(measured.filter((im) => im.style === null))),
    vaeMs: summary(runs.flatMap((run) => measured.map((im) => run.images[im.i].vaeMs).filter((x) => x != null))),
    textMs: summary(runs.flatMap((run) => measured.map((im) => run.images[im.i].textMs).filter((x) => x != null))),
    // how many cores were busy on average while an image was made: CPU time over wall time
    coresBusy: summary(
      runs.flatMap((run) =>
        measured.map((im) => run.images[im.i].cpuMs / ms(run, im.i)).filter((x) => !Number.isNaN(x)),
      ),
    ),
    // the most that reusing the text encoders' outputs for a repeated prompt could save: their time on the images
    // whose prompt is the one before's (the second of each pair), as a share of the time of every image
    repeatedTextShare: round(
      runs.reduce(
        (a, run) =>
          a + measured.filter((im) => !im.switched).reduce((b, im) => b + (run.images[im.i].textMs ?? NaN), 0),
        0,
      ) / runs.reduce((a, run) => a + measured.reduce((b, im) => b + ms(run, im.i), 0), 0),
      4,
    ),
    switchCostMs: median(switched) - median(same),
    peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
    md5: runs[0].images.map((im) => im.md5),
  };
}

/** The recipe's time over the side's, image by image within a round, and the cold starts likewise. */
function paired(recipeRuns, sideRuns, images) {
  const measured = images.map((im, i) => ({ ...im, i })).filter((im) => !im.warmUp);
  const ratios = recipeRuns.flatMap((r, k) => measured.map((im) => r.images[im.i].ms / sideRuns[k].images[im.i].ms));
  const cold = recipeRuns.map((r, k) => (r.loadMs + r.images[0].ms) / (sideRuns[k].loadMs + sideRuns[k].images[0].ms));
  return { ratios, speedup: summary(ratios), coldStartSpeedup: summary(cold) };
}

// ------------------------------------------------------------------------------------------------------------ main
async function main() {
  args = parseArgs({ options: OPTIONS }).values;
  if (args.help) {
    console.log(
      readFileSync(new URL(import.meta.url), 'utf8')
        .split('\nimport ')[0]
        .replace(/^#!.*\n/, ''),
    );
    return;
  }
  const sdk = readCompleteSdk();
  if (!sdk) throw new Error('the SDK is not installed: run npm install');
  if (!existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run npm install');
  const sides = args.sides.split(',').filter(Boolean);
  for (const s of sides)
    if (s !== 'recipe' && !MODES[s]) throw new Error(`unknown side ${s}: recipe, ${Object.keys(MODES).join(', ')}`);
  if (!sides.includes('recipe')) throw new Error('--sides must include recipe: every figure is a ratio to it');
  const all = [...new Set(sides)];
  const sizes = (args.sizes ?? (args.small ? '64' : '512,1024')).split(',').map(Number);
  const count = Number(args.images ?? (args.small ? 6 : 12));
  const rounds = Number(args.rounds);
  const steps = Number(args.steps);
  const prov = {
    commit: commit(TUTORIAL_SCRIPTS),
    scriptsHash: scriptsHash(TUTORIAL_SCRIPTS),
    date: new Date().toISOString(),
    loadStart: os.loadavg(),
  };
  const tmp = args['keep-images'] ?? mkdtempSync(path.join(os.tmpdir(), 'multilora-tutorial-'));
  mkdirSync(tmp, { recursive: true });
  const runs = {}; // runs[size][side] = [{loadMs, images, peakRssMb}, ...] by round
  const started = Date.now();
  try {
    const { models, catalog, unetParams } = workload(tmp);
    // every side's model before any is timed: the int8 one may have to be built first
    const modelOf = {};
    for (const side of all) modelOf[side] = await models[MODES[side]?.weights ?? 'fp16']();
    const styles = Object.keys(catalog);
    for (const size of sizes) {
      const images = rotation(styles, size, count);
      runs[size] = Object.fromEntries(all.map((s) => [s, []]));
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? all : [...all].reverse();
        for (const side of order) {
          log(`${size}×${size}, round ${r + 1}/${rounds}: ${side}`);
          const mode = MODES[side];
          const job = {
            model: modelOf[side],
            catalog,
            steps,
            guidance: 0,
            images: images.map(({ size: s, style, subject, seed }) => ({ size: s, style, subject, seed })),
            load: mode?.load(size),
            generate: mode?.generate,
          };
          const dir = path.join(tmp, `${size}`, `${r}`, side);
          const events = await runSide(side, job, sdk, dir);
          runs[size][side].push({
            loadMs: events.find((e) => e.type === 'load').ms,
            images: events.filter((e) => e.type === 'image'),
            peakRssMb: events.find((e) => e.type === 'done').peakRssMb,
            dir,
          });
        }
      }
    }
    const result = summarize(runs, { sizes, all, styles, count, rounds, unetParams });
    const cpu = os.cpus();
    const file = {
      commit: prov.commit,
      scriptsHash: prov.scriptsHash,
      date: prov.date,
      loadAverage: { start: prov.loadStart.map((x) => round(x, 2)), end: os.loadavg().map((x) => round(x, 2)) },
      machine: {
        cpu: `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
        cores: os.availableParallelism(),
        memoryGb: round(os.totalmem() / 2 ** 30, 1),
        os: `${os.type()} ${os.release()}`,
        node: process.version,
        cpuInferencePrecision: cpuPrecision(sdk),
      },
      command: `npm run bench:tutorial -- ${process.argv.slice(2).join(' ')}`.trim(),
      elapsedS: Math.round((Date.now() - started) / 1000),
      tutorial: result,
    };
    print(result);
    const out = args.out ?? (args.small ? undefined : path.join(ROOT, TUTORIAL_RESULTS));
    if (out) {
      writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`);
      log(`wrote ${path.relative(process.cwd(), out)}`);
    }
    if (!args.out && !args.small) {
      // the default results file is the one docs/BENCHMARKS.md shows: its block follows it
      const doc = path.join(ROOT, 'docs', 'BENCHMARKS.md');
      writeFileSync(doc, renderTutorialDoc(readFileSync(doc, 'utf8'), file));
      log('wrote the tutorial block of docs/BENCHMARKS.md');
    }
  } finally {
    if (!args['keep-images']) rmSync(tmp, { recursive: true, force: true });
  }
}

function summarize(runs, { sizes, all, styles, count, rounds, unetParams }) {
  const bySize = {};
  const ratios = Object.fromEntries(Object.keys(MODES).map((m) => [m, []]));
  const overExact = []; // the draft side's paired ratios over exact mode, every size
  for (const size of sizes) {
    const shape = rotation(styles, size, count);
    const recipe = runs[size].recipe;
    const entry = { recipe: sideSummary(recipe, shape) };
    for (const side of all.filter((s) => s !== 'recipe')) {
      const vsRecipe = paired(recipe, runs[size][side], shape);
      // bytes: every image (the warm-up too) of every round against the recipe's of the same round
      const diffs = runs[size][side].flatMap((run, k) =>
        run.images.map((im, i) =>
          im.md5 === recipe[k].images[i].md5
            ? 0
            : meanAbsDiff(
                readFileSync(path.join(run.dir, `${i}.rgb`)),
                readFileSync(path.join(recipe[k].dir, `${i}.rgb`)),
              ),
        ),
      );
      entry[side] = {
        ...sideSummary(runs[size][side], shape),
        speedup: vsRecipe.speedup,
        coldStartSpeedup: vsRecipe.coldStartSpeedup,
        identical: runs[size][side].every((run, k) => run.images.every((im, i) => im.md5 === recipe[k].images[i].md5)),
        meanAbsDiff: { mean: round(diffs.reduce((a, d) => a + d, 0) / diffs.length), max: round(Math.max(...diffs)) },
      };
      ratios[side]?.push(...vsRecipe.ratios);
      if (MODES[side]?.speedOnly) entry[side].speedOnly = true;
      if (side === 'draft' && runs[size].exact?.length) {
        // against exact mode, whose model it shares but for its decoder: the tiny decoder's own gain
        const vsExact = paired(runs[size].exact, runs[size][side], shape);
        entry[side].vsExact = vsExact.speedup;
        overExact.push(...vsExact.ratios);
      }
    }
    bySize[size] = entry;
  }
  /** A mode over every size: its paired ratios' median and p25–p75, and the median of its sizes' cold starts. */
  const modeSummary = (side, measured) => {
    const s = summary(ratios[side]);
    return {
      speedup: round(s.median),
      speedupRange: [round(s.p25), round(s.p75)],
      coldStartSpeedup: round(median(measured.map((size) => bySize[size][side].coldStartSpeedup.median))),
    };
  };
  const exactSizes = sizes.filter((s) => bySize[s].exact);
  const draftSizes = sizes.filter((s) => bySize[s].draft);
  const vsExact = overExact.length ? summary(overExact) : null;
  const fastSizes = sizes.filter((s) => bySize[s].fast);
  const fastDiff = Math.max(...fastSizes.map((s) => bySize[s].fast.meanAbsDiff.max));
  // fast mode's levers, size by size: each side of LEVER_SIDES that ran adds its last lever to the ones before
  const levers = Object.fromEntries(
    LEVER_SIDES.filter((side) => sizes.some((s) => bySize[s][side])).map((side) => [
      MODES[side].levers.join(' + '),
      Object.fromEntries(
        sizes
          .filter((s) => bySize[s][side])
          .map((s) => [
            s,
            { speedup: round(bySize[s][side].speedup.median), meanAbsDiff: bySize[s][side].meanAbsDiff.max },
          ]),
      ),
    ]),
  );
  return {
    workload: {
      steps: Number(args.steps),
      guidance: 0,
      imagesPerSize: count,
      rounds,
      model: args.small ? 'sdxl-tiny' : 'sdxl-tutorial',
    },
    unetParams,
    sizes,
    exact: exactSizes.length
      ? { ...modeSummary('exact', exactSizes), identical: exactSizes.every((s) => bySize[s].exact.identical) }
      : null,
    fast: fastSizes.length
      ? {
          ...modeSummary('fast', fastSizes),
          meanAbsDiff: fastDiff,
          meanAbsDiffMean: round(fastSizes.reduce((a, s) => a + bySize[s].fast.meanAbsDiff.mean, 0) / fastSizes.length),
          bound: FAST_BOUND,
          withinBound: fastDiff <= FAST_BOUND,
          levers: MODES.fast.levers,
        }
      : null,
    // speed only: a random tiny decoder's images say nothing of a trained one's, so no pixel bound applies
    draft: draftSizes.length
      ? {
          ...modeSummary('draft', draftSizes),
          lever: MODES.draft.speedOnly,
          overExact: vsExact && {
            speedup: round(vsExact.median),
            speedupRange: [round(vsExact.p25), round(vsExact.p75)],
          },
          speedOnly: true,
        }
      : null,
    levers,
    bySize,
  };
}

function print(result) {
  for (const size of result.sizes) {
    const e = result.bySize[size];
    log(
      `${size}×${size}: recipe ${(e.recipe.imageMs.median / 1000).toFixed(2)} s per image, cold start ${(e.recipe.coldStartMs.median / 1000).toFixed(1)} s`,
    );
    for (const [side, s] of Object.entries(e).filter(([k]) => k !== 'recipe'))
      log(
        `  ${side}: ${(s.imageMs.median / 1000).toFixed(2)} s per image, ×${s.speedup.median.toFixed(3)} (p25–p75 ${s.speedup.p25.toFixed(3)}–${s.speedup.p75.toFixed(3)}), cold start ×${s.coldStartSpeedup.median.toFixed(3)}, ${MODES[side]?.speedOnly ? 'speed only' : s.identical ? 'same bytes' : `mean abs diff ≤ ${s.meanAbsDiff.max}`}`,
      );
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname))
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
