// Scale-out on BullMQ and Redis: RemoteQueue enqueues generations that `multilora worker` processes (lib/worker.ts)
// take. What both sides share is here: the queue's names in Redis, what a job carries, what it gives back.
//
// In Redis, under the prefix (default "multilora") and the queue's name (default "generate"):
// - BullMQ's own keys for the queue;
// - `<prefix>:<queue>:result:<job id>:<i>`: the RGB bytes of image i, with a TTL (resultTtl, default 1 h);
// - `<prefix>:<queue>:cancel:<job id>`: set by job.cancel(), read by the worker that takes the job;
//   and the channel `<prefix>:<queue>:cancel`, which tells running workers at once;
// - `<prefix>:<queue>:workers`: a hash of the live workers (model, defaults, adapters), refreshed every few seconds.
import { EventEmitter } from 'node:events';

import type { AdapterInfo } from './adapter-set';
import type { AdapterReport } from './diagnose';
import { AbortError, ERROR_CODES, MultiloraError, type ErrorCode } from './errors';
import type { ModelInfo } from './model';
import type { AdapterSelection, GenerateOptions, Image, Metrics, ModelDefaults, ProgressEvent } from './options';
import { integer, invalid, knownKeys, object, reading, string } from './validate';

// bullmq and ioredis load on first use: users who never scale out never pay for them.
type Bull = typeof import('bullmq');
type IORedisCtor = typeof import('ioredis').default;
type Redis = import('ioredis').default;

/** @internal */
export function bull(): Bull {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('bullmq') as Bull;
}

/** @internal */
export function ioredis(): IORedisCtor {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('ioredis') as { default: IORedisCtor }).default;
}

export const DEFAULT_QUEUE = 'generate';
export const DEFAULT_PREFIX = 'multilora';
/** How long a result's image bytes stay in Redis after the job completes, by default. */
export const DEFAULT_RESULT_TTL_S = 3600;
/** How often a worker refreshes its entry in the workers hash; an entry counts while it is WORKER_FRESH_MS fresh. */
export const WORKER_HEARTBEAT_MS = 2000;
export const WORKER_FRESH_MS = 7000;

/** @internal The Redis names of one queue. */
export function names(prefix: string, queue: string) {
  const base = `${prefix}:${queue}`;
  return {
    result: (id: string, i: number) => `${base}:result:${id}:${i}`,
    cancelFlag: (id: string) => `${base}:cancel:${id}`,
    cancelChannel: `${base}:cancel`,
    workers: `${base}:workers`,
  };
}

/** The options of generate that travel with a job: everything but what lives in this process. */
export type RemoteGenerateOptions = Omit<GenerateOptions, 'onProgress' | 'signal' | 'output'> & { numImages?: number };

/** @internal What a job carries. */
export interface JobData {
  v: 1;
  prompt: string;
  options: RemoteGenerateOptions;
}

/** @internal What a completed job returns (the bytes themselves are in the result keys). */
export interface JobResult {
  v: 1;
  images: Array<{ key: string; width: number; height: number; seed: number; bytes: number }>;
  metrics: Metrics;
  /** The adapters the call ran with, and their alphas. */
  adapters: Record<string, number>;
  worker: string;
  timings: { queuedMs: number; runMs: number };
  /** Seconds the bytes stay in Redis after completion. */
  ttl: number;
}

/** @internal What a job reports as progress. */
export interface JobProgress {
  step: number;
  total: number;
  elapsedMs: number;
  preview?: { width: number; height: number; channels: 3; data: string };
}

/** @internal What a worker publishes about itself. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  model: Pick<ModelInfo, 'pipelineClass' | 'family' | 'vaeScaleFactor'> & { dir: string };
  defaults: ModelDefaults;
  /** `report`: what multilora matched of each (AdapterReport without the tensor names); absent from older workers. */
  adapters: Array<Pick<AdapterInfo, 'name' | 'alpha' | 'template' | 'negativePrompt'> & { report?: Omit<AdapterReport, 'unmatchedTensors'> }>;
  started: number;
  heartbeat: number;
}

/** @internal A failure as a job's failedReason: the code travels with the message. */
export function encodeFailure(err: unknown): string {
  if (err instanceof MultiloraError) return JSON.stringify({ code: err.code, message: err.message });
  return JSON.stringify({ code: 'ERR_GENAI', message: err instanceof Error ? err.message : String(err) });
}

/** @internal The MultiloraError a failedReason stands for. */
export function decodeFailure(reason: string | undefined, jobId: string): MultiloraError {
  try {
    const { code, message } = JSON.parse(reason ?? '') as { code: ErrorCode; message: string };
    if (code === 'ERR_ABORTED') return new AbortError(new Error(`job ${jobId} was cancelled`));
    if ((ERROR_CODES as readonly string[]).includes(code)) return new MultiloraError(code, message);
  } catch {
    // not ours: BullMQ's own reasons (a job stalled too often...)
  }
  return new MultiloraError('ERR_REMOTE', `Job ${jobId} failed: ${reason ?? 'no reason given'}`);
}

const OPTION_KEYS = [
  'adapters', 'applyTemplate', 'seed', 'generator', 'width', 'height', 'steps', 'guidanceScale', 'negativePrompt',
  'prompt2', 'prompt3', 'negativePrompt2', 'negativePrompt3', 'maxSequenceLength', 'scheduler', 'preview', 'numImages',
];
const LOCAL_KEYS = ['onProgress', 'signal'];

/** The adapter names a selection uses. */
function selectedNames(selection: AdapterSelection | undefined): string[] {
  if (selection === undefined || selection === null) return [];
  if (typeof selection === 'string') return [selection];
  if (Array.isArray(selection)) return selection.filter((s): s is string => typeof s === 'string');
  return Object.keys(selection);
}

export interface RemoteQueueOptions {
  /** A Redis URL: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  redis: string;
  /** The queue's name. Default "generate". Workers must use the same. */
  queue?: string;
  /** The prefix of every key in Redis. Default "multilora". */
  prefix?: string;
}

export interface EnqueueOptions extends RemoteGenerateOptions {
  /** Progress events of the job, as `generate` gives them (preview pictures included with `preview: true`). */
  onProgress?: (event: ProgressEvent) => void;
  /** Cancels the job (job.cancel()) when it aborts. */
  signal?: AbortSignal;
}

export interface RemoteJobDetails {
  id: string;
  /** 'waiting', 'active', 'completed', 'failed', 'delayed'..., or 'unknown' once removed (cancelled, or expired). */
  state: string;
  /** How many times a worker took it (more than 1 after a worker died with it). */
  attempts?: number;
  worker?: string;
  adapters?: Record<string, number>;
  timings?: { queuedMs: number; runMs: number };
  seeds?: number[];
  error?: MultiloraError;
}

/**
 * A generation job in the queue. Progress comes as 'progress' events (ProgressEvent), `result()` waits for the image,
 * `cancel()` stops it: removed if it still waits, stopped at its next step if a worker runs it.
 */
export class RemoteJob extends EventEmitter {
  readonly id: string;
  readonly #queue: RemoteQueue;
  #settled: Promise<Image | Image[]> | undefined;
  #cancelled: (() => void) | undefined;
  readonly #cancelledLocally: Promise<never>;
  readonly #numImages: number | undefined;

  /** @internal */
  constructor(queue: RemoteQueue, id: string, numImages: number | undefined) {
    super();
    this.#queue = queue;
    this.id = id;
    this.#numImages = numImages;
    this.#cancelledLocally = new Promise<never>((_, reject) => {
      this.#cancelled = () => reject(new AbortError(new Error(`job ${id} was cancelled`)));
    });
    this.#cancelledLocally.catch(() => undefined);
  }

  /** The job's state in BullMQ: 'waiting', 'active', 'completed', 'failed', 'delayed'..., or 'unknown' once removed. */
  async state(): Promise<string> {
    const job = await this.#queue.bullJob(this.id);
    return job ? job.getState() : 'unknown';
  }

  /**
   * What the queue knows of the job: its state, and once completed the worker that made it, the adapters and alphas
   * it ran with, and its timings (time waiting in the queue, time running); once failed, its error.
   */
  async details(): Promise<RemoteJobDetails> {
    const job = await this.#queue.bullJob(this.id);
    if (!job) return { id: this.id, state: 'unknown' };
    const state = await job.getState();
    const details: RemoteJobDetails = { id: this.id, state, attempts: job.attemptsStarted ?? job.attemptsMade };
    const result = job.returnvalue as JobResult | null;
    if (result && state === 'completed') {
      details.worker = result.worker;
      details.adapters = result.adapters;
      details.timings = result.timings;
      details.seeds = result.images.map((i) => i.seed);
    }
    if (state === 'failed') details.error = decodeFailure(job.failedReason, this.id);
    return details;
  }

  /**
   * The image (an array with numImages), the same as `generate` gives: resolves when a worker completed the job, and
   * rejects with the job's MultiloraError (its code kept), AbortError when it was cancelled, ERR_RESULT_EXPIRED when
   * its bytes outlived their TTL in Redis.
   */
  result(): Promise<Image | Image[]> {
    this.#settled ??= Promise.race([this.#queue.waitFor(this.id), this.#cancelledLocally]).then((r) =>
      this.#queue.fetchImages(this.id, r, this.#numImages),
    );
    return this.#settled;
  }

  /**
   * Cancels the job: a waiting job is removed (result() rejects with AbortError at once); a running one stops at its
   * worker's next step (result() rejects with AbortError when it has). Does nothing to a finished job.
   */
  async cancel(): Promise<void> {
    const removed = await this.#queue.cancelJob(this.id);
    if (removed) this.#cancelled?.();
  }
}

/** Enqueues generations for `multilora worker` processes, which may run on other machines, through Redis. */
export class RemoteQueue {
  readonly name: string;
  readonly prefix: string;
  readonly #names: ReturnType<typeof names>;
  readonly #url: string;
  readonly #queue: import('bullmq').Queue;
  #events: import('bullmq').QueueEvents | undefined;
  readonly #redis: Redis;
  readonly #jobs = new Map<string, RemoteJob>();
  #closed = false;

  constructor(options: RemoteQueueOptions) {
    const opts = object(options, 'options');
    knownKeys(opts, ['redis', 'queue', 'prefix'], 'the RemoteQueue options');
    const url = checkRedisUrl(opts.redis, 'options.redis');
    this.name = opts.queue === undefined ? DEFAULT_QUEUE : checkName(opts.queue, 'options.queue');
    this.prefix = opts.prefix === undefined ? DEFAULT_PREFIX : checkName(opts.prefix, 'options.prefix');
    this.#names = names(this.prefix, this.name);
    this.#url = url;
    const { Queue } = bull();
    // Commands fail after one retry instead of waiting for a Redis that is down: enqueue() rejects with ERR_REMOTE.
    const connection = { url, maxRetriesPerRequest: 1, connectTimeout: 5000 };
    this.#queue = new Queue(this.name, { connection, prefix: this.prefix });
    this.#queue.on('error', () => undefined); // each call reports its own failure
    this.#queue.setMaxListeners(0); // every job followed at once listens for the queue's closing
    this.#redis = new (ioredis())(url, { maxRetriesPerRequest: 1, connectTimeout: 5000 });
    this.#redis.on('error', () => undefined);
  }

  /** @internal One QueueEvents for every job of this queue, made on first need. */
  #queueEvents(): import('bullmq').QueueEvents {
    if (!this.#events) {
      const { QueueEvents } = bull();
      this.#events = new QueueEvents(this.name, { connection: { url: this.#url, connectTimeout: 5000 }, prefix: this.prefix });
      this.#events.on('error', () => undefined);
      this.#events.setMaxListeners(0);
      this.#events.on('progress', ({ jobId, data }) => {
        const job = this.#jobs.get(jobId);
        if (!job || typeof data !== 'object' || data === null) return;
        const p = data as unknown as JobProgress;
        const event: ProgressEvent = { step: p.step, total: p.total, elapsedMs: p.elapsedMs };
        if (p.preview) event.preview = { ...p.preview, data: Buffer.from(p.preview.data, 'base64') };
        job.emit('progress', event);
      });
      // A finished or removed job has no more progress to route: this queue stops holding it (a long-lived queue,
      // as serve --redis keeps, would otherwise keep every job it ever followed).
      const forget = ({ jobId }: { jobId: string }): void => void this.#jobs.delete(jobId);
      this.#events.on('completed', forget).on('failed', forget).on('removed', forget);
    }
    return this.#events;
  }

  #check(): void {
    if (this.#closed) throw new MultiloraError('ERR_DISPOSED', 'The RemoteQueue was closed');
  }

  /** The live workers: their models, defaults and adapters. */
  async workers(): Promise<WorkerInfo[]> {
    this.#check();
    const all = await remote(() => this.#redis.hgetall(this.#names.workers), 'read the workers');
    const now = Date.now();
    const entries = Object.values(all).map((text) => JSON.parse(text) as WorkerInfo);
    // A worker that died without closing (SIGKILL, a machine gone) leaves its entry: it stops counting, and goes.
    const stale = entries.filter((w) => now - w.heartbeat >= 4 * WORKER_FRESH_MS).map((w) => w.id);
    if (stale.length) await this.#redis.hdel(this.#names.workers, ...stale).catch(() => undefined);
    return entries.filter((w) => now - w.heartbeat < WORKER_FRESH_MS).sort((a, b) => a.started - b.started);
  }

  /**
   * Puts a generation in the queue; resolves with its job once Redis has it. The options are generate's, adapters by
   * name. When workers are live, a job that names an adapter none of them has is refused here (ERR_INVALID_ARGUMENT);
   * the worker checks everything again, and fails the job with the same error as generate.
   */
  async enqueue(prompt: string, options: EnqueueOptions = {}): Promise<RemoteJob> {
    this.#check();
    string(prompt, 'prompt', { maxLength: 100_000 });
    const opts = object(options, 'options');
    knownKeys(opts, [...OPTION_KEYS, ...LOCAL_KEYS], 'the enqueue options');
    const data: JobData = { v: 1, prompt, options: {} };
    const copy = data.options as Record<string, unknown>;
    for (const key of OPTION_KEYS) {
      const value = reading(`options.${key}`, () => opts[key]);
      if (value !== undefined) copy[key] = value;
    }
    const onProgress = reading('options.onProgress', () => opts.onProgress);
    if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid('a function', 'options.onProgress', onProgress);
    const signal = reading('options.signal', () => opts.signal);
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('an AbortSignal', 'options.signal', signal);
    if (signal?.aborted) throw new AbortError(signal.reason);
    let text: string;
    try {
      text = JSON.stringify(data);
    } catch (err) {
      throw new MultiloraError('ERR_INVALID_ARGUMENT', `The options cannot travel as JSON: ${(err as Error).message}`);
    }
    if (text.length > 1_000_000) throw invalid('options under 1 MB as JSON', 'options', options);
    if (copy.numImages !== undefined) integer(copy.numImages, 'options.numImages', 1, 16);
    const wanted = selectedNames(copy.adapters as AdapterSelection | undefined);
    if (wanted.length) {
      const live = await this.workers();
      if (live.length) {
        const known = new Set(live.flatMap((w) => w.adapters.map((a) => a.name)));
        const unknown = wanted.filter((n) => !known.has(n));
        if (unknown.length) {
          throw new MultiloraError(
            'ERR_INVALID_ARGUMENT',
            `Unknown adapter ${unknown.map((n) => JSON.stringify(n)).join(', ')}: the workers have ${[...known].map((n) => JSON.stringify(n)).join(', ') || 'none'}`,
          );
        }
      }
    }
    await remote(() => this.#redis.ping(), 'enqueue the job', 5000);
    this.#queueEvents(); // listening before the job exists, so that no event is missed
    const job = await remote(
      () => this.#queue.add('generate', data as never, { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 24 * 3600 } }),
      'enqueue the job',
    );
    const remoteJob = new RemoteJob(this, job.id!, copy.numImages as number | undefined);
    this.#jobs.set(job.id!, remoteJob);
    if (onProgress) remoteJob.on('progress', onProgress as (e: ProgressEvent) => void);
    if (signal) {
      const cancel = (): void => void remoteJob.cancel().catch(() => undefined);
      signal.addEventListener('abort', cancel, { once: true });
      if (signal.aborted) cancel(); // aborted while enqueue awaited Redis: the listener came too late to hear it
      remoteJob.result().then(
        () => signal.removeEventListener('abort', cancel),
        () => signal.removeEventListener('abort', cancel),
      );
    }
    return remoteJob;
  }

  /** A job enqueued by anyone, by its id; null when Redis has no such job. */
  async job(id: string): Promise<RemoteJob | null> {
    this.#check();
    string(id, 'id', { nonEmpty: true });
    const found = await this.bullJob(id);
    if (!found) return null;
    let job = this.#jobs.get(id);
    if (!job) {
      this.#queueEvents();
      job = new RemoteJob(this, id, (found.data as JobData).options?.numImages);
      this.#jobs.set(id, job);
    }
    return job;
  }

  /** Counts of the queue's jobs by state. */
  async counts(): Promise<{ waiting: number; active: number; completed: number; failed: number; delayed: number }> {
    this.#check();
    const c = await remote(() => this.#queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed'), 'count the jobs');
    return { waiting: c.waiting ?? 0, active: c.active ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0, delayed: c.delayed ?? 0 };
  }

  /** @internal */
  async bullJob(id: string): Promise<import('bullmq').Job | undefined> {
    return remote(() => this.#queue.getJob(id), 'read the job');
  }

  /** @internal Resolves with the job's result record, or rejects with its failure. */
  async waitFor(id: string): Promise<JobResult> {
    const events = this.#queueEvents();
    const job = await this.bullJob(id);
    if (!job) throw new MultiloraError('ERR_REMOTE', `Job ${id} is not in the queue (removed, or expired)`);
    try {
      return (await job.waitUntilFinished(events)) as JobResult;
    } catch (err) {
      if (err instanceof MultiloraError) throw err;
      throw decodeFailure((err as Error).message, id);
    } finally {
      this.#jobs.get(id)?.removeAllListeners('progress');
      this.#jobs.delete(id);
    }
  }

  /** @internal The images of a completed job, read from Redis. */
  async fetchImages(id: string, result: JobResult, numImages: number | undefined): Promise<Image | Image[]> {
    const images: Image[] = [];
    for (const meta of result.images) {
      const data = await remote(() => this.#redis.getBuffer(meta.key), 'read the result');
      if (!data) {
        throw new MultiloraError('ERR_RESULT_EXPIRED', `The image of job ${id} is no longer in Redis: results stay ${result.ttl} s after the job completes (the workers' resultTtl)`);
      }
      images.push({ width: meta.width, height: meta.height, channels: 3, data, seed: meta.seed, metrics: result.metrics });
    }
    return numImages === undefined ? images[0]! : images;
  }

  /** @internal Marks a job cancelled; removes it when it still waits. True when it was removed. */
  async cancelJob(id: string): Promise<boolean> {
    const n = this.#names;
    await remote(
      () => this.#redis.multi().set(n.cancelFlag(id), '1', 'EX', 24 * 3600).publish(n.cancelChannel, id).exec(),
      'cancel the job',
    );
    const job = await this.bullJob(id);
    if (!job) return false;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false; // a worker took it in the meantime: it sees the flag and stops
    }
  }

  /** Closes the connections. Jobs in the queue stay for the workers; this process stops following them. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#queue.close(), this.#events?.close(), this.#redis.quit().catch(() => this.#redis.disconnect())]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * @internal Runs a Redis operation; a failure becomes ERR_REMOTE naming what it was for, and so does no answer within
 * `timeoutMs` (BullMQ waits for a Redis that is down for as long as it takes: a caller should hear of it).
 */
export async function remote<T>(op: () => Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([op(), late]);
  } catch (err) {
    if (err instanceof MultiloraError) throw err;
    throw new MultiloraError('ERR_REMOTE', `Could not ${what} in Redis: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** A Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** @internal */
export function checkRedisUrl(value: unknown, name: string): string {
  const text = string(value, name, { nonEmpty: true, maxLength: 4096 });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('a Redis URL such as redis://127.0.0.1:6379', name, value);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw invalid('a redis:// or rediss:// URL', name, value);
  return text;
}

function checkName(value: unknown, name: string): string {
  const text = string(value, name, { nonEmpty: true, maxLength: 100 });
  if (!/^[\w.-]+$/.test(text)) throw invalid('letters, digits, ".", "_" or "-"', name, value);
  return text;
}
