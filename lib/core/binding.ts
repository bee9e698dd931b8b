// The raw addon, typed. Internal: users never import this file. Native code trusts what it is given; the public
// classes (lib/core/pipeline.ts, lib/core/adapter.ts) validate everything before it gets here.
import path from 'node:path';

import nodeGypBuild from 'node-gyp-build';

import { MultiloraError } from './errors';
import type { NativeFuseLayer } from '../lora/fuse';
import type { Metrics } from './options';
import { PACKAGE_ROOT, configureTokenizers, sdkDir } from './sdk';

export interface NativeAdapter {
  release(): void;
}

export interface NativeAdapterConstructor {
  load(source: string | Buffer): Promise<NativeAdapter>;
  /** The first NaN or infinite value among these tensors of a .safetensors file: [span index, element index], or null. */
  nonFinite(
    path: string,
    spans: Array<[offset: number, byteLength: number, dtype: 'F32' | 'F16' | 'BF16']>,
  ): Promise<[number, number] | null>;
}

/**
 * Options as the addon reads them: every field already checked (lib/core/options.ts), adapters resolved to indices
 * when the call runs (lib/core/pipeline.ts).
 */
export interface NativeGenerateOptions {
  seed: number;
  width?: number;
  height?: number;
  steps?: number;
  guidanceScale?: number;
  strength?: number;
  numImages?: number;
  maxSequenceLength?: number;
  prompt2?: string;
  prompt3?: string;
  negativePrompt?: string;
  negativePrompt2?: string;
  negativePrompt3?: string;
  /** A GenAI Scheduler::Type; 0 (or absent) is the model's own. */
  scheduler?: number;
  /** Attach a small RGB picture of the latent to each progress event. */
  preview?: boolean;
  /** The initial noise: GenAI's own generator from the seed (the default), or torch's (a TorchGenerator). */
  generator?: 'genai' | 'torch';
  /** 'borrow': the result's Buffer wraps GenAI's output memory, detached when the next call starts. */
  output?: 'copy' | 'borrow';
  /** [index into the adapters the pipeline was loaded with, alpha] */
  adapters: Array<[number, number]>;
  /** 0 text-to-image (the default), 1 image-to-image, 2 inpainting. */
  task?: 0 | 1 | 2;
  /** RGB, for tasks 1 and 2. */
  image?: NativeRgb;
  /** RGB, white where to repaint, for task 2. */
  mask?: NativeRgb;
}

export interface NativeRgb {
  data: Buffer;
  width: number;
  height: number;
}

export interface NativeProgress {
  step: number;
  total: number;
  elapsedMs: number;
  preview?: { width: number; height: number; channels: 3; data: Buffer };
}

export interface NativeImages {
  /**
   * RGB bytes of `count` images, one after another: a copy that only this Buffer owns, or with output 'borrow'
   * GenAI's own output memory (detached, length 0, once the pipeline's next generate starts or it is disposed).
   */
  data: Buffer;
  count: number;
  width: number;
  height: number;
  /** Already in their public shape. */
  metrics: Metrics;
}

export interface NativeDefaults {
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  /** Whether image-to-image and inpainting are available (the model has a VAE encoder GenAI could use). */
  imageInputs: boolean;
}

export interface NativePipeline {
  readonly defaults: NativeDefaults;
  generate(
    prompt: string,
    options: NativeGenerateOptions,
    onProgress?: (event: NativeProgress) => void,
  ): Promise<NativeImages>;
  /** Stops the running generate at its next step; it rejects with ERR_ABORTED. */
  abort(): void;
  dispose(): Promise<void>;
  /** Where GenAI's output tensor lies now (0n before the first generate): a borrowed result's data starts there. */
  outputAddress(): bigint;
}

export interface NativePipelineConstructor {
  load(
    modelDir: string,
    device: string,
    adapters: NativeAdapter[],
    properties: Record<string, string>,
    /** Fuse the adapters into the weights at these alphas (MODE_FUSE). */
    fusedAlphas?: number[],
    /** Reshape to [numImages, height, width, guidanceScale (NaN: the model's)] before compiling. */
    staticShape?: [number, number, number, number],
  ): Promise<NativePipeline>;
  /** Fuses `layers` into the model's weights in memory, then assembles and compiles its pipeline (native/fuse.h). */
  loadFused(
    modelDir: string,
    device: string,
    family: string,
    properties: Record<string, string>,
    staticShape: [number, number, number, number] | null,
    layers: NativeFuseLayer[],
  ): Promise<NativePipeline>;
}

export interface NativeModel {
  /** Every MatMul and Convolution of an IR whose weights have a static shape. */
  layers(
    xmlPath: string,
  ): Promise<Array<{ name: string; type: 'MatMul' | 'Convolution'; shape: number[]; transposeB: boolean }>>;
  /** W' - W of each layer fused alone into the model's weights, in torch's layout (native/fuse.h, FusedChanges). */
  fusedChanges(modelDir: string, layers: NativeFuseLayer[]): Promise<Float32Array[]>;
}

/** For tests and the benchmark only. */
export interface NativeInternals {
  /** Successive torch.randn calls, one per shape, on one TorchGenerator seeded with `seed`. */
  torchRandn(seed: number, shapes: number[][]): Float32Array[];
  /** The address of the view's first byte (0n for a detached one). */
  bufferAddress(view: ArrayBufferView): bigint;
}

export interface Binding {
  Adapter: NativeAdapterConstructor;
  Pipeline: NativePipelineConstructor;
  Model: NativeModel;
  genaiRelease: string;
  internals: NativeInternals;
  /**
   * Stops every generation of this JS environment at its next step and waits for the threads of generations and
   * loads (a load runs to its end). Their promises never settle: for process 'exit' only.
   */
  shutdown(): void;
  /** Sets OPENVINO_TOKENIZERS_PATH_GENAI in the process environment, unless it is set (process.env of a worker_thread is a copy). */
  useTokenizers(path: string): void;
}

/**
 * For tests and the benchmark: the address of the first byte of a Buffer (of any ArrayBufferView), 0n once it is
 * detached. Equal to `genaiOutputAddress(pipeline)` (lib/core/pipeline.ts) for a result made with output 'borrow': its
 * bytes were never copied.
 */
export function bufferAddress(view: ArrayBufferView): bigint {
  return native().internals.bufferAddress(view);
}

let binding: Binding | undefined;

/** The addon file named by MULTILORA_ADDON_PATH (relative to the working directory), if set. */
function addonOverride(): string | undefined {
  const fromEnv = process.env.MULTILORA_ADDON_PATH;
  return fromEnv ? path.resolve(fromEnv) : undefined;
}

/** Loads the addon on first use. */
export function native(): Binding {
  if (binding) return binding;
  let addon: string | undefined;
  let tokenizers: string | undefined;
  try {
    // node-gyp-build's choice: build/Release (a build from source) if there is one, else prebuilds/linux-x64/.
    // MULTILORA_ADDON_PATH names another build instead, for tools: scripts/sanitize.mjs runs the tests against an
    // ASan/UBSan build with it.
    addon = addonOverride() ?? nodeGypBuild.resolve(PACKAGE_ROOT);
    tokenizers = configureTokenizers(addon);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time
    binding = require(addon) as Binding;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const missingLib = /lib[\w.-]+\.so[\d.]*: cannot open shared object file/.exec(reason)?.[0];
    const prebuilt = addon !== undefined && path.basename(path.dirname(path.dirname(addon))) === 'prebuilds';
    const hint = addonOverride()
      ? `MULTILORA_ADDON_PATH names an addon that does not load (${addon}): build it there, or unset the variable`
      : !missingLib
        ? 'no usable build of the addon was found: run `npm install` (or `npm run build:native`) in the multilora package'
        : prebuilt
          ? `a runtime library is missing (${missingLib}) from the prebuilt addon's folder ${path.dirname(addon!)}: ` +
            'install multilora again, or build it from source with MULTILORA_BUILD_FROM_SOURCE=1 npm install'
          : `a runtime library is missing (${missingLib}): the OpenVINO GenAI SDK in ${sdkDir()} is gone or incomplete; ` +
            'run `npm install` again, or set MULTILORA_SDK_DIR to the SDK folder the addon was built with';
    throw new MultiloraError('ERR_NATIVE_LOAD', `multilora could not load its native addon: ${hint}. (${reason})`, {
      cause: err,
    });
  }
  if (tokenizers) binding.useTokenizers(tokenizers);
  if (!tokenizers) {
    // Loading worked, but GenAI will not find the tokenizers at the first pipeline: say so now, clearly.
    throw new MultiloraError(
      'ERR_NATIVE_LOAD',
      `The OpenVINO tokenizers library was not found: run \`npm install\` (it sets up the SDK in ${sdkDir()}), ` +
        'set MULTILORA_SDK_DIR, or set OPENVINO_TOKENIZERS_PATH_GENAI to libopenvino_tokenizers.so',
    );
  }
  return binding;
}
