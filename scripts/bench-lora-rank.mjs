#!/usr/bin/env node
// `npm run bench:lora-rank`: what the rank of a LoRA costs per denoising step at generate (issue 17: the rank that a
// LoHa or LoKr rewrite runs at, r1·r2, against the same file fitted by `approximate`). On the tutorial's SDXL (built
// by `npm run bench:tutorial-model` when it is missing, about 40 minutes), one dynamic pipeline registers random
// plain LoRAs of several ranks on the UNet layers of the tutorial's X-ray LoRA (attention, feed-forward and proj
// layers), a LoHa of ranks 8 and 8 (run at 64) and the same LoHa with `approximate: { rank: 16 }`. Each round makes
// one image per selection, none included, in an order rotated by one each round. A step's time is the median interval
// between progress events after the first, so that the adapter switch, the text encoders and the VAE are outside it.
// Writes bench-results/lora-rank.json and its table in docs/LORA-FORMATS.md; progress on stderr.
//
//   npm run bench:lora-rank [-- --rounds N --size PX --steps N --model DIR --layers-from FILE --small]
//
// --small: the embedded tiny model, for a check that the script works (its numbers mean nothing): the results go to
// stdout, and neither bench-results/ nor the docs are written.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LORA_RANK_RESULTS, renderLoraRankDoc } from './bench/lora-rank.mjs';
import { provenance } from './bench/provenance.mjs';
import { ROOT, readCompleteSdk } from './sdk-config.mjs';
import { summary } from './stats.mjs';

const require = createRequire(import.meta.url);
const { Pipeline } = require(ROOT);
const { loraFormat: lf, safetensors: st } = require(path.join(ROOT, 'dist', 'internal'));

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    size: { type: 'string' },
    steps: { type: 'string', default: '6' },
    model: { type: 'string' },
    'layers-from': { type: 'string' },
    small: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    readFileSync(new URL(import.meta.url), 'utf8')
      .split('\n')
      .slice(1)
      .filter((l) => l.startsWith('//'))
      .map((l) => l.slice(3))
      .join('\n'),
  );
  process.exit(0);
}

const RANKS = [8, 16, 32, 64, 128];
/** The tutorial's: LCM at guidance 0, one UNet pass per step (CFG would make it two). */
const GUIDANCE = 0;
const LOHA = { r1: 8, r2: 8, fit: 16 };
const log = (...a) => console.error('[bench:lora-rank]', ...a);
const positive = (text, name) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not ${text}`);
  return n;
};

/** The tutorial's model folder: given, or .bench-models/sdxl-tutorial, built when it is missing. */
function tutorialModel() {
  const dir = path.resolve(args.model ?? path.join(ROOT, '.bench-models', 'sdxl-tutorial'));
  if (existsSync(path.join(dir, 'tutorial-model.json'))) return dir;
  if (args.model) throw new Error(`${dir} has no tutorial-model.json: build it with npm run bench:tutorial-model`);
  log(`building the tutorial's model into ${dir} (npm run bench:tutorial-model)`);
  const built = spawnSync('bash', [path.join(ROOT, 'scripts', 'make-fixtures.sh'), '--tutorial-model'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error(`building the tutorial's model failed (exit ${built.status})`);
  return dir;
}

/** Seeded N(0, 1) values (mulberry32 and Box–Muller). */
function normals(seed) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return (n, scale) =>
    Float32Array.from(
      { length: n },
      () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) * scale,
    );
}

/** The UNet layers of a kohya LoRA: stem, in, out, and the trailing 1x1 of a convolution's tensors. */
async function layersOf(file) {
  const analysis = await lf.inspectLora(file);
  return analysis.layers
    .filter((l) => l.part === 'unet' && l.naming === 'kohya')
    .map((l) => ({ stem: l.key, inn: l.down.shape[1], out: l.up.shape[0], ones: l.down.shape.slice(2) }));
}

/** A random kohya file on those layers: plain LoRA of `rank`, or a LoHa of ranks r1 and r2; fp16, as real files. */
function randomFile(layers, kind, seed) {
  const next = normals(seed);
  const tensors = [];
  const add = (name, shape, scale) => {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, dtype: 'F16', shape, data: st.fromFloat32Array(next(n, scale), 'F16') });
  };
  for (const { stem, inn, out, ones } of layers) {
    if (kind.rank) {
      add(`${stem}.lora_down.weight`, [kind.rank, inn, ...ones], 1 / Math.sqrt(inn));
      add(`${stem}.lora_up.weight`, [out, kind.rank, ...ones], 0.05 / Math.sqrt(kind.rank));
    } else {
      for (const [n, r] of [
        [1, kind.r1],
        [2, kind.r2],
      ]) {
        add(`${stem}.hada_w${n}_a`, [out, r], 0.2 / Math.sqrt(r));
        add(`${stem}.hada_w${n}_b`, [r, inn], 1 / Math.sqrt(inn));
      }
    }
    const alpha = Buffer.alloc(2);
    alpha.writeUInt16LE(st.f32ToF16(kind.rank ?? kind.r1));
    tensors.push({ name: `${stem}.alpha`, dtype: 'F16', shape: [], data: alpha });
  }
  return st.writeSafetensors(tensors, { multilora_bench: 'random weights, for timing only' });
}

function openvinoGenaiVersion() {
  const sdk = readCompleteSdk();
  const r = spawnSync(sdk.python, ['-c', 'import openvino_genai; print(openvino_genai.__version__)'], {
    encoding: 'utf8',
  });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

async function main() {
  const started = Date.now();
  const run = provenance('loraRank');
  const rounds = positive(args.rounds, 'rounds');
  const steps = positive(args.steps, 'steps');
  if (steps < 3) throw new Error('--steps must be at least 3: the first interval is left out');
  const small = args.small;
  const modelDir = small ? path.join(ROOT, 'models', 'sdxl-tiny') : path.join(tutorialModel(), 'model');
  const layersFrom = path.resolve(
    args['layers-from'] ??
      (small
        ? path.join(ROOT, 'models', 'sdxl-tiny-loras', 'style-a.safetensors')
        : path.join(path.dirname(modelDir), 'loras', 'xray.safetensors')),
  );
  const size = positive(args.size ?? (small ? '64' : '512'), 'size');
  const layers = await layersOf(layersFrom);
  if (layers.length === 0) throw new Error(`${layersFrom} has no kohya UNet layers`);
  log(`${layers.length} UNet layers from ${path.relative(ROOT, layersFrom)}; model ${path.relative(ROOT, modelDir)}`);

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'multilora-lora-rank-'));
  const adapters = {};
  const variants = [{ name: 'none', label: 'none', rank: 0 }];
  try {
    for (const [i, rank] of RANKS.entries()) {
      const file = path.join(tmp, `rank-${rank}.safetensors`);
      writeFileSync(file, randomFile(layers, { rank }, 100 + i));
      adapters[`rank-${rank}`] = { path: file };
      variants.push({ name: `rank-${rank}`, label: `plain LoRA of rank ${rank}`, rank });
    }
    const loha = path.join(tmp, 'loha.safetensors');
    writeFileSync(loha, randomFile(layers, LOHA, 200));
    adapters.loha = { path: loha };
    adapters['loha-fit'] = { path: loha, approximate: { rank: LOHA.fit } };
    variants.push(
      { name: 'loha', label: `LoHa of ranks ${LOHA.r1} and ${LOHA.r2} (exact rewrite)`, rank: LOHA.r1 * LOHA.r2 },
      { name: 'loha-fit', label: `the same LoHa, \`approximate: { rank: ${LOHA.fit} }\``, rank: LOHA.fit },
    );

    // What `approximate` takes: reading the file and fitting every layer, in this process's JS thread.
    const fitRuns = small ? 3 : 2;
    const fitMs = [];
    let fitted;
    for (let i = 0; i < fitRuns; i += 1) {
      const t = performance.now();
      const analysis = await lf.inspectLora(loha);
      fitted = await lf.convertForGenai(loha, analysis, { family: 'sdxl', approximate: { rank: LOHA.fit } });
      fitMs.push(performance.now() - t);
    }
    log(`approximate at rank ${LOHA.fit}: ${fitMs.map((x) => (x / 1000).toFixed(1)).join(', ')} s`);

    log(`loading with ${Object.keys(adapters).length} adapters`);
    const loadStart = performance.now();
    const pipeline = await Pipeline.load(modelDir, { adapters });
    const loadMs = performance.now() - loadStart;
    const ranksSeen = Object.fromEntries(pipeline.adapters.list().map((a) => [a.name, a.info.ranks]));
    const perRound = [];
    try {
      const generate = async (variant, seed) => {
        const times = [];
        const image = await pipeline.generate('a lighthouse on a cliff', {
          seed,
          steps,
          guidanceScale: GUIDANCE,
          width: size,
          height: size,
          adapters: variant.name === 'none' ? null : { [variant.name]: 1 },
          onProgress: () => times.push(performance.now()),
        });
        const intervals = times.slice(2).map((t, i) => t - times[i + 1]);
        return { stepMs: summary(intervals).median, denoiserMs: image.metrics.denoiserMs };
      };
      log('warm-up: one image per LoRA');
      for (const v of variants) await generate(v, 1);
      for (let round = 0; round < rounds; round += 1) {
        const order = variants.map((_, i) => variants[(i + round) % variants.length]);
        const row = {};
        for (const v of order) {
          row[v.name] = await generate(v, 10 + round);
          log(`round ${round + 1}/${rounds}: ${v.name} ${row[v.name].stepMs.toFixed(0)} ms per step`);
        }
        perRound.push(row);
      }
    } finally {
      await pipeline.dispose();
    }

    const none = perRound.map((r) => r.none.stepMs);
    const results = {
      ...run.finish(),
      machine: { ...run.machine, openvinoGenai: openvinoGenaiVersion() },
      command: `npm run bench:lora-rank${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      durationS: Math.round((Date.now() - started) / 1000),
      model: path.relative(ROOT, modelDir),
      layersFrom: path.relative(ROOT, layersFrom),
      layers: layers.length,
      size,
      steps,
      guidance: GUIDANCE,
      rounds,
      precision: 'default',
      loadMs: Math.round(loadMs),
      variants: variants.map((v) => {
        const step = perRound.map((r) => r[v.name].stepMs);
        const out = { ...v, ranksGenaiRuns: ranksSeen[v.name] ?? [], stepMs: summary(step) };
        out.denoiserMs = summary(perRound.map((r) => r[v.name].denoiserMs));
        if (v.name !== 'none') {
          out.addedMs = summary(step.map((s, i) => s - none[i]));
          out.ratio = summary(step.map((s, i) => s / none[i])).median;
        }
        return out;
      }),
      fit: {
        rank: LOHA.fit,
        layers: fitted.approximation.layers.length,
        error: fitted.approximation.error,
        runs: fitRuns,
        ms: summary(fitMs),
      },
      perRound,
    };
    if (small) {
      console.log(JSON.stringify(results, null, 2));
      return;
    }
    writeFileSync(path.join(ROOT, LORA_RANK_RESULTS), `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote ${LORA_RANK_RESULTS}`);
    const doc = path.join(ROOT, 'docs', 'LORA-FORMATS.md');
    writeFileSync(doc, renderLoraRankDoc(readFileSync(doc, 'utf8'), results));
    log('wrote the table of docs/LORA-FORMATS.md');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
