// `multilora generate "<prompt>"`: one run of text to image, written as PNG or JPEG.
import { randomInt } from 'node:crypto';
import path from 'node:path';

import { inspectModel } from '../core/model';
import type { GenerateOptions, GeneratorName, Image, SchedulerName } from '../core/options';
import { Pipeline } from '../core/pipeline';
import { MAX_SEED, bounds } from '../core/schema';
import { UsageError, checkOutputFile, numberedFiles, outputFormat, parseInteger, parseNumber, usage } from './args';
import { modelDir, planAdapters, printWarning, seconds, type ModelFlags } from './common';
import { encodeImage, writeOutput } from './output';
import { createProgress } from './progress';

export interface GenerateFlags extends ModelFlags {
  use?: string[];
  seed?: string;
  randomSeed?: boolean;
  generator?: GeneratorName;
  width?: string;
  height?: string;
  steps?: string;
  guidance?: string;
  negative?: string;
  n?: string;
  scheduler?: SchedulerName;
  applyTemplate?: boolean;
  out?: string;
  quality?: string;
  json?: boolean;
}

/** A numeric flag of generate, in the bounds of its option (lib/core/schema.ts). */
function flagValue(text: string, flag: string, key: 'steps' | 'numImages'): number {
  const { min, max } = bounds(key);
  return parseInteger(text, flag, min, max);
}

/** Runs the command; resolves with the exit status. */
export async function generateCommand(prompt: string, flags: GenerateFlags): Promise<number> {
  // Everything the command line can get wrong is checked before the model is read.
  const seed =
    flags.seed === undefined
      ? randomInt(0, MAX_SEED + 1)
      : parseInteger(flags.seed, '--seed', bounds('seed').min, MAX_SEED);
  const count = flags.n === undefined ? 1 : flagValue(flags.n, '--n', 'numImages');
  const quality = flags.quality === undefined ? 90 : parseInteger(flags.quality, '--quality', 1, 100);
  const options: GenerateOptions = { seed };
  if (flags.generator !== undefined) options.generator = flags.generator;
  if (flags.steps !== undefined) options.steps = flagValue(flags.steps, '--steps', 'steps');
  if (flags.guidance !== undefined) {
    const { min, max } = bounds('guidanceScale');
    options.guidanceScale = parseNumber(flags.guidance, '--guidance', min, max);
  }
  if (flags.negative !== undefined) options.negativePrompt = flags.negative;
  if (flags.scheduler !== undefined) options.scheduler = flags.scheduler;
  if (flags.applyTemplate) options.applyTemplate = true;
  const out = flags.out ?? `multilora-${seed}.png`;
  const format = outputFormat(out);
  if (out === '-' && flags.json) throw new UsageError('--json and --out - both write to stdout: choose one');
  if (out === '-' && count > 1) throw new UsageError('--out - writes one image: leave out --n, or write files');
  for (const file of numberedFiles(out, count)) checkOutputFile(file);

  const dir = modelDir(flags);
  const model = inspectModel(dir); // ERR_MODEL_NOT_FOUND / ERR_MODEL_INVALID before anything slow
  for (const side of ['width', 'height'] as const) {
    const text = flags[side];
    if (text === undefined) continue;
    const value = parseInteger(text, `--${side}`, model.vaeScaleFactor, bounds(side).max);
    if (value % model.vaeScaleFactor !== 0) {
      throw usage(`a multiple of ${model.vaeScaleFactor} (the model's VAE scale factor)`, `--${side}`, text);
    }
    options[side] = value;
  }
  const plan = planAdapters(flags, true);
  options.adapters = plan.use;

  // Human output goes to stderr when stdout carries the image or the JSON summary.
  const human = out === '-' || flags.json ? process.stderr : process.stdout;
  const say = (line: string): void => void human.write(`${line}\n`);

  // Ctrl-C: while generating, abort through the signal (exit 130 once GenAI stops); otherwise leave at once.
  const controller = new AbortController();
  let generating = false;
  const onSigint = (): void => {
    if (generating && !controller.signal.aborted) controller.abort(new Error('SIGINT'));
    else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  try {
    say(`seed ${seed}`);
    const loadStart = performance.now();
    const pipeline = await Pipeline.load(dir, { adapters: plan.specs, onWarning: printWarning });
    const loadMs = performance.now() - loadStart;
    say(`loaded ${model.dir} (${model.pipelineClass}) in ${seconds(loadMs)}`);
    try {
      const progress = createProgress();
      options.onProgress = (event) => progress.update(event);
      options.signal = controller.signal;
      const generateStart = performance.now();
      let images: Image[];
      generating = true;
      try {
        images =
          count === 1
            ? [await pipeline.generate(prompt, options)]
            : await pipeline.generate(prompt, { ...options, numImages: count });
      } finally {
        generating = false;
        progress.stop();
      }
      const generateMs = performance.now() - generateStart;
      const files = numberedFiles(out, images.length);
      for (const [i, image] of images.entries()) await writeOutput(files[i], encodeImage(image, format, quality));
      const first = images[0];
      const metrics = first.metrics;
      const steps = options.steps ?? pipeline.defaults.steps;
      const guidanceScale = options.guidanceScale ?? pipeline.defaults.guidanceScale;
      const adapters = Object.entries(plan.use).map(([name, alpha]) => ({
        name,
        alpha,
        path: pipeline.adapters.get(name)?.path,
      }));
      for (const file of files)
        say(
          file === '-'
            ? `wrote a ${first.width}x${first.height} PNG to stdout`
            : `wrote ${file} (${first.width}x${first.height})`,
        );
      say(
        `seed ${first.seed}${options.generator === 'torch' ? ' (torch generator)' : ''} · ${steps} steps · guidance ${guidanceScale} · ` +
          (adapters.length ? adapters.map((a) => `${a.name}:${a.alpha}`).join(', ') : 'no adapters'),
      );
      say(
        `load ${seconds(loadMs)} · generate ${seconds(generateMs)} (GenAI: ${seconds(metrics.totalMs)}, ` +
          `${seconds(metrics.stepMs.mean)}/step, VAE decoder ${seconds(metrics.vaeDecoderMs)})`,
      );
      if (flags.json) {
        const summary = {
          files: files.map((f) => path.resolve(f)),
          seed: first.seed,
          generator: options.generator ?? 'genai',
          width: first.width,
          height: first.height,
          steps,
          guidanceScale,
          prompt,
          model: model.dir,
          adapters,
          timings: { loadMs, generateMs, metrics },
        };
        await writeOutput('-', Buffer.from(`${JSON.stringify(summary, null, 2)}\n`));
      }
    } finally {
      await pipeline.dispose();
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  return 0;
}
