// A text-to-image pipeline with its LoRA adapters. Mirrors native/pipeline.cc.
import { randomInt } from 'node:crypto';

import { Adapter, type AdapterSpec } from './adapter';
import { native, type NativeGenerateOptions, type NativePipeline } from './binding';
import { DisposedError, MultiloraError, fromNative } from './errors';
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
}

/** One generated image: RGB bytes, row-major, no padding. */
export interface Image {
  width: number;
  height: number;
  channels: 3;
  data: Buffer;
  /** The seed that made it: pass it back to get the same bytes. */
  seed: number;
}

/** What the model uses when a call leaves an option out. */
export interface ModelDefaults {
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
}

const LOAD_KEYS = ['device', 'adapters'] as const;
const GENERATE_KEYS = ['adapters', 'seed', 'width', 'height', 'steps', 'guidanceScale', 'negativePrompt'] as const;
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
   * Generates one image. Calls on one pipeline queue: they never run inside GenAI at the same time.
   * Options left out take the model's defaults; a missing seed means a random one, reported as `image.seed`.
   */
  async generate(prompt: string, options: GenerateOptions = {}): Promise<Image> {
    if (this.#disposing) throw new DisposedError('The pipeline');
    const request = this.#check(prompt, options);
    return this.#queue.run(async () => {
      const handle = this.#native;
      if (!handle) throw new DisposedError('The pipeline');
      let out;
      try {
        out = await handle.generate(request.prompt, request.options);
      } catch (err) {
        throw fromNative(err);
      }
      return { width: out.width, height: out.height, channels: 3, data: out.data, seed: request.options.seed };
    });
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
    if (opts.negativePrompt !== undefined) {
      out.negativePrompt = string(opts.negativePrompt, 'options.negativePrompt', { maxLength: MAX_PROMPT });
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
