// A pool of independent pipelines of one model, serving calls at the same time. Built on Pipeline's public API.
import { applyTemplate, checkSpec, type AdapterSource, type AdapterSpec } from './adapter';
import { PoolAdapterSet, specOf, type AdapterInfo } from './adapter-set';
import { readCatalog } from './catalog';
import type { ModelInfo } from './model';
import { AbortError, DisposedError, MultiloraError } from './errors';
import {
  checkGenerate,
  type BatchOptions,
  type CheckAdapter,
  type CheckContext,
  type CheckedCall,
  type GenerateOptions,
  type Image,
  type ImageInput,
  type ImageToImageOptions,
  type ModelDefaults,
} from './options';
import {
  Pipeline,
  checkContext,
  checkImageCall,
  runChecked,
  type LoadOptions,
  type MultiloraWarning,
} from './pipeline';
import { TaskQueue } from './task-queue';
import { integer, invalid, object, string } from './validate';

export { PoolAdapterSet };

export interface PipelinePoolOptions extends LoadOptions {
  /**
   * How many pipelines to load: each is a whole copy of the compiled model and of the adapters, and runs one call
   * at a time. 1 to 64.
   */
  size: number;
  /**
   * How many calls may wait for a free pipeline when all are busy. A call beyond that rejects at once with a
   * MultiloraError of code ERR_BUSY. Default: no limit.
   */
  maxQueue?: number;
}

/** Set by PipelinePool's static block: its members (see poolMembers), and see checkPoolCall and runPoolCall. */
let membersOf: (pool: PipelinePool) => readonly Pipeline[];
let checkOn: (pool: PipelinePool, prompt: unknown, options: unknown) => CheckedCall;
let runOn: (pool: PipelinePool, call: CheckedCall) => Promise<Image | Image[]>;

/** For tests, to make a fault happen between two members. Not exported by the package. */
export const poolHooks: {
  /** After each member is loaded, before the next one starts. */
  onMemberLoaded: ((pipeline: Pipeline) => void) | undefined;
  /** After each member took an adapter change, before the next one starts. */
  onMemberChanged: ((pipeline: Pipeline) => void) | undefined;
} = { onMemberLoaded: undefined, onMemberChanged: undefined };

const MAX_SIZE = 64;

/**
 * K independent pipelines of one model, loaded with the same adapters and options, serving calls at the same time:
 * each call goes to an idle pipeline, or waits in one first-in, first-out queue while all are busy. Every pipeline
 * is a `Pipeline` of its own, with its own GenAI objects (multilora never uses GenAI's `clone()`, which is wrong
 * with LoRA in GenAI 2026.3), so a call gives the same bytes on whichever member it runs, and the same bytes as on
 * a single pipeline.
 *
 * OpenVINO spreads one inference over every core, so a pool adds throughput only where one call leaves cores idle
 * (machines with more cores than one inference keeps busy); on 2 cores it gave none (docs/BENCHMARKS.md). Memory
 * grows with the size: each member holds its own compiled model.
 */
export class PipelinePool {
  /** What multilora read of the model folder. */
  readonly model: ModelInfo;
  /** The model's defaults for the options a call leaves out. */
  readonly defaults: ModelDefaults;
  /** 'fuse': the adapters are in the weights; calls cannot choose them. */
  readonly mode: 'dynamic' | 'fuse';
  /** The registered adapters of every member: list, add, remove. A change applies to all members or to none. */
  readonly adapters: PoolAdapterSet;
  readonly #members: Pipeline[];
  readonly #busy = new Set<Pipeline>();
  readonly #waiting: Job[] = [];
  readonly #maxQueue: number;
  /** Adapter changes, one at a time. */
  readonly #changes = new TaskQueue();
  /** What each member has registered, in registration order, as of the last change that went through. */
  #catalogue: Array<[string, AdapterSpec]>;
  #infos: AdapterInfo[];
  #drained: Array<() => void> = [];
  #disposing: Promise<void> | undefined;

  static {
    membersOf = (pool) => pool.#members;
    checkOn = (pool, prompt, options) => checkGenerate(prompt, options, pool.#checkContext());
    runOn = (pool, call) =>
      pool.#disposing ? Promise.reject(new DisposedError('The pipeline pool')) : pool.#dispatch(call);
  }

  private constructor(members: Pipeline[], maxQueue: number, catalogue: Array<[string, AdapterSpec]>) {
    const first = members[0];
    this.model = first.model;
    this.defaults = first.defaults;
    this.mode = first.mode;
    this.#members = members;
    this.#maxQueue = maxQueue;
    this.#catalogue = catalogue;
    this.#infos = first.adapters.list();
    this.adapters = new PoolAdapterSet({
      list: () => this.#infos,
      add: (source) => this.#add(source),
      remove: (name) => this.#remove(name),
    });
  }

  /**
   * Loads `options.size` pipelines of the model in `modelDir`, each as `Pipeline.load(modelDir, options)` would,
   * one after the other (docs/LIFECYCLE.md says why not at once). If one fails, the ones already loaded are
   * disposed and the promise rejects with its error. Warnings (`onWarning`) are told once, not once per member.
   */
  static async load(modelDir: string, options: PipelinePoolOptions): Promise<PipelinePool> {
    string(modelDir, 'modelDir', { nonEmpty: true });
    object(options, 'options');
    const { size, maxQueue, ...rest } = options;
    const count = integer(size, 'options.size', 1, MAX_SIZE);
    const limit =
      maxQueue === undefined || maxQueue === Infinity
        ? Infinity
        : integer(maxQueue, 'options.maxQueue', 0, 2 ** 31 - 1);
    if (rest.onWarning !== undefined && typeof rest.onWarning !== 'function') {
      throw invalid('a function', 'options.onWarning', rest.onWarning);
    }
    // The same warning would come from every member: only the first tells it.
    const quiet: LoadOptions = { ...rest, onWarning: (_warning: MultiloraWarning) => undefined };
    const members: Pipeline[] = [];
    try {
      for (let i = 0; i < count; i += 1) {
        const member = await Pipeline.load(modelDir, i === 0 ? rest : quiet);
        members.push(member);
        poolHooks.onMemberLoaded?.(member);
      }
    } catch (err) {
      await Promise.all(members.map((m) => m.dispose()));
      throw err;
    }
    return new PipelinePool(members, limit, catalogueOf(rest));
  }

  /** How many pipelines serve the calls. */
  get size(): number {
    return this.#members.length;
  }

  /** Calls queued or running. */
  get pending(): number {
    return this.#waiting.length + this.#busy.size;
  }

  /** Calls waiting for a free pipeline (what `maxQueue` bounds). */
  get waiting(): number {
    return this.#waiting.length;
  }

  get disposed(): boolean {
    return this.#disposing !== undefined;
  }

  /**
   * Generates one image, or with `numImages` a batch, on the first idle pipeline, as `Pipeline.generate` does: the
   * same options, the same result, the same bytes. While every pipeline is busy the call waits its turn; with
   * `maxQueue` reached, it rejects at once with ERR_BUSY. With `output: 'borrow'`, `image.data` is lent until the
   * pipeline that made it starts another call, which the pool holds back until the event loop's next turn: use or
   * copy the bytes before anything waits for I/O, a timer or another call.
   */
  generate(prompt: string, options: BatchOptions): Promise<Image[]>;
  generate(prompt: string, options?: GenerateOptions): Promise<Image>;
  async generate(prompt: string, options: GenerateOptions | BatchOptions = {}): Promise<Image | Image[]> {
    if (this.#disposing) throw new DisposedError('The pipeline pool');
    return this.#dispatch(checkGenerate(prompt, options, this.#checkContext()));
  }

  /** Image to image on the first idle pipeline: see `Pipeline.imageToImage`. */
  imageToImage(
    prompt: string,
    image: ImageInput,
    options: ImageToImageOptions & { numImages: number },
  ): Promise<Image[]>;
  imageToImage(prompt: string, image: ImageInput, options?: ImageToImageOptions): Promise<Image>;
  async imageToImage(prompt: string, image: ImageInput, options: ImageToImageOptions = {}): Promise<Image | Image[]> {
    if (this.#disposing) throw new DisposedError('The pipeline pool');
    return this.#dispatch(checkImageCall(this.#checkContext(), this.model, 1, prompt, options, image));
  }

  /** Inpainting on the first idle pipeline: see `Pipeline.inpaint`. */
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
    if (this.#disposing) throw new DisposedError('The pipeline pool');
    return this.#dispatch(checkImageCall(this.#checkContext(), this.model, 2, prompt, options, image, mask));
  }

  /**
   * Waits for the calls and adapter changes already queued, then disposes every pipeline. Later calls fail with
   * ERR_DISPOSED. Idempotent.
   */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      await this.#changes.drain();
      if (this.pending > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
      await Promise.all(this.#members.map((m) => m.dispose()));
    })();
    return this.#disposing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /**
   * What a call is checked against: the members' model (they are all alike), and the adapters as of the last change
   * that went through. The call is checked here, once: the member that runs it finds its adapters by name then.
   */
  #checkContext(): CheckContext {
    const adapters = this.#infos.map((info) => new Registered(info));
    return { ...checkContext(this.#members[0]), adapters };
  }

  /** Runs a checked call on an idle member now, or queues it; wires its signal while it waits. */
  #dispatch(call: CheckedCall): Promise<Image | Image[]> {
    const { signal } = call;
    if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
    const idle = this.#waiting.length === 0 ? this.#idleMember() : undefined;
    if (!idle && this.#waiting.length >= this.#maxQueue) {
      return Promise.reject(
        new MultiloraError(
          'ERR_BUSY',
          `All ${this.size} pipelines of the pool are busy and ${this.#waiting.length} calls wait (maxQueue ${this.#maxQueue}): try again later`,
        ),
      );
    }
    return new Promise<Image | Image[]>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.#waiting.indexOf(job);
        if (at < 0) return; // running: the member's own signal handling stops it
        this.#waiting.splice(at, 1);
        reject(new AbortError(signal?.reason));
        this.#settleIfDrained();
      };
      const job: Job = {
        start: (member) => {
          signal?.removeEventListener('abort', onAbort);
          runChecked(member, call)
            .then(resolve, reject)
            .finally(() => {
              // A borrowed result is lent until its member's next call starts: hold that back a turn of the event
              // loop, so that the caller's code right after its await still sees the bytes.
              if (call.options.output === 'borrow') setImmediate(() => this.#release(member));
              else this.#release(member);
            });
        },
      };
      if (idle) {
        this.#busy.add(idle);
        job.start(idle);
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(job);
    });
  }

  #idleMember(): Pipeline | undefined {
    return this.#members.find((m) => !this.#busy.has(m));
  }

  #release(member: Pipeline): void {
    this.#busy.delete(member);
    const next = this.#waiting.shift();
    if (next) {
      this.#busy.add(member);
      next.start(member);
    }
    this.#settleIfDrained();
  }

  #settleIfDrained(): void {
    if (this.pending === 0) for (const resolve of this.#drained.splice(0)) resolve();
  }

  #add(source: AdapterSource): Promise<void> {
    const { name } = source;
    return this.#change(
      name,
      (catalogue) => [...catalogue.filter(([n]) => n !== name), [name, specOf(source)]],
      (m) => m.adapters.add(name, specOf(source)),
    );
  }

  #remove(name: string): Promise<void> {
    return this.#change(
      name,
      (catalogue) => {
        if (!catalogue.some(([n]) => n === name)) {
          const known = catalogue.map(([n]) => JSON.stringify(n)).join(', ') || 'none';
          throw new MultiloraError(
            'ERR_INVALID_ARGUMENT',
            `Unknown adapter ${JSON.stringify(name)}; registered: ${known}`,
          );
        }
        return catalogue.filter(([n]) => n !== name);
      },
      (m) => m.adapters.remove(name),
    );
  }

  /**
   * Applies a change to every member, one after the other (one extra native pipeline in memory at a time, and a
   * bad adapter fails on the first member before any other is touched). If a member fails, the members already
   * changed are brought back to the catalogue as it was, in its order (which GenAI's bytes depend on).
   */
  #change(
    name: string,
    next: (catalogue: Array<[string, AdapterSpec]>) => Array<[string, AdapterSpec]>,
    apply: (member: Pipeline) => Promise<void>,
  ): Promise<void> {
    if (this.#disposing) return Promise.reject(new DisposedError('The pipeline pool'));
    return this.#changes.run(async () => {
      const before = this.#catalogue;
      const after = next(before);
      const changed: Pipeline[] = [];
      try {
        for (const member of this.#members) {
          await apply(member);
          changed.push(member);
          poolHooks.onMemberChanged?.(member);
        }
      } catch (err) {
        // The member that failed is as it was (Pipeline's own guarantee); the ones before it changed.
        const failures: unknown[] = [];
        for (const member of changed.reverse()) {
          try {
            await restore(member, before, name);
          } catch (undoErr) {
            failures.push(undoErr);
          }
        }
        if (failures.length > 0) {
          throw new MultiloraError(
            'ERR_GENAI',
            `A pipeline of the pool failed to change its adapters (${(err as Error).message}), and ${failures.length} could not be brought back: dispose the pool`,
            { cause: new AggregateError([err, ...failures]) },
          );
        }
        throw err;
      }
      this.#catalogue = after;
      this.#infos = this.#members[0].adapters.list();
    });
  }
}

interface Job {
  start(member: Pipeline): void;
}

/** What checkGenerate reads of a registered adapter, from what the pool knows of it. */
class Registered implements CheckAdapter {
  readonly name: string;
  readonly alpha: number;
  readonly template: string | undefined;
  readonly negativePrompt: string | undefined;

  constructor(info: AdapterInfo) {
    this.name = info.name;
    this.alpha = info.alpha;
    this.template = info.template;
    this.negativePrompt = info.negativePrompt;
  }

  wrap(prompt: string): string {
    return applyTemplate(this.template, prompt);
  }
}

/** The adapters a pipeline loaded with these (already checked) options registered, in Pipeline.load's order. */
function catalogueOf(options: LoadOptions): Array<[string, AdapterSpec]> {
  const sources = options.catalog === undefined ? [] : readCatalog(options.catalog);
  for (const [name, spec] of Object.entries(options.adapters ?? {})) sources.push(checkSpec(name, spec));
  return sources.map((s) => [s.name, specOf(s)]);
}

/**
 * Brings a member back to `target` (names and specs in registration order) after a failed change of adapter
 * `changed`: drops what is not in it, then adds again, in order, every adapter from the first place where the member
 * differs (each add puts its adapter last, so this rebuilds the order exactly).
 */
async function restore(member: Pipeline, target: Array<[string, AdapterSpec]>, changed: string): Promise<void> {
  const wanted = new Set(target.map(([n]) => n));
  for (const n of member.adapters.names) if (!wanted.has(n)) await member.adapters.remove(n);
  const now = member.adapters.names;
  let from = target.findIndex(([n], i) => now[i] !== n || n === changed);
  if (from < 0) from = target.length;
  // add() replaces an adapter in its place: what follows `from` goes, then comes back in the target's order.
  for (const n of now.slice(from)) await member.adapters.remove(n);
  for (const [n, spec] of target.slice(from)) await member.adapters.add(n, spec);
  const names = member.adapters.names;
  if (names.length !== target.length || target.some(([n], i) => names[i] !== n)) {
    throw new MultiloraError(
      'ERR_GENAI',
      `A pipeline of the pool has adapters ${names.join(', ')} instead of ${target.map(([n]) => n).join(', ')}`,
    );
  }
}

/** For tests: the member pipelines of a pool. Not exported by the package. */
export function poolMembers(pool: PipelinePool): readonly Pipeline[] {
  return membersOf(pool);
}

/**
 * @internal Checks a generate call as `pool.generate` would, for a caller that needs the checked call itself (the
 * remote worker reports the adapters and alphas it ran with). Run it with runPoolCall: it is not checked again.
 */
export function checkPoolCall(pool: PipelinePool, prompt: unknown, options: unknown): CheckedCall {
  return checkOn(pool, prompt, options);
}

/** @internal Runs a call that checkPoolCall checked, as `pool.generate` does. */
export function runPoolCall(pool: PipelinePool, call: CheckedCall): Promise<Image | Image[]> {
  return runOn(pool, call);
}
