#!/usr/bin/env node
// `npm run bench:fuse-load`: what `mode: 'fuse'` costs at load on the tutorial's SDXL (built by
// `npm run bench:tutorial-model` when it is missing), through GenAI's fuse and through multilora's own (issue 17: the
// fuse of what GenAI refuses, in memory). Each load runs in a process of its own (two SDXL pipelines do not fit in
// memory at once), in rounds of a rotated order:
// - no adapter (the baseline);
// - the tutorial's X-ray LoRA at 0.8, fused by GenAI;
// - the same, fused by multilora: beside it a random LoRA of rank 4 on every 3x3 convolution of the UNet, at alpha 0,
//   which GenAI's fuse refuses, sends every adapter through multilora's fuse while changing no weight (W + 0 · ΔW is
//   W): the same job by the other path, whose image is compared with GenAI's;
// - X-ray at 0.8 and that 3x3 LoRA at 1 (the image changes: load cost only).
// Each process then makes one image. Writes bench-results/fuse-load.json and its table in docs/LORA-FORMATS.md.
//
//   npm run bench:fuse-load [-- --rounds N --model DIR --small]
//
// --small: the embedded tiny model and a LoRA fixture of it, for a check that the script works
// (its numbers mean nothing): the results go to stdout, and neither bench-results/ nor the docs are written.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FUSE_LOAD_RESULTS, renderFuseLoadDoc } from './bench/fuse-load.mjs';
import { provenance } from './bench/provenance.mjs';
import { ROOT, readCompleteSdk } from './sdk-config.mjs';
import { summary } from './stats.mjs';

const require = createRequire(import.meta.url);

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    model: { type: 'string' },
    small: { type: 'boolean', default: false },
    child: { type: 'string' },
    kernels: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: true, // a child's image file
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

/** The tutorial's: LCM at guidance 0. */
const CALL = { prompt: 'xray a lighthouse on a cliff', seed: 42, steps: 4, guidanceScale: 0 };
const log = (...a) => console.error('[bench:fuse-load]', ...a);

/** The model and the two LoRA files: the tutorial's, or the tiny fixtures. */
function inputs() {
  if (args.small) {
    return {
      model: path.join(ROOT, 'models', 'sdxl-tiny'),
      xray: path.join(ROOT, 'models', 'sdxl-tiny-loras', 'style-a.safetensors'),
      size: 64,
    };
  }
  const dir = path.resolve(args.model ?? path.join(ROOT, '.bench-models', 'sdxl-tutorial'));
  if (!existsSync(path.join(dir, 'tutorial-model.json'))) {
    if (args.model) throw new Error(`${dir} has no tutorial-model.json: build it with npm run bench:tutorial-model`);
    log(`building the tutorial's model into ${dir} (npm run bench:tutorial-model)`);
    const built = spawnSync('bash', [path.join(ROOT, 'scripts', 'make-fixtures.sh'), '--tutorial-model'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    if (built.status !== 0) throw new Error(`building the tutorial's model failed (exit ${built.status})`);
  }
  return {
    model: path.join(dir, 'model'),
    xray: path.join(dir, 'loras', 'xray.safetensors'),
    size: 512,
  };
}

const VARIANTS = [
  { name: 'none', label: 'no adapter', adapters: () => ({}) },
  { name: 'genai', label: 'X-ray at 0.8, fused by GenAI', adapters: (f) => ({ xray: { path: f.xray, alpha: 0.8 } }) },
  {
    name: 'multilora',
    label: 'X-ray at 0.8, fused by multilora (a 3x3 LoRA at 0 beside it)',
    adapters: (f) => ({ xray: { path: f.xray, alpha: 0.8 }, kernels: { path: f.kernels, alpha: 0 } }),
  },
  {
    name: 'kernels',
    label: 'X-ray at 0.8 and a LoRA of every 3x3 convolution at 1, fused by multilora',
    adapters: (f) => ({ xray: { path: f.xray, alpha: 0.8 }, kernels: { path: f.kernels, alpha: 1 } }),
  },
];

/** A random kohya LoRA of rank 4 on every 3x3 convolution of the model's UNet, which GenAI's fuse refuses. */
async function kernelsLora(modelDir, file) {
  const { binding, safetensors: st } = require(path.join(ROOT, 'dist', 'internal'));
  const layers = await binding.native().Model.layers(path.join(modelDir, 'unet', 'openvino_model.xml'));
  let seed = 17;
  const values = (n, scale) =>
    Float32Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed / 2 ** 30 - 1) * scale;
    });
  const tensors = [];
  for (const layer of layers.filter((l) => l.type === 'Convolution' && l.shape[2] === 3 && l.shape[3] === 3)) {
    const module = layer.name.replace(/^__module\.(model\.)?/, '').replace(/\/.*$/, '');
    if (!/^(down_blocks|mid_block|up_blocks)\./.test(module)) continue;
    const [out, inn] = layer.shape;
    const stem = `lora_unet_${module.replaceAll('.', '_')}`;
    const add = (name, shape, scale) =>
      tensors.push({
        name,
        dtype: 'F16',
        shape,
        data: st.fromFloat32Array(
          values(
            shape.reduce((a, b) => a * b, 1),
            scale,
          ),
          'F16',
        ),
      });
    add(`${stem}.lora_down.weight`, [4, inn, 3, 3], 1 / Math.sqrt(inn * 9));
    add(`${stem}.lora_up.weight`, [out, 4, 1, 1], 0.05);
  }
  writeFileSync(file, st.writeSafetensors(tensors, { multilora_bench: 'random weights, for timing only' }));
  return tensors.length / 2;
}

/** In a child process: one load and one image; prints its figures as JSON, writes the image's bytes. */
async function child(name, out) {
  const { Pipeline } = require(ROOT);
  const files = { ...inputs(), kernels: args.kernels };
  const variant = VARIANTS.find((v) => v.name === name);
  const adapters = variant.adapters(files);
  const started = performance.now();
  const pipeline = await Pipeline.load(files.model, Object.keys(adapters).length ? { mode: 'fuse', adapters } : {});
  const loadMs = performance.now() - started;
  const rssAfterLoadMb = process.resourceUsage().maxRSS / 1024;
  const { prompt, ...call } = CALL;
  const image = await pipeline.generate(prompt, { ...call, width: files.size, height: files.size });
  writeFileSync(out, image.data);
  await pipeline.dispose();
  console.log(JSON.stringify({ loadMs, rssAfterLoadMb, rssMb: process.resourceUsage().maxRSS / 1024 }));
}

function meanAbsDiff(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
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
  const run = provenance('fuseLoad');
  const rounds = Number(args.rounds);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds must be a positive integer, not ${args.rounds}`);
  const files = inputs();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'multilora-fuse-load-'));
  files.kernels = path.join(tmp, 'kernels.safetensors');
  const runs = Object.fromEntries(VARIANTS.map((v) => [v.name, []]));
  try {
    const { loraFormat: lf } = require(path.join(ROOT, 'dist', 'internal'));
    const layerCount = {
      xray: (await lf.inspectLora(files.xray)).layers.length,
      kernels: await kernelsLora(files.model, files.kernels),
    };
    for (let round = 0; round < rounds; round += 1) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
      for (const v of order) {
        const image = path.join(tmp, `${v.name}-${round}.rgb`);
        const forward = process.argv.slice(2).filter((a) => a !== '--small');
        const r = spawnSync(
          process.execPath,
          [
            new URL(import.meta.url).pathname,
            ...forward,
            ...(args.small ? ['--small'] : []),
            ...['--kernels', files.kernels, '--child', v.name, image],
          ],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
        );
        if (r.status !== 0) throw new Error(`${v.name}: the child process failed (exit ${r.status})`);
        const figures = JSON.parse(r.stdout.trim().split('\n').pop());
        runs[v.name].push({ ...figures, image });
        log(`round ${round + 1}/${rounds}: ${v.name} loaded in ${(figures.loadMs / 1000).toFixed(1)} s`);
      }
    }
    const genaiImage = readFileSync(runs.genai[0].image);
    const results = {
      ...run.finish(),
      machine: { ...run.machine, openvinoGenai: openvinoGenaiVersion() },
      command: `npm run bench:fuse-load${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      durationS: Math.round((Date.now() - started) / 1000),
      model: path.relative(ROOT, files.model),
      loras: { xray: path.relative(ROOT, files.xray), kernels: `${layerCount.kernels} random 3x3 layers of rank 4` },
      rounds,
      size: files.size,
      steps: CALL.steps,
      guidance: CALL.guidanceScale,
      variants: VARIANTS.map((v) => {
        const rs = runs[v.name];
        const out = {
          name: v.name,
          label: v.label,
          layers: Object.keys(v.adapters(files)).reduce((n, a) => n + layerCount[a], 0),
          loadMs: summary(rs.map((x) => x.loadMs)),
          rssAfterLoadMb: summary(rs.map((x) => x.rssAfterLoadMb)),
          rssMb: summary(rs.map((x) => x.rssMb)),
        };
        if (v.name === 'multilora') out.versusGenai = meanAbsDiff(readFileSync(rs[0].image), genaiImage);
        return out;
      }),
    };
    if (args.small) {
      console.log(JSON.stringify(results, null, 2));
      return;
    }
    writeFileSync(path.join(ROOT, FUSE_LOAD_RESULTS), `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote ${FUSE_LOAD_RESULTS}`);
    const doc = path.join(ROOT, 'docs', 'LORA-FORMATS.md');
    writeFileSync(doc, renderFuseLoadDoc(readFileSync(doc, 'utf8'), results));
    log('wrote the table of docs/LORA-FORMATS.md');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const task = args.child ? child(args.child, process.argv.at(-1)) : main();
task.catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
