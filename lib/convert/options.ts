// What convert() takes and gives: its options, checked once (checkOptions), its progress events and its result.
import path from 'node:path';

import type { LoraScale } from '../lora/format';
import type { ModelFamily } from '../core/model';
import { finite, invalid, knownKeys, object, reading, string } from '../core/validate';

export type WeightFormat = 'fp32' | 'fp16' | 'int8';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['fp32', 'fp16', 'int8'];

/** A LoRA to fuse into the weights before the export. */
export interface FuseLora {
  /** A .safetensors LoRA, in any format multilora reads (kohya, PEFT/diffusers, ...). */
  path: string;
  /** How strongly: the alpha a call would give it. Default 1. */
  alpha?: number;
  /** What alpha means, as for adapters (AdapterSpec.scale): 'genai' (the default) or 'diffusers'. */
  scale?: LoraScale;
}

/** The schedulers GenAI 2026.3 runs, by multilora's names (as in GenerateOptions.scheduler), and their diffusers classes. */
export const CONVERT_SCHEDULERS = {
  lcm: 'LCMScheduler',
  ddim: 'DDIMScheduler',
  euler: 'EulerDiscreteScheduler',
  'euler-ancestral': 'EulerAncestralDiscreteScheduler',
  pndm: 'PNDMScheduler',
  'flow-match-euler': 'FlowMatchEulerDiscreteScheduler',
} as const;

export type ConvertScheduler = keyof typeof CONVERT_SCHEDULERS;

export type ConvertPhase = 'check' | 'setup' | 'download' | 'load' | 'fuse' | 'export' | 'verify' | 'done';

export interface ConvertProgress {
  phase: ConvertPhase;
  message: string;
  /** For the export: the share of the model's parts written so far, 0 to 1. */
  fraction?: number;
  /** Since convert() was called. */
  elapsedMs: number;
}

export interface ConvertOptions {
  /** How the IR stores its weights: 'fp32', 'fp16' (the default: half the disk, same speed on CPU) or 'int8'. */
  weightFormat?: WeightFormat;
  /** LoRAs fused into the weights before the export, in order (as the tutorial fuses LCM-LoRA into SDXL). */
  fuseLora?: FuseLora[];
  /** optimum-intel's task. Only 'text-to-image' (the default); its IR serves imageToImage() and inpaint() too. */
  task?: 'text-to-image';
  /** Replace an output folder that exists and is not empty (only once the new model works). Default false. */
  force?: boolean;
  /** Load the result with Pipeline.load and generate one small image before moving it into place. Default true. */
  verify?: boolean;
  /**
   * The converted model's default scheduler, in place of the one it came with: e.g. 'lcm' for a model with LCM-LoRA
   * fused, as the tutorial sets LCMScheduler before its export. Default: the model's own.
   */
  scheduler?: ConvertScheduler;
  /**
   * A folder with a diffusers AutoencoderTiny (TAESD for SD 1.5, TAESDXL for SDXL): its decoder replaces the model's
   * VAE decoder, which makes a draft model. Decoding takes a small fraction of the full VAE's time, at the cost of
   * detail (the tiny decoder approximates the full one). The VAE encoder stays the model's. See docs/CONVERT.md.
   */
  tinyVae?: string;
  /** A branch, tag or commit, for a Hub id. */
  revision?: string;
  signal?: AbortSignal;
  onProgress?: (event: ConvertProgress) => void;
}

export interface FusedReport {
  path: string;
  alpha: number;
  /** The LoRA's layers, and how many of the model's layers they changed. */
  layers: number;
  fusedLayers: number;
  /** Layers that match nothing in the model (left out, as GenAI leaves them out at generate). */
  unmatched: number;
}

export interface ConvertResult {
  outDir: string;
  /** The diffusers folder converted: the source, or where the Hub's files were downloaded. */
  sourceDir: string;
  pipelineClass: string;
  family: ModelFamily;
  weightFormat: WeightFormat;
  fused: FusedReport[];
  /** The output's size on disk. */
  bytes: number;
  warnings: string[];
  /** The check image: its size and how long load and generate took. Absent with verify: false. */
  verified?: { width: number; height: number; steps: number; loadMs: number; generateMs: number };
  elapsedMs: number;
}

/** ConvertOptions, checked: LoRA paths resolved, defaults filled in. */
export interface Checked {
  weightFormat: WeightFormat;
  fuseLora: Array<Required<FuseLora>>;
  force: boolean;
  verify: boolean;
  scheduler?: ConvertScheduler;
  /** The AutoencoderTiny folder, absolute. */
  tinyVae?: string;
  revision?: string;
  signal?: AbortSignal;
  onProgress?: (event: ConvertProgress) => void;
}

const OPTION_KEYS = [
  'weightFormat',
  'fuseLora',
  'task',
  'force',
  'verify',
  'scheduler',
  'tinyVae',
  'revision',
  'signal',
  'onProgress',
];

/** Checks the convert options, once, and fills in their defaults. */
export function checkOptions(options: unknown): Checked {
  const opts = object(options, 'options');
  knownKeys(opts, OPTION_KEYS, 'the convert options');
  const read = <T>(key: string): T => reading(`options.${key}`, () => opts[key] as T);
  const weightFormat = read<unknown>('weightFormat') ?? 'fp16';
  if (!WEIGHT_FORMATS.includes(weightFormat as WeightFormat)) {
    throw invalid(
      WEIGHT_FORMATS.map((f) => `"${f}"`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1'),
      'options.weightFormat',
      weightFormat,
    );
  }
  const task = read<unknown>('task') ?? 'text-to-image';
  if (task !== 'text-to-image') {
    throw invalid('"text-to-image" (its IR serves imageToImage() and inpaint() as well)', 'options.task', task);
  }
  const checked: Checked = { weightFormat: weightFormat as WeightFormat, fuseLora: [], force: false, verify: true };
  for (const key of ['force', 'verify'] as const) {
    const value = read<unknown>(key);
    if (value === undefined) continue;
    if (typeof value !== 'boolean') throw invalid('a boolean', `options.${key}`, value);
    checked[key] = value;
  }
  const fuse = read<unknown>('fuseLora');
  if (fuse !== undefined) {
    if (!Array.isArray(fuse)) throw invalid('an array of { path, alpha?, scale? }', 'options.fuseLora', fuse);
    if (fuse.length > 64) throw invalid('at most 64 LoRAs', 'options.fuseLora', fuse);
    for (let i = 0; i < fuse.length; i++) {
      const label = `options.fuseLora[${i}]`;
      const entry = object(fuse[i], label);
      knownKeys(entry, ['path', 'alpha', 'scale'], label);
      const file = string(entry.path, `${label}.path`, { nonEmpty: true });
      const alpha = entry.alpha === undefined ? 1 : finite(entry.alpha, `${label}.alpha`, -100, 100);
      const scale = entry.scale ?? 'genai';
      if (scale !== 'genai' && scale !== 'diffusers') throw invalid('"genai" or "diffusers"', `${label}.scale`, scale);
      checked.fuseLora.push({ path: path.resolve(file), alpha, scale });
    }
  }
  const scheduler = read<unknown>('scheduler');
  if (scheduler !== undefined) {
    if (typeof scheduler !== 'string' || !Object.hasOwn(CONVERT_SCHEDULERS, scheduler)) {
      throw invalid(`one of ${Object.keys(CONVERT_SCHEDULERS).join(', ')}`, 'options.scheduler', scheduler);
    }
    checked.scheduler = scheduler as ConvertScheduler;
  }
  const tinyVae = read<unknown>('tinyVae');
  if (tinyVae !== undefined) checked.tinyVae = path.resolve(string(tinyVae, 'options.tinyVae', { nonEmpty: true }));
  const revision = read<unknown>('revision');
  if (revision !== undefined)
    checked.revision = string(revision, 'options.revision', { nonEmpty: true, maxLength: 256 });
  const signal = read<unknown>('signal');
  if (signal !== undefined) {
    if (!(signal instanceof AbortSignal)) throw invalid('an AbortSignal', 'options.signal', signal);
    checked.signal = signal;
  }
  const onProgress = read<unknown>('onProgress');
  if (onProgress !== undefined) {
    if (typeof onProgress !== 'function') throw invalid('a function', 'options.onProgress', onProgress);
    checked.onProgress = onProgress as Checked['onProgress'];
  }
  return checked;
}
