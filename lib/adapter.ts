// A LoRA adapter file read by GenAI. Mirrors native/adapter.cc.
import { statSync } from 'node:fs';
import path from 'node:path';

import { native, type NativeAdapter } from './binding';
import { DisposedError, MultiloraError, fromNative } from './errors';
import { finite, knownKeys, object, string } from './validate';

/** Where an adapter comes from, and how strongly it applies when a call names it without an alpha. */
export interface AdapterSpec {
  /** A .safetensors file. */
  path: string;
  /** The alpha used when a call names this adapter without one. Default 1. */
  alpha?: number;
}

const SPEC_KEYS = ['path', 'alpha'] as const;

/** A LoRA adapter, read once and shared by the pipelines built with it. */
export class Adapter {
  /** The name calls use to pick it. */
  readonly name: string;
  /** The absolute path it was read from. */
  readonly path: string;
  /** The alpha used when a call names it without one. */
  readonly alpha: number;
  #native: NativeAdapter | undefined;

  private constructor(name: string, file: string, alpha: number, handle: NativeAdapter) {
    this.name = name;
    this.path = file;
    this.alpha = alpha;
    this.#native = handle;
  }

  /** Checks `spec` and reads the file off the JS thread. */
  static async load(name: string, spec: AdapterSpec): Promise<Adapter> {
    string(name, 'the adapter name', { nonEmpty: true, maxLength: 256 });
    const checked = object(spec, `adapters[${JSON.stringify(name)}]`);
    knownKeys(checked, SPEC_KEYS, `adapters[${JSON.stringify(name)}]`);
    const file = path.resolve(string(checked.path, `adapters[${JSON.stringify(name)}].path`, { nonEmpty: true }));
    const alpha = checked.alpha === undefined ? 1 : finite(checked.alpha, `adapters[${JSON.stringify(name)}].alpha`);
    let isFile: boolean;
    try {
      isFile = statSync(file).isFile();
    } catch {
      throw new MultiloraError('ERR_ADAPTER_NOT_FOUND', `No adapter file at ${file} (adapter ${JSON.stringify(name)})`);
    }
    if (!isFile) {
      throw new MultiloraError('ERR_ADAPTER_INVALID', `${file} is not a file (adapter ${JSON.stringify(name)})`);
    }
    if (path.extname(file).toLowerCase() !== '.safetensors') {
      throw new MultiloraError(
        'ERR_ADAPTER_INVALID',
        `Adapter ${JSON.stringify(name)}: ${file} is not a .safetensors file, the only LoRA format GenAI reads`,
      );
    }
    try {
      return new Adapter(name, file, alpha, await native().Adapter.load(file));
    } catch (err) {
      const e = fromNative(err);
      if (e.code !== 'ERR_ADAPTER_INVALID') throw e;
      throw new MultiloraError('ERR_ADAPTER_INVALID', `Adapter ${JSON.stringify(name)} (${file}): ${e.message}`, {
        cause: err,
      });
    }
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** @internal The addon's handle; throws once disposed. */
  get handle(): NativeAdapter {
    if (!this.#native) throw new DisposedError(`Adapter ${JSON.stringify(this.name)}`);
    return this.#native;
  }

  /** Drops this object's hold on the weights. Pipelines built with the adapter keep theirs. Idempotent. */
  async dispose(): Promise<void> {
    this.#native?.release();
    this.#native = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
