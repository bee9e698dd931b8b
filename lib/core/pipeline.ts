// A text-to-image pipeline with its LoRA adapters. Mirrors native/pipeline.cc.
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { Adapter, checkSpec, type AdapterSource, type AdapterSpec } from './adapter';
import { AdapterSet, describe } from './adapter-set';
import { native, type NativeImages, type NativePipeline, type NativeProgress, type NativeRgb } from './binding';
import { readCatalog } from './catalog';
import { AbortError, DisposedError, MultiloraError, fromNative } from './errors';
import { checkModelFiles, inspectModel, type ModelFamily, type ModelInfo } from './model';
import {
  checkGenerate,
  checkImage,
  readSchedulerConfig,
  refusedSchedulers,
  type BatchOptions,
  type CheckContext,
  type CheckedCall,
  type ImageInput,
  type ImageToImageOptions,
  type GenerateOptions,
  type Image,
  type ModelDefaults,
} from './options';
import { TaskQueue } from './task-queue';
import { checkStaticShape, fitStaticShape, nativeShape, type StaticShape } from './static-shape';
import { cacheProperties, checkStaticAdapters, fitInpaint, listFor, schedulerMinSteps } from './genai-quirks';
import { describe as describeValue, integer, invalid, knownKeys, object, string } from './validate';
import { prefetchModelLayers } from '../lora/diagnose';
import { fuseLayers } from '../lora/fuse';

export interface LoadOptions {
  /** An OpenVINO device: 'CPU' (the default), 'GPU', 'NPU', 'AUTO'... */
  device?: string;
  /** The adapters to register, by name. */
  adapters?: Record<string, AdapterSpec>;
  /** A JSON file of adapters by name, of the same shape as `adapters`; its paths are relative to the file. */
  catalog?: string;
  /**
   * A folder for OpenVINO's model cache (its CACHE_DIR): compiled models are kept there, so later loads of the same
   * model on the same device skip most of the compile. Made if missing. Not used while adapters are registered in
   * dynamic mode: OpenVINO 2026.3 cannot read a model with LoRA back from its cache (docs/GENAI-BUGS.md).
   */
  cacheDir?: string;
  /**
   * 'dynamic' (the default): each call chooses its adapters and alphas. 'fuse': the adapters are fused into the
   * model's weights at their default alphas when it is compiled: the fastest steps, but calls cannot choose (changing
   * the set or an alpha rebuilds the pipeline). See docs/LIFECYCLE.md for measured numbers. Fuse mode also takes
   * what GenAI refuses (DoRA, LyCORIS full differences, kernels above 1x1, Diag-OFT) on SD 1.5, LCM and SDXL models:
   * multilora then fuses the adapters into the weights itself, in memory (docs/LORA-FORMATS.md).
   */
  mode?: 'dynamic' | 'fuse';
  /**
   * Told of what works but may not be what you meant: LoRA tensors that patch nothing in this model. Default:
   * `process.emitWarning`. Also used by `pipeline.adapters.add()`.
   */
  onWarning?: (warning: MultiloraWarning) => void;
  /**
   * Compile for one shape (OpenVINO's static shapes, set by GenAI's reshape before compile) instead of any size:
   * faster steps on some models (docs/BENCHMARKS.md has the numbers), but every call must then use this size and
   * batch, and a guidance scale on the same side of 1. Calls that leave out width and height get this size.
   */
  staticShape?: StaticShape;
  /**
   * How many threads OpenVINO runs this pipeline's inference on (its INFERENCE_NUM_THREADS). Default: every core.
   * Pipelines that generate at the same time (a PipelinePool) compete for the cores; giving each cores ÷ K can help
   * big models (docs/BENCHMARKS.md, the pool phase).
   */
  threads?: number;
  /**
   * The precision OpenVINO computes in (its INFERENCE_PRECISION_HINT). Default: the device's own: on a CPU with
   * AVX512_BF16 or AMX that is bf16, elsewhere f32. 'f32' is slower where bf16 is the default, and gives the same
   * results however a change of the weights is split into factors (a LoRA's rank changes bf16's rounding).
   */
  precision?: 'f32' | 'bf16' | 'f16';
  /**
   * On a model with int8 or int4 weights (`multilora convert --weight-format int8`), the CPU quantizes each fully
   * connected layer's input to int8 on the fly, in groups of this many values along the input (OpenVINO's
   * DYNAMIC_QUANTIZATION_GROUP_SIZE); 0 turns that off. Default: OpenVINO's, 32 on CPU. Larger groups are faster
   * and a little coarser: 128 gave the tutorial's SDXL faster steps at the same pixel difference (docs/BENCHMARKS.md,
   * the tutorial's workload). No effect on a model with float weights.
   */
  dynamicQuantizationGroupSize?: number;
}

/** Something that works but may not be what was meant. */
export interface MultiloraWarning {
  code: 'ADAPTER_UNMATCHED_TENSORS';
  message: string;
  adapter: string;
  /** The tensors concerned (at most 100). */
  tensors: string[];
}

const LOAD_KEYS = [
  'device',
  'adapters',
  'catalog',
  'cacheDir',
  'mode',
  'onWarning',
  'staticShape',
  'threads',
  'precision',
  'dynamicQuantizationGroupSize',
] as const;
const PRECISIONS = ['f32', 'bf16', 'f16'] as const;

/** Set by Pipeline's static block: the address of its GenAI output tensor (see genaiOutputAddress). */
let outputAddressOf: (pipeline: Pipeline) => bigint;
/** Set by Pipeline's static block: see runChecked and checkContext. */
let runCheckedOn: (pipeline: Pipeline, call: CheckedCall) => Promise<Image | Image[]>;
let checkContextOf: (pipeline: Pipeline) => CheckContext;

/**
 * A Text2ImagePipeline of OpenVINO GenAI with its LoRA adapters. GenAI fixes the set of adapters when a pipeline is
 * built; `pipeline.adapters.add()` and `.remove()` build a new native pipeline in the background and swap it in
 * between two generate calls.
 */
export class Pipeline {
  /** What multilora read of the model folder. */
  readonly model: ModelInfo;
  /** The model's defaults for the options a call leaves out. */
  readonly defaults: ModelDefaults;
  /** The registered adapters: list, add, remove. */
  readonly adapters: AdapterSet;
  readonly #device: string;
  /** 'fuse': the adapters are in the weights; calls cannot choose them. */
  readonly mode: 'dynamic' | 'fuse';
  readonly #warn: (warning: MultiloraWarning) => void;
  readonly #refusedSchedulers: CheckContext['refusedSchedulers'];
  readonly #schedulerMinSteps: CheckContext['schedulerMinSteps'];
  /** What every native build of this pipeline gets: OpenVINO properties (CACHE_DIR), the static shape. */
  readonly #build: NativeBuild;
  #native: NativePipeline | undefined;
  /** The adapters of #native, in the order the addon knows them. */
  #registered: Adapter[];
  /** Generate calls (and swaps) run here, one at a time. */
  readonly #queue = new TaskQueue();
  /** Adapter changes run here, one at a time, so that each builds on the last. */
  readonly #changes = new TaskQueue();
  #disposing: Promise<void> | undefined;
  #rebuilds = 0;

  static {
    outputAddressOf = (pipeline) => pipeline.#native?.outputAddress() ?? 0n;
    runCheckedOn = (pipeline, call) => pipeline.#runChecked(call);
    checkContextOf = (pipeline) => pipeline.#checkContext();
  }

  private constructor(
    model: ModelInfo,
    device: string,
    mode: 'dynamic' | 'fuse',
    build: NativeBuild,
    warn: (warning: MultiloraWarning) => void,
    handle: NativePipeline,
    adapters: Adapter[],
  ) {
    this.model = model;
    this.#device = device;
    this.mode = mode;
    this.#build = build;
    this.#warn = warn;
    this.#native = handle;
    this.#registered = adapters;
    const d = handle.defaults;
    const schedulerConfig = readSchedulerConfig(model.dir);
    this.#refusedSchedulers = refusedSchedulers(schedulerConfig, model.family);
    this.#schedulerMinSteps = schedulerMinSteps(schedulerConfig);
    const shape = build.staticShape;
    if (shape && Number.isNaN(shape.guidanceScale)) shape.guidanceScale = d.guidanceScale;
    this.defaults = {
      width: shape?.width ?? (d.width > 0 ? d.width : NaN),
      height: shape?.height ?? (d.height > 0 ? d.height : NaN),
      steps: d.steps,
      guidanceScale: shape?.guidanceScale ?? d.guidanceScale,
      imageInputs: d.imageInputs,
    };
    this.adapters = new AdapterSet({
      list: () => this.#registered.map(describe),
      // A replaced adapter keeps its place: GenAI's bytes depend on the order, and an alpha-only change rebuilds nothing.
      add: (source) =>
        this.#change((current) =>
          current.some((a) => a.name === source.name)
            ? current.map((a) => (a.name === source.name ? source : a))
            : [...current, source],
        ),
      remove: (name) =>
        this.#change((current) => {
          if (!current.some((a) => a.name === name)) throw unknownAdapter(name, current);
          return current.filter((a) => a.name !== name);
        }),
    });
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
    const sources =
      opts.catalog === undefined ? [] : readCatalog(string(opts.catalog, 'options.catalog', { nonEmpty: true }));
    const specs = opts.adapters === undefined ? {} : object(opts.adapters, 'options.adapters');
    for (const [name, spec] of Object.entries(specs)) {
      if (sources.some((s) => s.name === name)) {
        throw new MultiloraError(
          'ERR_INVALID_ARGUMENT',
          `Adapter ${JSON.stringify(name)} is in both the catalogue and options.adapters`,
        );
      }
      sources.push(checkSpec(name, spec));
    }
    if (opts.onWarning !== undefined && typeof opts.onWarning !== 'function') {
      throw invalid('a function', 'options.onWarning', opts.onWarning);
    }
    const warn = (opts.onWarning as ((w: MultiloraWarning) => void) | undefined) ?? emitWarning;
    if (opts.mode !== undefined && opts.mode !== 'dynamic' && opts.mode !== 'fuse') {
      throw invalid('"dynamic" or "fuse"', 'options.mode', opts.mode);
    }
    const mode = opts.mode ?? 'dynamic';
    const properties: Record<string, string> = {};
    if (opts.cacheDir !== undefined) {
      const dir = path.resolve(string(opts.cacheDir, 'options.cacheDir', { nonEmpty: true }));
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        throw new MultiloraError(
          'ERR_INVALID_ARGUMENT',
          `Cannot make the cache folder ${dir}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      properties.CACHE_DIR = dir;
    }
    if (opts.threads !== undefined) {
      properties.INFERENCE_NUM_THREADS = String(integer(opts.threads, 'options.threads', 1, 1024));
    }
    if (opts.precision !== undefined) {
      const precision = PRECISIONS.find((p) => p === opts.precision);
      if (!precision) throw invalid('"f32", "bf16" or "f16"', 'options.precision', opts.precision);
      properties.INFERENCE_PRECISION_HINT = precision;
    }
    if (opts.dynamicQuantizationGroupSize !== undefined) {
      properties.DYNAMIC_QUANTIZATION_GROUP_SIZE = String(
        integer(opts.dynamicQuantizationGroupSize, 'options.dynamicQuantizationGroupSize', 0, 65536),
      );
    }
    const model = inspectModel(modelDir);
    await checkModelFiles(model);
    const build: NativeBuild = { properties, staticShape: checkStaticShape(opts.staticShape, model) };
    const adapters = await loadAdapters(sources, model, mode, warn);
    try {
      const handle = await buildNative(model, device, mode, adapters, build);
      return new Pipeline(model, device, mode, build, warn, handle, adapters);
    } catch (err) {
      await Promise.all(adapters.map((a) => a.dispose()));
      throw err;
    }
  }

  /** How many times the native pipeline was rebuilt for a change of adapters. */
  get rebuilds(): number {
    return this.#rebuilds;
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
    return this.#runChecked(checkGenerate(prompt, options, this.#checkContext()));
  }

  /**
   * Image to image: denoises from `image` with noise added by `options.strength`, with the same adapters and options
   * as generate (the size is the image's). Needs a model with a VAE encoder (`pipeline.defaults.imageInputs`).
   */
  imageToImage(
    prompt: string,
    image: ImageInput,
    options: ImageToImageOptions & { numImages: number },
  ): Promise<Image[]>;
  imageToImage(prompt: string, image: ImageInput, options?: ImageToImageOptions): Promise<Image>;
  async imageToImage(prompt: string, image: ImageInput, options: ImageToImageOptions = {}): Promise<Image | Image[]> {
    return this.#imageTask(1, prompt, options, image);
  }

  /**
   * Inpainting: repaints `image` where `mask` is white (mask: the image's size; grey, RGB or RGBA, or PNG), with the
   * same adapters and options as generate. Needs a model with a VAE encoder (`pipeline.defaults.imageInputs`).
   * `numImages` above 1 is refused: GenAI 2026.3's inpainting makes one image per call.
   */
  inpaint(
    prompt: string,
    image: ImageInput,
    mask: ImageInput,
    options: ImageToImageOptions & { numImages: number },
  ): Promise<Image[]>;
  inpaint(prompt: string, image: ImageInput, mask: ImageInput, options?: ImageToImageOptions): Promise<Image>;
  async inpaint(
    prompt: string,
    image: ImageInput,
    mask: ImageInput,
    options: ImageToImageOptions = {},
  ): Promise<Image | Image[]> {
    return this.#imageTask(2, prompt, options, image, mask);
  }

  async #imageTask(
    task: 1 | 2,
    prompt: string,
    options: ImageToImageOptions,
    image: ImageInput,
    mask?: ImageInput,
  ): Promise<Image | Image[]> {
    if (this.#disposing) throw new DisposedError('The pipeline');
    return this.#runChecked(checkImageCall(this.#checkContext(), this.model, task, prompt, options, image, mask));
  }

  /** Runs a checked call (checked here, or by a pool for its members): the checks that need this pipeline's shape first. */
  async #runChecked(call: CheckedCall): Promise<Image | Image[]> {
    if (this.#disposing) throw new DisposedError('The pipeline');
    const shape = this.#build.staticShape;
    if (shape) fitStaticShape(call.options, shape, this.model, call.options.image);
    if (call.signal?.aborted) throw new AbortError(call.signal.reason);
    const images = toImages(await this.#run(call), call.options.seed);
    return call.options.numImages === undefined ? images[0] : images;
  }

  #checkContext(): CheckContext {
    return {
      vaeScaleFactor: this.model.vaeScaleFactor,
      adapters: this.#registered,
      fused: this.mode === 'fuse',
      imageInputs: this.defaults.imageInputs,
      family: this.model.family,
      guidanceScale: this.defaults.guidanceScale,
      steps: this.defaults.steps,
      refusedSchedulers: this.#refusedSchedulers,
      schedulerMinSteps: this.#schedulerMinSteps,
    };
  }

  /**
   * Waits for the calls and adapter changes already queued, then frees the native pipeline and the adapters.
   * Later calls fail with ERR_DISPOSED. Idempotent.
   */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      await this.#changes.drain();
      await this.#queue.drain();
      const handle = this.#native;
      this.#native = undefined;
      await handle?.dispose();
      await Promise.all(this.#registered.map((a) => a.dispose()));
    })();
    return this.#disposing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /**
   * Applies a change to the set of adapters: builds a native pipeline with the new set while calls go on, then
   * swaps it in between two calls (calls already queued finish on the old one), then frees the old one.
   */
  #change(next: (current: AdapterSource[]) => AdapterSource[]): Promise<void> {
    if (this.#disposing) return Promise.reject(new DisposedError('The pipeline'));
    // A change queued before dispose() still happens: dispose waits for it.
    return this.#changes.run(async () => {
      const current = this.#registered;
      const previousAlphas = current.map((a) => a.alpha);
      const wanted = next(current.map((a) => a.source));
      // Keep every adapter whose source is unchanged; read only the new ones.
      const kept = new Map(current.map((a) => [a.name, a]));
      const reused: Array<Adapter | AdapterSource> = wanted.map((s) => {
        const old = kept.get(s.name);
        return old && sameWeights(old.source, s) ? old.update(s) : s;
      });
      const fresh = await loadAdapters(
        reused.filter((x): x is AdapterSource => !(x instanceof Adapter)),
        this.model,
        this.mode,
        this.#warn,
      );
      const adapters = reused.map((x) => (x instanceof Adapter ? x : fresh.find((f) => f.name === x.name)!));
      // In fuse mode the alphas are in the weights too.
      const sameSet =
        adapters.length === current.length &&
        adapters.every((a, i) => sameWeights(a.source, current[i].source)) &&
        (this.mode === 'dynamic' || adapters.every((a, i) => a.alpha === previousAlphas[i]));
      if (sameSet) {
        // Only defaults (alpha, template, negative prompt) changed, or nothing: no rebuild.
        this.#registered = adapters;
        return;
      }
      let handle: NativePipeline;
      try {
        handle = await buildNative(this.model, this.#device, this.mode, adapters, this.#build);
      } catch (err) {
        await Promise.all(fresh.map((a) => a.dispose()));
        throw err;
      }
      const old = await this.#queue.run(async () => {
        const previous = this.#native;
        this.#native = handle;
        this.#registered = adapters;
        this.#rebuilds += 1;
        return previous;
      });
      await old?.dispose();
      const still = new Set(adapters);
      await Promise.all(current.filter((a) => !still.has(a)).map((a) => a.dispose()));
    });
  }

  /**
   * The adapters of a call, by name, as indices into the set this pipeline has now (the call may have been checked
   * before a change of adapters). One removed since: ERR_INVALID_ARGUMENT.
   */
  #resolve(adapters: ReadonlyArray<[string, number]>): Array<[number, number]> {
    const chosen = adapters.map(([name, alpha]): [number, number] => {
      const index = this.#registered.findIndex((a) => a.name === name);
      if (index < 0) {
        throw new MultiloraError(
          'ERR_INVALID_ARGUMENT',
          `Adapter ${JSON.stringify(name)} was removed (pipeline.adapters.remove) before this call ran; registered now: ` +
            (this.#registered.map((a) => JSON.stringify(a.name)).join(', ') || 'none'),
        );
      }
      return [index, alpha];
    });
    return this.mode === 'fuse' ? chosen : listFor(this.#registered, chosen);
  }

  /** Queues one native generate; wires its AbortSignal and progress callback. */
  #run(call: CheckedCall): Promise<NativeImages> {
    const { signal, onProgress } = call;
    let state: 'queued' | 'running' | 'settled' = 'queued';
    let callbackError: unknown;
    let rejectQueued: ((err: Error) => void) | undefined;
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
        // By name until now: a swap queued before the call may have changed the set since it was checked.
        const options = { ...call.options, adapters: this.#resolve(call.adapters) };
        return await handle.generate(call.prompt, options, progress);
      } catch (err) {
        if (callbackError !== undefined) {
          throw new MultiloraError(
            'ERR_CALLBACK',
            `onProgress threw: ${callbackError instanceof Error ? callbackError.message : describeValue(callbackError)}`,
            {
              cause: callbackError,
            },
          );
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
}

function unknownAdapter(name: string, current: AdapterSource[]): MultiloraError {
  const known = current.map((a) => JSON.stringify(a.name)).join(', ') || 'none';
  return new MultiloraError('ERR_INVALID_ARGUMENT', `Unknown adapter ${JSON.stringify(name)}; registered: ${known}`);
}

function emitWarning(warning: MultiloraWarning): void {
  process.emitWarning(warning.message, { code: `MULTILORA_${warning.code}`, detail: warning.tensors.join('\n') });
}

/**
 * Reads adapters in parallel, each checked against the model; if one fails, frees the others and throws the first
 * failure. Tensors that patch nothing are reported to `warn`.
 */
async function loadAdapters(
  sources: AdapterSource[],
  model: ModelInfo,
  mode: 'dynamic' | 'fuse',
  warn: (warning: MultiloraWarning) => void,
): Promise<Adapter[]> {
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name))
      throw new MultiloraError('ERR_INVALID_ARGUMENT', `Adapter ${JSON.stringify(s.name)} is given twice`);
    names.add(s.name);
  }
  if (sources.length > 0) prefetchModelLayers(model);
  const results = await Promise.allSettled(sources.map((s) => Adapter.load(s, model, mode === 'fuse')));
  const loaded = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(loaded.map((a) => a.dispose()));
    throw failed.reason;
  }
  for (const adapter of loaded) {
    const { unmatched, unmatchedTensors } = adapter.report;
    if (unmatched > 0) {
      warn({
        code: 'ADAPTER_UNMATCHED_TENSORS',
        adapter: adapter.name,
        message: `Adapter ${JSON.stringify(adapter.name)}: ${unmatched} of its tensors patch nothing in this model (${model.pipelineClass})`,
        tensors: unmatchedTensors,
      });
    }
  }
  return loaded;
}

/** What every native build of a pipeline gets besides the model, device, mode and adapters. */
interface NativeBuild {
  properties: Record<string, string>;
  /** guidanceScale NaN until the first build tells the model's default. */
  staticShape: Required<StaticShape> | undefined;
}

async function buildNative(
  model: ModelInfo,
  device: string,
  mode: 'dynamic' | 'fuse',
  adapters: Adapter[],
  build: NativeBuild,
): Promise<NativePipeline> {
  if (build.staticShape) checkStaticAdapters(model, adapters);
  stopThreadsAtExit();
  const shape = build.staticShape && nativeShape(build.staticShape);
  if (mode === 'fuse' && adapters.some((a) => a.fuse?.own)) return await fuseNative(model, device, adapters, build);
  try {
    const handles = adapters.map((a) => a.handle);
    const fused = mode === 'fuse' ? adapters.map((a) => a.alpha) : undefined;
    const properties = cacheProperties(build.properties, mode === 'dynamic' && adapters.length > 0);
    return await native().Pipeline.load(model.dir, device, handles, properties, fused, shape);
  } catch (err) {
    throw fromNative(err);
  }
}

/** The families whose pipelines multilora assembles from parts it fused itself (native/fuse.h). */
const OWN_FUSE_FAMILIES: readonly ModelFamily[] = ['sd', 'lcm', 'sdxl'];

/**
 * Fuse mode with an adapter that GenAI's fuse refuses (DoRA, full differences, kernels above 1x1, OFT): multilora
 * fuses every adapter into the model's weights in memory, in their order, and builds the pipeline from them.
 */
async function fuseNative(
  model: ModelInfo,
  device: string,
  adapters: Adapter[],
  build: NativeBuild,
): Promise<NativePipeline> {
  const own = adapters.find((a) => a.fuse?.own)!;
  if (!OWN_FUSE_FAMILIES.includes(model.family)) {
    throw new MultiloraError(
      'ERR_ADAPTER_FORMAT',
      `Adapter ${JSON.stringify(own.name)} needs multilora's own fuse (DoRA, full differences, kernels above 1x1 or ` +
        `OFT), which builds SD 1.5, LCM and SDXL pipelines only, not this ${model.family} model (${model.pipelineClass})`,
    );
  }
  const layers = await fuseLayers(
    adapters.map((a) => ({
      label: `Adapter ${JSON.stringify(a.name)}`,
      load: a.fuse!.load,
      alpha: a.alpha,
      targets: a.fuse!.targets,
    })),
  );
  try {
    const shape = build.staticShape && nativeShape(build.staticShape);
    return await native().Pipeline.loadFused(model.dir, device, model.family, build.properties, shape ?? null, layers);
  } catch (err) {
    throw fromNative(err);
  }
}

let exitHooked = false;

/**
 * At process 'exit' (process.exit(), an uncaught exception), stops every running generation at its next step and
 * waits for the addon's threads, so that none is inside GenAI while the process runs its static destructors. On the
 * main thread no N-API cleanup hook runs then; in a worker_thread the addon's hook does the same at teardown.
 */
function stopThreadsAtExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => native().shutdown());
}

/**
 * Whether two sources give GenAI the same weights: the same file, read with the same scale and fit (then changing
 * alpha, template or negative prompt needs no rebuild).
 */
function sameWeights(a: AdapterSource, b: AdapterSource): boolean {
  return (
    a.name === b.name &&
    a.path === b.path &&
    a.data === b.data &&
    a.scale === b.scale &&
    a.approximate?.rank === b.approximate?.rank
  );
}

/**
 * For tests and the benchmark; not exported by the package. Where the memory of this pipeline's GenAI output tensor
 * lies now (0n before its first generate, or after dispose). The data of a result made with `output: 'borrow'`
 * starts there (`bufferAddress(image.data)`, lib/core/binding.ts): its bytes were never copied. A copied result's do not.
 */
export function genaiOutputAddress(pipeline: Pipeline): bigint {
  return outputAddressOf(pipeline);
}

/**
 * @internal Runs a call that was checked against this pipeline's model and adapters (by a pool, for its members): it
 * is not checked again. Its adapters are found by name when it runs.
 */
export function runChecked(pipeline: Pipeline, call: CheckedCall): Promise<Image | Image[]> {
  return runCheckedOn(pipeline, call);
}

/** @internal What checkGenerate needs to know of a pipeline: a pool checks its calls against its first member's. */
export function checkContext(pipeline: Pipeline): CheckContext {
  return checkContextOf(pipeline);
}

/**
 * @internal Checks an image-to-image (task 1) or inpainting (task 2) call: the options, then the image and mask as
 * RGB, which the call carries.
 */
export function checkImageCall(
  ctx: CheckContext,
  model: ModelInfo,
  task: 1 | 2,
  prompt: string,
  options: ImageToImageOptions,
  image: ImageInput,
  mask?: ImageInput,
): CheckedCall {
  if (!ctx.imageInputs) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `This model (${model.pipelineClass}) offers no image-to-image or inpainting: it needs a VAE encoder that GenAI can use`,
    );
  }
  const call = checkGenerate(prompt, options, ctx, 'image');
  const rgb = checkImage(image, 'image', model.vaeScaleFactor);
  call.options.task = task;
  call.options.image = rgb;
  if (mask !== undefined || task === 2)
    call.options.mask = checkMask(checkImage(mask, 'mask', model.vaeScaleFactor), rgb);
  if (task === 2) fitInpaint(call.options, rgb);
  return call;
}

function checkMask(mask: NativeRgb, image: NativeRgb): NativeRgb {
  if (mask.width !== image.width || mask.height !== image.height) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected a mask of the image's size (${image.width}x${image.height}) but received ${mask.width}x${mask.height}`,
    );
  }
  return mask;
}

function toImages(out: NativeImages, seed: number): Image[] {
  const { metrics } = out;
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
