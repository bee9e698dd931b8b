// pipeline.adapters: the adapters a pipeline has registered, and the way to change them.
import { checkSpec, type Adapter, type AdapterSource, type AdapterSpec } from './adapter';
import type { AdapterReport } from '../lora/diagnose';
import { string } from './validate';

/** What is known of a registered adapter. */
export interface AdapterInfo {
  name: string;
  /** The alpha used when a call names it without one. */
  alpha: number;
  template?: string;
  negativePrompt?: string;
  /** The file it was read from; absent when it came from a Buffer. */
  path?: string;
  /** Size of its .safetensors data. */
  byteLength: number;
  /** What multilora found out before GenAI read it: format, ranks, targets, matched and unmatched tensors. */
  info: AdapterReport;
}

/** @internal What a pipeline (or a pool) lends its AdapterSet: the arguments of add and remove arrive checked. */
export interface AdapterSetHooks {
  list(): readonly AdapterInfo[];
  add(source: AdapterSource): Promise<void>;
  remove(name: string): Promise<void>;
}

/** The adapters a pipeline has registered: list, add, remove. */
export class AdapterSet {
  readonly #hooks: AdapterSetHooks;

  /** @internal */
  constructor(hooks: AdapterSetHooks) {
    this.#hooks = hooks;
  }

  /** The registered adapters, in registration order. */
  list(): AdapterInfo[] {
    return this.#hooks.list().map((a) => ({ ...a }));
  }

  get(name: string): AdapterInfo | undefined {
    const found = this.#hooks.list().find((a) => a.name === name);
    return found && { ...found };
  }

  has(name: string): boolean {
    return this.#hooks.list().some((a) => a.name === name);
  }

  get names(): string[] {
    return this.#hooks.list().map((a) => a.name);
  }

  get size(): number {
    return this.#hooks.list().length;
  }

  /**
   * Registers an adapter, or replaces the one of that name. GenAI fixes a pipeline's adapters when it is built, so
   * this builds a new native pipeline in the background and swaps it in between two generate calls: calls queued
   * while it builds run with the old set, later ones with the new set (adapters are found by name when a call starts;
   * one removed meanwhile fails the call with ERR_INVALID_ARGUMENT). A replaced adapter keeps its place in the
   * order. When only alpha, template or negative prompt change, nothing is rebuilt.
   */
  async add(name: string, spec: AdapterSpec): Promise<void> {
    await this.#hooks.add(checkSpec(name, spec));
  }

  /** Unregisters an adapter: a rebuild in the background, as for add(). */
  async remove(name: string): Promise<void> {
    await this.#hooks.remove(string(name, 'name', { nonEmpty: true }));
  }
}

/**
 * The registered adapters of a pool: the same reads as `pipeline.adapters`. A change applies to every pipeline of
 * the pool, one after the other, while calls go on; if one fails, the others are brought back and nothing changes.
 * Calls made after the promise resolves see the new set on every pipeline; calls made before may run with either set.
 */
export class PoolAdapterSet extends AdapterSet {}

/** @internal What is known of a registered adapter. */
export function describe(adapter: Adapter): AdapterInfo {
  const info: AdapterInfo = {
    name: adapter.name,
    alpha: adapter.alpha,
    byteLength: adapter.byteLength,
    info: adapter.report,
  };
  if (adapter.template !== undefined) info.template = adapter.template;
  if (adapter.negativePrompt !== undefined) info.negativePrompt = adapter.negativePrompt;
  if (adapter.path !== undefined) info.path = adapter.path;
  return info;
}

/** @internal The spec that registers the adapter a source describes (in a pool's catalogue, or from a CLI catalogue). */
export function specOf(source: AdapterSource): AdapterSpec {
  const spec: AdapterSpec = { alpha: source.alpha, scale: source.scale };
  if (source.path !== undefined) spec.path = source.path;
  if (source.data !== undefined) spec.data = source.data;
  if (source.template !== undefined) spec.template = source.template;
  if (source.negativePrompt !== undefined) spec.negativePrompt = source.negativePrompt;
  if (source.approximate !== undefined) spec.approximate = { ...source.approximate };
  return spec;
}
