// A LoRA adapter read by GenAI. Mirrors native/adapter.cc.
import { statSync } from 'node:fs';
import path from 'node:path';

import { native, type NativeAdapter } from './binding';
import { prepareAdapter, type AdapterReport, type PreparedAdapter } from '../lora/diagnose';
import { DisposedError, MultiloraError, fromNative } from './errors';
import { checkApproximate, type Approximate, type LoraScale } from '../lora/format';
import type { FuseTarget } from '../lora/fuse';
import type { ModelInfo } from './model';
import { finite, invalid, knownKeys, object, string } from './validate';

/** Where an adapter comes from, and how a call uses it by default. */
export interface AdapterSpec {
  /** A .safetensors file. Give `path` or `data`. */
  path?: string;
  /** The bytes of a .safetensors file. Give `path` or `data`. */
  data?: Buffer;
  /** The alpha used when a call names this adapter without one. Default 1. */
  alpha?: number;
  /** A prompt template around `<subject>`, used by calls with `applyTemplate: true`, e.g. "xray <subject>". */
  template?: string;
  /** Added to the negative prompt of calls with `applyTemplate: true`. */
  negativePrompt?: string;
  /**
   * What alpha means. 'genai' (the default): alpha is the whole scale of B·A, as in GenAI. 'diffusers': each layer is
   * also scaled by its own alpha/rank (from the file's `.alpha` tensors or PEFT metadata), as diffusers, A1111 and
   * ComfyUI do, so that alpha 1 is the strength the LoRA was trained for.
   */
  scale?: LoraScale;
  /**
   * Opt-in: fit a LoRA of at most `rank` by truncated SVD to each layer that GenAI would otherwise run at a higher
   * rank (LoHa, LoKr) or not at all (a full weight difference of a linear layer). `info.approximation` gives each
   * fitted layer's relative error and the total. DoRA and Diag-OFT layers (linear and 1x1) are fitted to their change
   * read from the model's weights. Kernels above 1x1 and bias differences are still refused: fuse them (`mode:
   * 'fuse'`, or `convert`). See docs/LORA-FORMATS.md.
   */
  approximate?: Approximate;
}

const SPEC_KEYS = ['path', 'data', 'alpha', 'template', 'negativePrompt', 'scale', 'approximate'] as const;
const SUBJECT = '<subject>';
/** GenAI's own limit is far above; this keeps a mistaken path to a huge file from being read whole. */
const MAX_ADAPTER_BYTES = 4 * 1024 ** 3;

/** A checked AdapterSpec: exactly one source, absolute path, defaults filled in. */
export interface AdapterSource {
  name: string;
  path?: string;
  data?: Buffer;
  alpha: number;
  template?: string;
  negativePrompt?: string;
  scale: LoraScale;
  approximate?: Approximate;
}

/** Checks a spec without touching the file system; relative paths resolve against `baseDir`. */
export function checkSpec(name: unknown, spec: unknown, baseDir = process.cwd()): AdapterSource {
  const label = `adapters[${JSON.stringify(name)}]`;
  string(name, 'the adapter name', { nonEmpty: true, maxLength: 256 });
  const checked = object(spec, label);
  knownKeys(checked, SPEC_KEYS, label);
  if ((checked.path === undefined) === (checked.data === undefined)) {
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `${label} needs exactly one of path and data`);
  }
  if (checked.scale !== undefined && checked.scale !== 'genai' && checked.scale !== 'diffusers') {
    throw invalid('"genai" or "diffusers"', `${label}.scale`, checked.scale);
  }
  const source: AdapterSource = {
    name: name as string,
    alpha: checked.alpha === undefined ? 1 : finite(checked.alpha, `${label}.alpha`, -100, 100),
    scale: (checked.scale as LoraScale | undefined) ?? 'genai',
  };
  if (checked.approximate !== undefined)
    source.approximate = checkApproximate(checked.approximate, `${label}.approximate`);
  if (checked.path !== undefined) {
    source.path = path.resolve(baseDir, string(checked.path, `${label}.path`, { nonEmpty: true }));
  } else if (!Buffer.isBuffer(checked.data)) {
    throw invalid('a Buffer', `${label}.data`, checked.data);
  } else {
    source.data = checked.data;
  }
  if (checked.template !== undefined) {
    const template = string(checked.template, `${label}.template`, { maxLength: 10_000 });
    if (!template.includes(SUBJECT)) throw invalid(`a template containing ${SUBJECT}`, `${label}.template`, template);
    source.template = template;
  }
  if (checked.negativePrompt !== undefined) {
    source.negativePrompt = string(checked.negativePrompt, `${label}.negativePrompt`, { maxLength: 10_000 });
  }
  return source;
}

/** `prompt` in `template` (its `<subject>` replaced by the prompt), or `prompt` itself without a template. */
export function applyTemplate(template: string | undefined, prompt: string): string {
  return template ? template.split(SUBJECT).join(prompt) : prompt;
}

/** A LoRA adapter, read once and shared by the native pipelines built with it. */
export class Adapter {
  readonly name: string;
  /** The absolute path it was read from, when it came from a file. */
  readonly path: string | undefined;
  /** Size of the .safetensors data. */
  readonly byteLength: number;
  /** What multilora found out about it before GenAI read it: format, ranks, targets, matched tensors. */
  readonly report: AdapterReport;
  /** @internal The model layers it patches (`<part>:<node name>`): see listFor in genai-quirks.ts. */
  readonly layers: ReadonlySet<string>;
  /**
   * @internal Read for fuse mode: what multilora's own fuse reads (lib/lora/fuse.ts), and whether GenAI's fuse would
   * refuse it (then multilora fuses every adapter of the pipeline itself).
   */
  readonly fuse: { load: string | Buffer; targets: readonly FuseTarget[]; own: boolean } | undefined;
  #source: AdapterSource;
  #native: NativeAdapter | undefined;

  private constructor(source: AdapterSource, byteLength: number, prepared: PreparedAdapter, handle: NativeAdapter) {
    this.name = source.name;
    this.path = source.path;
    this.byteLength = byteLength;
    this.report = prepared.report;
    this.layers = new Set(prepared.layers);
    this.fuse = prepared.fuse && { load: prepared.load, ...prepared.fuse };
    this.#source = source;
    this.#native = handle;
  }

  /** The alpha used when a call names it without one. */
  get alpha(): number {
    return this.#source.alpha;
  }

  get template(): string | undefined {
    return this.#source.template;
  }

  get negativePrompt(): string | undefined {
    return this.#source.negativePrompt;
  }

  /** What it was made from. */
  get source(): AdapterSource {
    return this.#source;
  }

  /** Takes new defaults (alpha, template, negative prompt) from a source of the same weights. */
  update(source: AdapterSource): this {
    this.#source = source;
    return this;
  }

  /**
   * Checks the adapter against the model, then has GenAI read it off the JS thread. With `fuse`, for a pipeline in
   * fuse mode: what only a fuse takes (DoRA, full differences, kernels above 1x1, OFT) is accepted.
   */
  static async load(source: AdapterSource, model: ModelInfo, fuse = false): Promise<Adapter> {
    const { name, path: file, data } = source;
    const where = file ?? `<${data!.length} bytes>`;
    let byteLength = data?.length ?? 0;
    if (file !== undefined) {
      let stat;
      try {
        stat = statSync(file);
      } catch {
        throw new MultiloraError(
          'ERR_ADAPTER_NOT_FOUND',
          `No adapter file at ${file} (adapter ${JSON.stringify(name)})`,
        );
      }
      if (!stat.isFile()) {
        throw new MultiloraError('ERR_ADAPTER_INVALID', `${file} is not a file (adapter ${JSON.stringify(name)})`);
      }
      if (path.extname(file).toLowerCase() !== '.safetensors') {
        throw new MultiloraError(
          'ERR_ADAPTER_INVALID',
          `Adapter ${JSON.stringify(name)}: ${file} is not a .safetensors file, the only LoRA format GenAI reads`,
        );
      }
      byteLength = stat.size;
    }
    if (byteLength > MAX_ADAPTER_BYTES) {
      throw new MultiloraError('ERR_ADAPTER_INVALID', `Adapter ${JSON.stringify(name)}: ${where} is over 4 GiB`);
    }
    const prepared = await prepareAdapter(name, file ?? data!, model, source.scale, source.approximate, fuse);
    try {
      return new Adapter(source, byteLength, prepared, await native().Adapter.load(prepared.load));
    } catch (err) {
      const e = fromNative(err);
      if (e.code !== 'ERR_ADAPTER_INVALID') throw e;
      throw new MultiloraError('ERR_ADAPTER_INVALID', `Adapter ${JSON.stringify(name)} (${where}): ${e.message}`, {
        cause: err,
      });
    }
  }

  /** Wraps `prompt` in this adapter's template, if it has one. */
  wrap(prompt: string): string {
    return applyTemplate(this.template, prompt);
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** @internal The addon's handle; throws once disposed. */
  get handle(): NativeAdapter {
    if (!this.#native) throw new DisposedError(`Adapter ${JSON.stringify(this.name)}`);
    return this.#native;
  }

  /** Drops this object's hold on the weights. Native pipelines built with it keep theirs. Idempotent. */
  async dispose(): Promise<void> {
    this.#native?.release();
    this.#native = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
