// What the server generates on: one local Pipeline (`multilora serve`), or the workers behind a RemoteQueue
// (`multilora serve --redis URL`). The request handling in index.ts is the same for both; only this differs.
import path from 'node:path';

import { MultiloraError } from '../core/errors';
import { checkGenerate, type CheckedCall, type Image, type ModelDefaults, type ProgressEvent } from '../core/options';
import { checkContext, runChecked, type Pipeline } from '../core/pipeline';
import { summarizeReport, type AdapterSummary } from '../lora/diagnose';
import {
  RemoteQueue,
  checkEnqueue,
  enqueueChecked,
  redactUrl,
  type CheckedJob,
  type RemoteJob,
  type WorkerInfo,
} from '../remote/queue';
import { SERVER_POLICY } from './request';

/** An adapter as GET /v1/loras shows it. */
export interface BackendAdapter {
  name: string;
  alpha: number;
  template?: string | undefined;
  negativePrompt?: string | undefined;
  /** What multilora matched of it; null when a worker did not publish it. */
  report: AdapterSummary | null;
}

/** The model, its defaults and the adapters: what the page and the API show, and what requests are checked against. */
export interface BackendInfo {
  model: { pipelineClass: string; family: string; vaeScaleFactor: number; name: string };
  defaults: ModelDefaults;
  adapters: BackendAdapter[];
}

/** A call the backend's check passed: the local one's (checkGenerate), or a job for the workers (checkEnqueue). */
export type BackendCall = { kind: 'local'; call: CheckedCall } | { kind: 'redis'; job: CheckedJob };

/** What a job adds to its call once admitted. */
export interface JobHooks {
  signal: AbortSignal;
  onProgress: (event: ProgressEvent) => void;
}

export interface Backend {
  readonly kind: 'local' | 'redis';
  info(): Promise<BackendInfo>;
  /** Whether a job posted now starts at once (its state is then 'running' before its first step). */
  idle(): boolean;
  /** Jobs queued or running that this server's own count does not see (other producers of a shared queue): 0 locally. */
  depth(): Promise<number>;
  /**
   * Checks a request's call, once, with the library's check, within the service limits and naming the request's
   * fields (SERVER_POLICY): a MultiloraError ERR_INVALID_ARGUMENT when it fails. generate() does not check it again.
   */
  check(prompt: string, options: Record<string, unknown>): BackendCall;
  /** Generates a checked call; rejects with the job's MultiloraError, or AbortError once `signal` stopped it. */
  generate(call: BackendCall, hooks: JobHooks): Promise<Image[]>;
  /** What GET /v1/status says under `backend`. */
  status(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** One Pipeline in this process. */
export class LocalBackend implements Backend {
  readonly kind = 'local';
  readonly #pipeline: Pipeline;

  constructor(pipeline: Pipeline) {
    this.#pipeline = pipeline;
  }

  async info(): Promise<BackendInfo> {
    const p = this.#pipeline;
    return {
      model: {
        pipelineClass: p.model.pipelineClass,
        family: p.model.family,
        vaeScaleFactor: p.model.vaeScaleFactor,
        name: path.basename(p.model.dir),
      },
      defaults: p.defaults,
      adapters: p.adapters.list().map((a) => ({
        name: a.name,
        alpha: a.alpha,
        template: a.template,
        negativePrompt: a.negativePrompt,
        report: summarizeReport(a.info),
      })),
    };
  }

  idle(): boolean {
    return this.#pipeline.pending === 0;
  }

  async depth(): Promise<number> {
    return 0;
  }

  check(prompt: string, options: Record<string, unknown>): BackendCall {
    const ctx = { ...checkContext(this.#pipeline), policy: SERVER_POLICY };
    return { kind: 'local', call: checkGenerate(prompt, options, ctx) };
  }

  async generate(checked: BackendCall, hooks: JobHooks): Promise<Image[]> {
    if (checked.kind !== 'local') throw new TypeError('A call checked by another backend');
    const out = await runChecked(this.#pipeline, { ...checked.call, ...hooks });
    return Array.isArray(out) ? out : [out];
  }

  async status(): Promise<Record<string, unknown>> {
    return { kind: 'local' };
  }

  close(): Promise<void> {
    return this.#pipeline.dispose();
  }
}

export interface RemoteBackendOptions {
  redis: string;
  queue?: string | undefined;
  prefix?: string | undefined;
  /** How long to wait for a live worker at start, in ms. */
  waitForWorkersMs: number;
}

/** How long the workers' info is reused before Redis is read again. */
const INFO_FRESH_MS = 1000;
/** How long close() waits for the cancels it sent to reach Redis. */
const CANCEL_GRACE_MS = 5000;

/** The workers behind a RemoteQueue: each generation is a job in Redis. */
export class RemoteBackend implements Backend {
  readonly kind = 'redis';
  readonly #queue: RemoteQueue;
  readonly #url: string;
  #info: BackendInfo;
  #workers: WorkerInfo[];
  #read = Date.now();
  /** Generations whose enqueue has not resolved yet: not in Redis's counts, already accepted here. */
  #enqueuing = 0;
  readonly #cancels = new Set<Promise<void>>();
  readonly #closed: Promise<never>;
  #close!: (err: Error) => void;

  private constructor(queue: RemoteQueue, url: string, workers: WorkerInfo[]) {
    this.#queue = queue;
    this.#url = url;
    this.#workers = workers;
    this.#info = infoOf(workers);
    this.#closed = new Promise<never>((_, reject) => {
      this.#close = reject;
    });
    this.#closed.catch(() => undefined);
  }

  /**
   * Connects, and waits up to `waitForWorkersMs` for a live worker. ERR_REMOTE, naming the URL (its password
   * hidden) and the queue, when Redis cannot be reached or no worker shows up.
   */
  static async connect(o: RemoteBackendOptions): Promise<RemoteBackend> {
    const opts: ConstructorParameters<typeof RemoteQueue>[0] = { redis: o.redis };
    if (o.queue !== undefined) opts.queue = o.queue;
    if (o.prefix !== undefined) opts.prefix = o.prefix;
    const queue = new RemoteQueue(opts);
    const where = `Redis at ${redactUrl(o.redis)} (queue "${queue.name}", prefix "${queue.prefix}")`;
    try {
      const deadline = Date.now() + o.waitForWorkersMs;
      for (;;) {
        let live: WorkerInfo[];
        try {
          live = await queue.workers();
        } catch (err) {
          throw new MultiloraError('ERR_REMOTE', `Could not reach ${where}: ${(err as Error).message}`, { cause: err });
        }
        if (live.length) return new RemoteBackend(queue, o.redis, live);
        const left = deadline - Date.now();
        if (left <= 0) {
          const flags = [`--redis ${redactUrl(o.redis)}`];
          if (o.queue !== undefined) flags.push(`--queue ${queue.name}`);
          if (o.prefix !== undefined) flags.push(`--prefix ${queue.prefix}`);
          throw new MultiloraError(
            'ERR_REMOTE',
            `No multilora worker is live on ${where} after ${o.waitForWorkersMs / 1000} s: start one with ` +
              `\`multilora worker ${flags.join(' ')} --model DIR --catalog file.json\``,
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(250, left)));
      }
    } catch (err) {
      await queue.close();
      throw err;
    }
  }

  /** The oldest live worker's model and defaults, and every live worker's adapters; the last known when none is live. */
  async info(): Promise<BackendInfo> {
    if (Date.now() - this.#read >= INFO_FRESH_MS) {
      const live = await this.#queue.workers();
      this.#read = Date.now();
      this.#workers = live;
      if (live.length) this.#info = infoOf(live);
    }
    return this.#info;
  }

  idle(): boolean {
    return false; // 'queued' until a worker reports its first step
  }

  async depth(): Promise<number> {
    const c = await this.#queue.counts();
    return c.waiting + c.active + c.delayed + this.#enqueuing;
  }

  check(prompt: string, options: Record<string, unknown>): BackendCall {
    return { kind: 'redis', job: checkEnqueue(prompt, options, SERVER_POLICY) };
  }

  async generate(checked: BackendCall, { signal, onProgress }: JobHooks): Promise<Image[]> {
    if (checked.kind !== 'redis') throw new TypeError('A call checked by another backend');
    this.#enqueuing += 1;
    let job: RemoteJob;
    try {
      job = await enqueueChecked(this.#queue, { ...checked.job, onProgress });
    } finally {
      this.#enqueuing -= 1;
    }
    // Cancelled (DELETE, the client gone, the server closing): removed if it waits, stopped at the worker's next
    // step if it runs. result() rejects with AbortError once it has.
    const cancel = (): void => {
      const sent = job.cancel().catch(() => undefined);
      this.#cancels.add(sent);
      void sent.finally(() => this.#cancels.delete(sent));
    };
    if (signal.aborted) cancel();
    else signal.addEventListener('abort', cancel, { once: true });
    try {
      const out = await Promise.race([job.result(), this.#closed]);
      return Array.isArray(out) ? out : [out];
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  async status(): Promise<Record<string, unknown>> {
    const [c] = await Promise.all([this.#queue.counts(), this.info()]);
    return {
      kind: 'redis',
      queue: this.#queue.name,
      prefix: this.#queue.prefix,
      waiting: c.waiting + c.delayed,
      active: c.active,
      workers: this.#workers.map((w) => ({
        id: w.id,
        concurrency: w.concurrency,
        model: path.basename(w.model.dir),
        adapters: w.adapters.map((a) => a.name),
      })),
    };
  }

  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#cancels]),
      new Promise((r) => (timer = setTimeout(r, CANCEL_GRACE_MS))),
    ]);
    clearTimeout(timer);
    this.#close(
      new MultiloraError('ERR_DISPOSED', `The server closed: it stopped following its jobs in ${redactUrl(this.#url)}`),
    );
    await this.#queue.close();
  }
}

function infoOf(workers: WorkerInfo[]): BackendInfo {
  const first = workers[0];
  const adapters = new Map<string, BackendAdapter>();
  for (const w of workers) {
    for (const a of w.adapters) {
      if (adapters.has(a.name)) continue;
      adapters.set(a.name, {
        name: a.name,
        alpha: a.alpha,
        template: a.template,
        negativePrompt: a.negativePrompt,
        report: a.report ?? null,
      });
    }
  }
  return {
    model: {
      pipelineClass: first.model.pipelineClass,
      family: first.model.family,
      vaeScaleFactor: first.model.vaeScaleFactor,
      name: path.basename(first.model.dir),
    },
    defaults: first.defaults,
    adapters: [...adapters.values()],
  };
}
