// A text-to-image pipeline with its LoRA adapters. Mirrors native/pipeline.cc.
import { randomInt } from 'node:crypto';

import { Adapter, type AdapterSpec } from './adapter';
import { native, type NativeGenerateOptions, type NativeImages, type NativePipeline, type NativeProgress } from './binding';
import { AbortError, DisposedError, MultiloraError, fromNative } from './errors';
import { inspectModel, type ModelInfo } from './model';
import { TaskQueue } from './queue';
import { finite, integer, invalid, isPlainObject, knownKeys, object, string } from './validate';

export interface LoadOptions {
  /** An OpenVINO device: 'CPU' (the default), 'GPU', 'NPU', 'AUTO'... */
  device?: string;
  /** The adapters to register, by name. GenAI fixes this set when the pipeline is built. */
  adapters?: Record<string, AdapterSpec>;
}

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
  /** 0 to 2^32-1. Default: a random seed, reported as `image.seed`. */
  seed?: number;
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
}

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
}

const LOAD_KEYS = ['device', 'adapters'] as const;
const GENERATE_KEYS = [
  'adapters',
  'seed',
  'width',
  'height',
  'steps',
  'guidanceScale',
  'negativePrompt',
  'prompt2',
  'prompt3',
  'negativePrompt2',
  'negativePrompt3',
  'maxSequenceLength',
  'scheduler',
  'onProgress',
  'preview',
  'signal',
  'numImages',
] as const;
const MAX_IMAGES = 16;
const MAX_SEED = 2 ** 32 - 1;
const MAX_SIDE = 8192;
const MAX_STEPS = 1000;
const MAX_PROMPT = 100_000;

/** A Text2ImagePipeline of OpenVINO GenAI, with the LoRA adapters it was loaded with. */
export class Pipeline {
  /** What multilora read of the model folder. */
  readonly model: ModelInfo;
  /** The model's defaults for the options a call leaves out. */
  readonly defaults: ModelDefaults;
  #native: NativePipeline | undefined;
  readonly #adapters: ReadonlyMap<string, { index: number; adapter: Adapter }>;
  readonly #queue = new TaskQueue();
  #disposing: Promise<void> | undefined;

  private constructor(model: ModelInfo, handle: NativePipeline, adapters: Adapter[]) {
    this.model = model;
    this.#native = handle;
    this.#adapters = new Map(adapters.map((adapter, index) => [adapter.name, { index, adapter }]));
    const d = handle.defaults;
    this.defaults = {
      width: d.width > 0 ? d.width : NaN,
      height: d.height > 0 ? d.height : NaN,
      steps: d.steps,
      guidanceScale: d.guidanceScale,
    };
  }

  /**
   * Reads and compiles the model in `modelDir` (an optimum-intel export), with the given adapters registered.
   * The slow parts run off the JS thread.
   */
  static async load(modelDir: string, options: LoadOptions = {}): Promise<Pipeline> {
    string(modelDir, 'modelDir', { nonEmpty: true });
    const opts = object(options, 'options');
    knownKeys(opts, LOAD_KEYS, 'the load options');
    const device = opts.device === undefined ? 'CPU' : string(opts.device, 'options.device', { nonEmpty: true });
    const specs = opts.adapters === undefined ? {} : object(opts.adapters, 'options.adapters');
    const model = inspectModel(modelDir);

    const adapters = await Promise.allSettled(
      Object.entries(specs).map(([name, spec]) => Adapter.load(name, spec as AdapterSpec)),
    );
    const loaded = adapters.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = adapters.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    try {
      if (failed) throw failed.reason;
      let handle: NativePipeline;
      try {
        handle = await native().Pipeline.load(model.dir, device, loaded.map((a) => a.handle), {});
      } catch (err) {
        throw fromNative(err);
      }
      return new Pipeline(model, handle, loaded);
    } finally {
      // The native pipeline holds its own references to the weights.
      await Promise.all(loaded.map((a) => a.dispose()));
    }
  }

  /** The names of the registered adapters, in registration order. */
  get adapterNames(): string[] {
    return [...this.#adapters.keys()];
  }

  /** Calls queued or running. */
  get pending(): number {
    return this.#queue.size;
  }

  get disposed(): boolean {
    return this.#disposing !== undefined;
  }

  /**
   * Generates one image, or with `numImages` a batch of them. Calls on one pipeline queue: they never run inside
   * GenAI at the same time. Options left out take the model's defaults; a missing seed means a random one, reported
   * as `image.seed`.
   */
  generate(prompt: string, options: BatchOptions): Promise<Image[]>;
  generate(prompt: string, options?: GenerateOptions): Promise<Image>;
  async generate(prompt: string, options: GenerateOptions | BatchOptions = {}): Promise<Image | Image[]> {
    if (this.#disposing) throw new DisposedError('The pipeline');
    const request = this.#check(prompt, options);
    const { signal, onProgress } = options as GenerateOptions;
    if (signal?.aborted) throw new AbortError(signal.reason);
    const out = await this.#run(request.prompt, request.options, signal, onProgress);
    const images = this.#images(out, request.options.seed);
    return request.options.numImages === undefined ? images[0]! : images;
  }

  /** Waits for the calls already queued, then frees the native pipeline. Later calls fail with ERR_DISPOSED. */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      await this.#queue.drain();
      const handle = this.#native;
      this.#native = undefined;
      await handle?.dispose();
    })();
    return this.#disposing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Queues one native generate; wires its AbortSignal and progress callback. */
  #run(
    prompt: string,
    options: NativeGenerateOptions,
    signal: AbortSignal | undefined,
    onProgress: ((event: ProgressEvent) => void) | undefined,
  ): Promise<NativeImages> {
    let state: 'queued' | 'running' | 'settled' = 'queued';
    let callbackError: unknown;
    let rejectQueued: ((err: unknown) => void) | undefined;
    const onAbort = (): void => {
      if (state === 'queued') rejectQueued?.(new AbortError(signal?.reason));
      else if (state === 'running') this.#native?.abort();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const progress =
      onProgress &&
      ((event: NativeProgress): void => {
        if (state !== 'running' || callbackError !== undefined) return;
        try {
          onProgress(event);
        } catch (err) {
          // A throwing callback stops the run, and the call rejects with what it threw.
          callbackError = err;
          this.#native?.abort();
        }
      });
    const task = this.#queue.run(async () => {
      if (state !== 'queued') throw new AbortError(signal?.reason); // aborted while it waited: never reaches native
      const handle = this.#native;
      if (!handle) throw new DisposedError('The pipeline');
      state = 'running';
      try {
        return await handle.generate(prompt, options, progress);
      } catch (err) {
        if (callbackError !== undefined) {
          throw new MultiloraError('ERR_CALLBACK', `onProgress threw: ${String(callbackError)}`, { cause: callbackError });
        }
        if (signal?.aborted) throw new AbortError(signal.reason);
        throw fromNative(err);
      } finally {
        state = 'settled';
        signal?.removeEventListener('abort', onAbort);
      }
    });
    if (!signal) return task;
    const aborted = new Promise<never>((_, reject) => {
      rejectQueued = (err) => {
        state = 'settled';
        signal.removeEventListener('abort', onAbort);
        reject(err);
      };
    });
    task.catch(() => undefined); // settled through the race below, or skipped after an abort while queued
    return Promise.race([task, aborted]);
  }

  #images(out: NativeImages, seed: number): Image[] {
    const m = out.metrics;
    const metrics: Metrics = {
      loadMs: m.loadMs,
      totalMs: m.totalMs,
      stepMs: { mean: m.stepMeanMs, std: m.stepStdMs },
      denoiserMs: m.denoiserMeanMs,
      textEncodersMs: m.textEncodersMs,
      vaeDecoderMs: m.vaeDecoderMs,
      vaeEncoderMs: m.vaeEncoderMs,
    };
    const size = out.width * out.height * 3;
    return Array.from({ length: out.count }, (_, i) => ({
      width: out.width,
      height: out.height,
      channels: 3 as const,
      data: out.count === 1 ? out.data : out.data.subarray(i * size, (i + 1) * size),
      seed,
      metrics,
    }));
  }

  #check(prompt: unknown, options: unknown): { prompt: string; options: NativeGenerateOptions } {
    string(prompt, 'prompt', { maxLength: MAX_PROMPT });
    const opts = object(options, 'options');
    knownKeys(opts, GENERATE_KEYS, 'the generate options');
    const out: NativeGenerateOptions = {
      seed: opts.seed === undefined ? randomInt(0, MAX_SEED + 1) : integer(opts.seed, 'options.seed', 0, MAX_SEED),
      adapters: this.#select(opts.adapters),
    };
    const scale = this.model.vaeScaleFactor;
    for (const side of ['width', 'height'] as const) {
      if (opts[side] === undefined) continue;
      const value = integer(opts[side], `options.${side}`, scale, MAX_SIDE);
      if (value % scale !== 0) throw invalid(`a multiple of ${scale} (the model's VAE scale factor)`, `options.${side}`, value);
      out[side] = value;
    }
    if (opts.steps !== undefined) out.steps = integer(opts.steps, 'options.steps', 1, MAX_STEPS);
    if (opts.guidanceScale !== undefined) out.guidanceScale = finite(opts.guidanceScale, 'options.guidanceScale', 0, 100);
    for (const key of ['negativePrompt', 'prompt2', 'prompt3', 'negativePrompt2', 'negativePrompt3'] as const) {
      if (opts[key] !== undefined) out[key] = string(opts[key], `options.${key}`, { maxLength: MAX_PROMPT });
    }
    if (opts.maxSequenceLength !== undefined) {
      out.maxSequenceLength = integer(opts.maxSequenceLength, 'options.maxSequenceLength', 1, 4096);
    }
    if (opts.numImages !== undefined) out.numImages = integer(opts.numImages, 'options.numImages', 1, MAX_IMAGES);
    if (opts.scheduler !== undefined) {
      if (typeof opts.scheduler !== 'string' || !Object.hasOwn(SCHEDULERS, opts.scheduler)) {
        throw invalid(`one of ${Object.keys(SCHEDULERS).join(', ')}`, 'options.scheduler', opts.scheduler);
      }
      out.scheduler = SCHEDULERS[opts.scheduler as SchedulerName];
    }
    if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') {
      throw invalid('a function', 'options.onProgress', opts.onProgress);
    }
    if (opts.preview !== undefined) {
      if (typeof opts.preview !== 'boolean') throw invalid('a boolean', 'options.preview', opts.preview);
      out.preview = opts.preview;
    }
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
      throw invalid('an AbortSignal', 'options.signal', opts.signal);
    }
    return { prompt: prompt as string, options: out };

  }

  #select(selection: unknown): Array<[number, number]> {
    if (selection === undefined || selection === null) return [];
    const entries: Array<[string, number | undefined]> =
      typeof selection === 'string'
        ? [[selection, undefined]]
        : Array.isArray(selection)
          ? selection.map((name, i) => [string(name, `options.adapters[${i}]`, { nonEmpty: true }), undefined])
          : isPlainObject(selection)
            ? Object.entries(selection).map(([name, alpha]) => [
                name,
                finite(alpha, `options.adapters[${JSON.stringify(name)}]`, -100, 100),
              ])
            : (() => {
                throw invalid('an adapter name, a list of names, a { name: alpha } map or null', 'options.adapters', selection);
              })();
    const seen = new Set<string>();
    return entries.map(([name, alpha]) => {
      const entry = this.#adapters.get(name);
      if (!entry) {
        const known = this.adapterNames;
        throw new MultiloraError(
          'ERR_INVALID_ARGUMENT',
          known.length
            ? `Unknown adapter ${JSON.stringify(name)}; this pipeline has ${known.map((n) => JSON.stringify(n)).join(', ')}`
            : `Unknown adapter ${JSON.stringify(name)}: this pipeline was loaded without adapters`,
        );
      }
      if (seen.has(name)) throw new MultiloraError('ERR_INVALID_ARGUMENT', `Adapter ${JSON.stringify(name)} is named twice`);
      seen.add(name);
      return [entry.index, alpha ?? entry.adapter.alpha];
    });
  }
}
