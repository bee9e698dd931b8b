// The options of a generate call: their public types, and the checks that turn them into what the addon reads.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { ModelFamily } from './model';
import type { NativeGenerateOptions, NativeRgb } from './binding';
import { MultiloraError } from './errors';
import { imageSteps } from './genai-quirks';
import { decodePng, pngSize, toRgb } from './png';
import {
  ALPHA,
  GENERATE_KEYS,
  GENERATORS as GENERATOR_NAMES,
  IMAGE_KEYS,
  MAX_PROMPT,
  MAX_SEED,
  MAX_SIDE,
  PROMPT_KEYS,
  type CheckPolicy,
  type OptionKey,
  checkChoice,
  checkFlag,
  checkNumber,
  checkText,
  limitOf,
  optionName,
} from './schema';
import { closest, finite, integer, invalid, isPlainObject, knownKeys, object, reading, string } from './validate';

export { MAX_IMAGES } from './schema';

/**
 * Which adapters a call uses: a name, a list of names (each at its default alpha), a `{ name: alpha }` map, or
 * `null` / `{}` / `[]` for none.
 */
export type AdapterSelection = string | readonly string[] | Readonly<Record<string, number>> | null;

/** Schedulers GenAI implements, by name; 'auto' is the one the model ships with. */
export const SCHEDULERS = {
  auto: 0,
  lcm: 1,
  ddim: 2,
  euler: 3,
  'flow-match-euler': 4,
  pndm: 5,
  'euler-ancestral': 6,
} as const;

export type SchedulerName = keyof typeof SCHEDULERS;

/** One denoising step done. */
export interface ProgressEvent {
  /** 1-based. */
  step: number;
  total: number;
  /** Since the call started running (not since it was queued). */
  elapsedMs: number;
  /** With `preview: true`: a small RGB picture of the current latent, at latent resolution. */
  preview?: { width: number; height: number; channels: 3; data: Buffer };
}

export interface GenerateOptions {
  /** Default: none. */
  adapters?: AdapterSelection;
  /** Wrap the prompt in the chosen adapters' templates and add their negative prompts, as the tutorial does. */
  applyTemplate?: boolean;
  /** 0 to 2^32-1. Default: a random seed, reported as `image.seed`. */
  seed?: number;
  /**
   * What turns the seed into the initial noise:
   * - 'genai' (the default): GenAI's own generator; the same bytes as Python `openvino_genai` with `rng_seed`.
   * - 'torch': torch's CPU generator; the initial latents equal, bit for bit,
   *   `torch.randn(shape, generator=torch.Generator().manual_seed(seed))`, so the seeds of diffusers and of
   *   tutorials that pass a torch generator give the same noise (and the same images as Python `openvino_genai`
   *   given `TorchGenerator(seed)`). Schedulers and image-to-image that draw more noise go on drawing from it.
   */
  generator?: GeneratorName;
  /** Pixels, a multiple of the model's VAE scale factor. Default: the model's. */
  width?: number;
  height?: number;
  /** Denoising steps. Default: the model's. */
  steps?: number;
  /** Classifier-free guidance; 1 or less turns it off. Default: the model's. */
  guidanceScale?: number;
  negativePrompt?: string;
  /** The prompt for the second text encoder (SDXL, SD3, Flux). Default: the prompt. */
  prompt2?: string;
  /** The prompt for the third text encoder (SD3). Default: the prompt. */
  prompt3?: string;
  negativePrompt2?: string;
  negativePrompt3?: string;
  /** T5 token limit (SD3, Flux). Default: the model's. */
  maxSequenceLength?: number;
  /** The scheduler for this call. Default: 'auto', the model's own. */
  scheduler?: SchedulerName;
  /** Called after every step, on the JS thread. Events are dropped, never queued up, when JS falls behind. */
  onProgress?: (event: ProgressEvent) => void;
  /** Attach a cheap latent preview to each progress event. */
  preview?: boolean;
  /** Stops the call: at the next step when running, at once when queued. It rejects with an AbortError. */
  signal?: AbortSignal;
  /**
   * How the image bytes reach you:
   * - 'copy' (the default): `image.data` is a copy that is yours to keep.
   * - 'borrow': `image.data` wraps GenAI's own output memory, with no copy. GenAI writes the next result of this
   *   pipeline into that same memory (or frees it), so the Buffer is lent only until the next call on this pipeline
   *   starts, or until the pipeline is disposed or its adapters change: then it is detached (its length becomes 0),
   *   never silently changed. Use or copy it before your next call. The copy it saves costs about 0.5 ms at
   *   512x512 (README, "Zero-copy output"): borrow only where you hand the bytes on at once.
   */
  output?: OutputMode;
}

/** The generators `options.generator` can name. */
export type GeneratorName = 'genai' | 'torch';
export const GENERATORS: readonly GeneratorName[] = GENERATOR_NAMES;

/** How the image bytes reach the caller: see `GenerateOptions.output`. */
export type OutputMode = 'copy' | 'borrow';

/** Options of image-to-image and inpainting calls: the size comes from the input image. */
export interface ImageToImageOptions extends Omit<GenerateOptions, 'width' | 'height'> {
  /** How much noise the input image gets, 0 to 1: 0 keeps it, 1 ignores it. Default: the model's. */
  strength?: number;
}

/**
 * An input image: PNG bytes, or raw pixels, row-major with no padding: 3 channels (RGB), 4 (RGBA: alpha is
 * dropped) or 1 (grey). Width and height must be multiples of the model's VAE scale factor.
 */
export type ImageInput = Buffer | { data: Buffer; width: number; height: number; channels?: 1 | 3 | 4 };
// (An Image returned by generate() is an ImageInput.)

/** Options of a call that makes several images from one prompt in one batch. */
export interface BatchOptions extends GenerateOptions {
  /** How many images, 1 to 16. They share the seed: the same seed and numImages give the same batch. */
  numImages: number;
}

/** GenAI's timings of the call, in milliseconds. */
export interface Metrics {
  /** Model read and compile, when the pipeline was loaded. */
  loadMs: number;
  /** The whole generate. */
  totalMs: number;
  /** One denoising step: mean and standard deviation. */
  stepMs: { mean: number; std: number };
  /** One UNet or transformer inference, mean. */
  denoiserMs: number;
  /** Each text encoder. */
  textEncodersMs: Record<string, number>;
  vaeDecoderMs: number;
  vaeEncoderMs: number;
}

/** One generated image: RGB bytes, row-major, no padding. */
export interface Image {
  width: number;
  height: number;
  channels: 3;
  data: Buffer;
  /** The seed that made it: pass it back to get the same bytes. */
  seed: number;
  /** GenAI's timings of the call that made it. */
  metrics: Metrics;
}

/** What the model uses when a call leaves an option out. */
export interface ModelDefaults {
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  /** Whether imageToImage() and inpaint() are available: the model has a VAE encoder GenAI can use. */
  imageInputs: boolean;
}

/** What the checks read of a registered adapter (an Adapter, or what a pool knows of one). */
export interface CheckAdapter {
  readonly name: string;
  readonly alpha: number;
  readonly negativePrompt?: string | undefined;
  wrap(prompt: string): string;
}

/** What the checks need to know of the pipeline. */
export interface CheckContext {
  vaeScaleFactor: number;
  /** The registered adapters: what a call may name, with their defaults. */
  adapters: readonly CheckAdapter[];
  /** The adapters are fused into the weights: calls cannot choose them. */
  fused: boolean;
  /** Whether the model takes image-to-image and inpainting calls (ModelDefaults.imageInputs). */
  imageInputs?: boolean;
  /** The model's family and default guidance: which prompts its GenAI pipeline takes (unusedPrompt). */
  family?: ModelFamily;
  guidanceScale?: number;
  /** The model's default steps: with the strength, how many steps an image-to-image call really runs. */
  steps?: number;
  /** Schedulers that GenAI would refuse for this model, with why (refusedSchedulers). */
  refusedSchedulers?: Partial<Record<SchedulerName, string>>;
  /** Schedulers that GenAI gets wrong below some number of steps for this model, with why (schedulerMinSteps). */
  schedulerMinSteps?: Partial<Record<SchedulerName, { steps: number; why: string }>>;
  /** A service's limits and its names for the options (the server's); none for the library's own calls. */
  policy?: CheckPolicy | undefined;
}

/** The model's scheduler/scheduler_config.json, or undefined when it cannot be read (GenAI then says what is wrong). */
export function readSchedulerConfig(modelDir: string): Record<string, unknown> | undefined {
  try {
    const config: unknown = JSON.parse(readFileSync(path.join(modelDir, 'scheduler', 'scheduler_config.json'), 'utf8'));
    return isPlainObject(config) ? config : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The schedulers that GenAI 2026.3 refuses for a model of `family` whose scheduler config is `config`
 * (readSchedulerConfig), with why. Its DDIM asserts that the config turns clip_sample off (DDIMScheduler::Config
 * defaults it to true, as diffusers does).
 */
export function refusedSchedulers(
  config: Record<string, unknown> | undefined,
  family: ModelFamily,
): Partial<Record<SchedulerName, string>> {
  const refused: Partial<Record<SchedulerName, string>> = {};
  if (family === 'sd' || family === 'sdxl' || family === 'lcm') {
    // ischeduler.hpp: "Scheduler doesn't support int timesteps"
    refused['flow-match-euler'] =
      `it is for flow-matching models (SD3, Flux), and this ${family} model's UNet takes integer timesteps`;
  }
  if (!config) return refused; // GenAI will say what is wrong with the folder
  if (config.skip_prk_steps !== true) {
    // pndm.cpp: "'skip_prk_steps=false' case isn't supported"
    refused.pndm =
      "GenAI's PNDM scheduler runs only with skip_prk_steps, which this model's scheduler config " +
      (config.skip_prk_steps === undefined ? 'leaves at its default, false' : 'turns off');
  }
  if (config.clip_sample !== false) {
    refused.ddim =
      "GenAI's DDIM scheduler does not implement clip_sample, which this model's scheduler config " +
      (config.clip_sample === undefined ? 'leaves at its default, true' : 'turns on');
  }
  return refused;
}

/** The strength of GenAI 2026.3's image-to-image and inpainting calls that give none (as in diffusers). */
const DEFAULT_STRENGTH = 0.8;

/** The options of a checked call as the addon reads them, but for the adapters, which the call keeps by name. */
export type CheckedOptions = Omit<NativeGenerateOptions, 'adapters'>;

/**
 * A checked call. Its adapters stay names until it runs: the pipeline that runs it resolves them against the set it
 * has then (one removed meanwhile fails the call).
 */
export interface CheckedCall {
  prompt: string;
  options: CheckedOptions;
  /** [name, alpha] of each adapter the call uses, in the order it names them; none in fuse mode. */
  adapters: Array<[string, number]>;
  /** As checked: the caller's options object is not read again. */
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

/**
 * Why this model's GenAI pipeline would refuse this prompt (the check_inputs of each pipeline in GenAI 2026.3), or
 * undefined when it takes it: extra prompts need the text encoders they are for, and negative prompts need
 * classifier-free guidance (guidance scale above 1), which LCM and Flux do not do.
 */
function unusedPrompt(key: (typeof PROMPT_KEYS)[number], out: CheckedOptions, ctx: CheckContext): string | undefined {
  const family = ctx.family;
  const encoders = family === 'sd' || family === 'lcm' ? 1 : family === 'sdxl' || family === 'flux' ? 2 : 3;
  const index = key.endsWith('3') ? 3 : key.endsWith('2') ? 2 : 1;
  if (index > encoders)
    return `this ${family} model has ${encoders === 1 ? 'one text encoder' : `${encoders} text encoders`}`;
  if (key.startsWith('negative')) {
    if (family === 'lcm' || family === 'flux') return `this ${family} model takes no negative prompt`;
    const guidance = out.guidanceScale ?? ctx.guidanceScale;
    if (guidance !== undefined && !(guidance > 1)) {
      return `a negative prompt needs a guidance scale above 1, and this call's is ${guidance}`;
    }
  }
  if (family === 'flux' && key === 'prompt3') return 'Flux takes no third prompt';
  return undefined;
}

/** A width or height of an image to make: an integer multiple of the model's VAE scale factor, up to 8192. */
export function checkSide(value: unknown, name: string, scale: number): number {
  const side = integer(value, name, scale, MAX_SIDE);
  if (side % scale !== 0) throw invalid(`a multiple of ${scale} (the model's VAE scale factor)`, name, side);
  return side;
}

/**
 * For tests (through lib/internal.ts): told of every check of a call, to show that a call is checked once per
 * process: 'call' for checkGenerate, 'enqueue' for RemoteQueue's check of a job (lib/remote/queue.ts).
 */
export const checkHooks: { onCheck: ((check: 'call' | 'enqueue') => void) | undefined } = { onCheck: undefined };

/** Checks a generate call; every failure is a MultiloraError with code ERR_INVALID_ARGUMENT. */
export function checkGenerate(
  prompt: unknown,
  options: unknown,
  ctx: CheckContext,
  task: 'text' | 'image' = 'text',
): CheckedCall {
  checkHooks.onCheck?.('call');
  const policy = ctx.policy;
  const at = (key: OptionKey): [string, number | undefined] => [optionName(key, policy), limitOf(key, policy)];
  string(prompt, 'prompt', { maxLength: policy?.limits?.prompt ?? MAX_PROMPT });
  const opts = object(options, 'options');
  knownKeys(
    opts,
    task === 'text' ? GENERATE_KEYS : IMAGE_KEYS,
    task === 'text' ? 'the generate options' : 'the options',
  );
  if (ctx.fused && opts.adapters !== undefined) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      'This pipeline was loaded with mode "fuse": its adapters are fused into the weights at their alphas, and calls ' +
        'cannot choose them. Leave options.adapters out, change the set with pipeline.adapters, or load with mode "dynamic"',
    );
  }
  // Fused adapters all apply, at their default alphas (that is what their templates then wrap).
  const selected = ctx.fused
    ? ctx.adapters.map((a): [CheckAdapter, number] => [a, a.alpha])
    : selectAdapters(opts.adapters, ctx.adapters, policy);
  const out: CheckedOptions = {
    seed: opts.seed === undefined ? randomInt(0, MAX_SEED + 1) : checkNumber('seed', opts.seed, ...at('seed')),
  };
  if (opts.generator !== undefined) out.generator = checkChoice('generator', opts.generator, at('generator')[0]);
  if (opts.output !== undefined) out.output = checkChoice('output', opts.output);
  for (const side of ['width', 'height'] as const) {
    if (opts[side] !== undefined) out[side] = checkSide(opts[side], `options.${side}`, ctx.vaeScaleFactor);
  }
  if (opts.steps !== undefined) out.steps = checkNumber('steps', opts.steps, ...at('steps'));
  if (opts.strength !== undefined) out.strength = checkNumber('strength', opts.strength);
  if (task === 'image') {
    // None is refused here, strength 0 included: docs/GENAI-BUGS.md#image-no-steps.
    const steps = out.steps ?? ctx.steps;
    const strength = out.strength ?? DEFAULT_STRENGTH;
    if (steps !== undefined && imageSteps(steps, strength) < 1) {
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `Expected steps x strength of at least 1 but received ${steps} x ${strength}: GenAI runs int(steps x strength) ` +
          'denoising steps of an input image, and none is too few; raise steps or strength',
      );
    }
  }
  if (opts.guidanceScale !== undefined)
    out.guidanceScale = checkNumber('guidanceScale', opts.guidanceScale, ...at('guidanceScale'));
  for (const key of PROMPT_KEYS) {
    if (opts[key] !== undefined) out[key] = checkText(key, opts[key], ...at(key));
  }
  if (opts.maxSequenceLength !== undefined)
    out.maxSequenceLength = checkNumber('maxSequenceLength', opts.maxSequenceLength);
  if (opts.numImages !== undefined) out.numImages = checkNumber('numImages', opts.numImages, ...at('numImages'));
  if (opts.scheduler !== undefined) {
    if (typeof opts.scheduler !== 'string' || !Object.hasOwn(SCHEDULERS, opts.scheduler)) {
      throw invalid(`one of ${Object.keys(SCHEDULERS).join(', ')}`, 'options.scheduler', opts.scheduler);
    }
    const refused = ctx.refusedSchedulers?.[opts.scheduler as SchedulerName];
    if (refused) {
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `options.scheduler ${JSON.stringify(opts.scheduler)} cannot be used: ${refused}`,
      );
    }
    out.scheduler = SCHEDULERS[opts.scheduler as SchedulerName];
  }
  const scheduler = (opts.scheduler ?? 'auto') as SchedulerName;
  const fewest = ctx.schedulerMinSteps?.[scheduler];
  const steps = out.steps ?? ctx.steps;
  if (fewest && steps !== undefined && steps < fewest.steps) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected at least ${fewest.steps} steps with scheduler ${JSON.stringify(scheduler)}` +
        `${scheduler === 'auto' ? " (this model's own, PNDM)" : ''} but received ${steps}: ${fewest.why}; ` +
        'give more steps or another scheduler (options.scheduler)',
    );
  }
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') {
    throw invalid('a function', 'options.onProgress', opts.onProgress);
  }
  if (opts.preview !== undefined) out.preview = checkFlag('preview', opts.preview, at('preview')[0]);
  if (opts.signal !== undefined && !reading('options.signal', () => opts.signal instanceof AbortSignal)) {
    throw invalid('an AbortSignal', 'options.signal', opts.signal);
  }
  let text = prompt as string;
  if (opts.applyTemplate !== undefined) checkFlag('applyTemplate', opts.applyTemplate, at('applyTemplate')[0]);
  if (opts.applyTemplate) {
    // As the tutorial does: the adapters' templates wrap the prompt (in the order the call names them), and their
    // negative prompts join the call's own.
    for (const [adapter] of selected) text = adapter.wrap(text);
    const negatives = [out.negativePrompt, ...selected.map(([adapter]) => adapter.negativePrompt)].filter(
      (n): n is string => n !== undefined && n !== '',
    );
    // The adapters' negatives only where the model can use them (GenAI refuses a negative prompt otherwise).
    if (negatives.length && (out.negativePrompt !== undefined || !unusedPrompt('negativePrompt', out, ctx))) {
      out.negativePrompt = negatives.join(', ');
    }
  }
  for (const key of PROMPT_KEYS) {
    const why = out[key] === undefined ? undefined : unusedPrompt(key, out, ctx);
    if (why) throw new MultiloraError('ERR_INVALID_ARGUMENT', `options.${key} cannot be used: ${why}; leave it out`);
  }
  const adapters = ctx.fused ? [] : selected.map(([adapter, alpha]): [string, number] => [adapter.name, alpha]);
  const call: CheckedCall = { prompt: text, options: out, adapters };
  if (opts.signal !== undefined) call.signal = opts.signal as AbortSignal;
  if (opts.onProgress !== undefined) call.onProgress = opts.onProgress as (event: ProgressEvent) => void;
  return call;
}

/** Resolves a selection to [adapter, alpha] pairs, in the order the call names them (an adapter's own alpha by default). */
function selectAdapters<T extends { readonly name: string; readonly alpha: number }>(
  selection: unknown,
  registered: readonly T[],
  policy?: CheckPolicy,
): Array<[T, number]> {
  const base = optionName('adapters', policy);
  const bound = policy?.limits?.alpha ?? ALPHA.max;
  if (selection === undefined || selection === null) return [];
  let entries: Array<[string, number | undefined]>;
  if (typeof selection === 'string') {
    entries = [[selection, undefined]];
  } else if (reading(base, () => Array.isArray(selection))) {
    // Read once, holes included (map() would skip them and leave holes for the addon), and never more names than
    // there are adapters (a length of 2^32-1 would otherwise be walked).
    const names = reading(base, () => {
      const list = selection as unknown[];
      const length = list.length;
      if (length > registered.length) {
        throw invalid(
          `a list of at most ${registered.length} adapter names (one per registered adapter)`,
          base,
          selection,
        );
      }
      return Array.from({ length }, (_, i) => list[i]);
    });
    entries = names.map((name, i) => [string(name, `${base}[${i}]`, { nonEmpty: true }), undefined]);
  } else if (isPlainObject(selection)) {
    entries = Object.entries(object(selection, base)).map(([name, alpha]) => [
      name,
      finite(alpha, `${base}[${JSON.stringify(name)}]`, -bound, bound),
    ]);
  } else {
    throw invalid('an adapter name, a list of names, a { name: alpha } map or null', base, selection);
  }
  const seen = new Set<string>();
  return entries.map(([name, alpha]) => {
    const adapter = registered.find((a) => a.name === name);
    if (!adapter) {
      const guess = closest(
        name,
        registered.map((a) => a.name),
      );
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        registered.length
          ? `Unknown adapter ${JSON.stringify(name)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}; ` +
              `this pipeline has ${registered.map((a) => JSON.stringify(a.name)).join(', ')}`
          : `Unknown adapter ${JSON.stringify(name)}: this pipeline has no adapters. Register adapters when loading it ` +
              `(Pipeline.load(dir, { adapters: { name: { path } } })) or with pipeline.adapters.add()`,
      );
    }
    if (seen.has(name))
      throw new MultiloraError('ERR_INVALID_ARGUMENT', `Adapter ${JSON.stringify(name)} is named twice`);
    seen.add(name);
    return [adapter, alpha ?? adapter.alpha];
  });
}

/** The sides of an input image: integers up to 8192, multiples of the model's VAE scale factor. */
function checkImageSize(width: number, height: number, name: string, vaeScaleFactor: number): void {
  const sides = { width, height };
  for (const side of ['width', 'height'] as const) {
    integer(sides[side], `${name}.${side}`, 1, MAX_SIDE);
    if (sides[side] % vaeScaleFactor !== 0 || sides[side] < vaeScaleFactor) {
      throw invalid(`a multiple of ${vaeScaleFactor} (the model's VAE scale factor)`, `${name}.${side}`, sides[side]);
    }
  }
}

/** Checks an input image and returns it as RGB. */
export function checkImage(value: unknown, name: string, vaeScaleFactor: number): NativeRgb {
  let image: { data: Buffer; width: number; height: number; channels: number };
  if (reading(name, () => Buffer.isBuffer(value))) {
    // The size the PNG claims is checked before it is decoded, which allocates that size.
    const claimed = pngSize(value as Buffer);
    checkImageSize(claimed.width, claimed.height, name, vaeScaleFactor);
    image = decodePng(value as Buffer);
  } else {
    // Other keys are fine: an Image from generate() is an input as it is.
    const o = object(value, name);
    if (!reading(`${name}.data`, () => Buffer.isBuffer(o.data))) throw invalid('a Buffer', `${name}.data`, o.data);
    const channels = o.channels === undefined ? 3 : o.channels;
    if (channels !== 1 && channels !== 3 && channels !== 4) throw invalid('1, 3 or 4', `${name}.channels`, channels);
    image = {
      data: o.data as Buffer,
      width: integer(o.width, `${name}.width`, 1, MAX_SIDE),
      height: integer(o.height, `${name}.height`, 1, MAX_SIDE),
      channels,
    };
    const expected = image.width * image.height * channels;
    if (image.data.length !== expected) {
      throw invalid(`${expected} bytes (${image.width}x${image.height}x${channels})`, `${name}.data`, image.data);
    }
  }
  checkImageSize(image.width, image.height, name, vaeScaleFactor);
  const data = toRgb(image.data, image.width * image.height, image.channels as 1 | 3 | 4);
  return { data, width: image.width, height: image.height };
}
