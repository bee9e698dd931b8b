// Scale-out on BullMQ and Redis: RemoteQueue enqueues generations that `multilora worker` processes (lib/remote/worker.ts)
// take. What both sides share is here: the queue's names in Redis, what a job carries, what it gives back.
//
// In Redis, under the prefix (default "multilora") and the queue's name (default "generate"):
// - BullMQ's own keys for the queue;
// - `<prefix>:<queue>:result:<job id>:<i>`: the RGB bytes of image i, with a TTL (resultTtl, default 1 h);
// - `<prefix>:<queue>:cancel:<job id>`: set by job.cancel() for CANCEL_FLAG_TTL_S, read by the worker that takes the
//   job; and the channel `<prefix>:<queue>:cancel`, which tells running workers at once;
// - `<prefix>:<queue>:workers`: a hash of the workers' descriptions (model, defaults, adapters, limits), and
//   `<prefix>:<queue>:alive:<worker id>`: a key each worker sets with an expiry of WORKER_FRESH_MS every
//   WORKER_HEARTBEAT_MS. A worker is live while its key exists: Redis's clock decides, not the hosts'.
//
// Job ids are random UUIDs, not BullMQ's counter: a Redis restarted without persistence starts its counter again,
// and a waiter for job 24 would otherwise be handed the next job 24. A waiter checks every JOB_CHECK_MS that its job
// is still in Redis, and result() checks that the record it reads is its job's (id, seed, size, count).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

import type { AdapterInfo } from '../core/adapter-set';
import type { AdapterSummary } from '../lora/diagnose';
import { AbortError, ERROR_CODES, MultiloraError, type ErrorCode } from '../core/errors';
import type { ModelInfo } from '../core/model';
import {
  checkHooks,
  type AdapterSelection,
  type GenerateOptions,
  type Image,
  type Metrics,
  type ModelDefaults,
  type ProgressEvent,
} from '../core/options';
import {
  ALPHA,
  LOCAL_KEYS,
  MAX_PROMPT,
  REMOTE_KEYS,
  checkPortable,
  optionName,
  type CheckPolicy,
} from '../core/schema';
import { finite, integer, invalid, isPlainObject, knownKeys, object, reading, string } from '../core/validate';

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
/** How often a worker sets its liveness key (and its entry in the workers hash); the key expires after WORKER_FRESH_MS. */
export const WORKER_HEARTBEAT_MS = 2000;
export const WORKER_FRESH_MS = 7000;
/** How often a waiter checks that its job is still in Redis. */
const JOB_CHECK_MS = 2000;
/**
 * How long, by default, a waiter bears with an unreachable Redis before result() rejects with ERR_JOB_LOST. With a
 * probe's own time-out (2 × JOB_CHECK_MS) and the interval, result() settles at most 26 s after Redis went away.
 */
const DEFAULT_LOST_AFTER_MS = 20_000;
/** How long close() waits for Redis before it drops the connections. */
const CLOSE_GRACE_MS = 2000;
/** Seconds a cancel flag lives: long enough for the worker that took the job meanwhile to see it. */
const CANCEL_FLAG_TTL_S = 600;

/** @internal The Redis names of one queue. */
export function names(prefix: string, queue: string) {
  const base = `${prefix}:${queue}`;
  return {
    result: (id: string, i: number) => `${base}:result:${id}:${i}`,
    cancelFlag: (id: string) => `${base}:cancel:${id}`,
    cancelChannel: `${base}:cancel`,
    workers: `${base}:workers`,
    alive: (workerId: string) => `${base}:alive:${workerId}`,
  };
}

/** The options of generate that travel with a job: everything but what lives in this process. */
export type RemoteGenerateOptions = Omit<GenerateOptions, 'onProgress' | 'signal' | 'output'> & { numImages?: number };

/**
 * @internal What a job carries. As read from Redis, its options are of any shape until the worker checks them
 * (checkGenerate); RemoteQueue writes RemoteGenerateOptions.
 */
export interface JobData {
  v: 1;
  prompt: string;
  options: Record<string, unknown>;
}

/** @internal What a completed job returns (the bytes themselves are in the result keys). */
export interface JobResult {
  v: 1;
  /** The job it is the result of: result() refuses a record of another job. */
  jobId: string;
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

/** Whether a progress record is a JobProgress (the worker's); anything else is not routed. */
function isJobProgress(data: unknown): data is JobProgress {
  return (
    isPlainObject(data) &&
    typeof data.step === 'number' &&
    typeof data.total === 'number' &&
    typeof data.elapsedMs === 'number'
  );
}

/** @internal What a worker publishes about itself. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  model: Pick<ModelInfo, 'pipelineClass' | 'family' | 'vaeScaleFactor'> & { dir: string };
  defaults: ModelDefaults;
  /** `report`: what multilora matched of each; absent from older workers. */
  adapters: Array<Pick<AdapterInfo, 'name' | 'alpha' | 'template' | 'negativePrompt'> & { report?: AdapterSummary }>;
  /** The largest job it takes (absent from older workers). */
  limits?: WorkerLimits;
  /** When it started, in ms since the epoch by Redis's clock: the oldest live worker's model is the one shown. */
  started: number;
}

/** The largest job a worker takes; a larger one fails with ERR_INVALID_ARGUMENT before anything is allocated. */
export interface WorkerLimits {
  /** Largest width and height, in pixels. */
  maxSize: number;
  maxSteps: number;
  /** Largest numImages. */
  maxImages: number;
}

/**
 * @internal A workers-hash entry, checked: null when it is not JSON or not the shape of a WorkerInfo (written by
 * something else, or by hand). Readers skip such entries and remove them.
 */
function parseWorkerInfo(text: string): WorkerInfo | null {
  let w: unknown;
  try {
    w = JSON.parse(text);
  } catch {
    return null;
  }
  return isWorkerInfo(w) ? w : null;
}

function isWorkerInfo(w: unknown): w is WorkerInfo {
  const str = (v: unknown): v is string => typeof v === 'string';
  const optStr = (v: unknown): boolean => v === undefined || typeof v === 'string';
  const int = (v: unknown, min = 0): v is number => Number.isSafeInteger(v) && (v as number) >= min;
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!isPlainObject(w)) return false;
  const { id, host, pid, concurrency, model, defaults, adapters, limits, started } = w;
  if (!str(id) || id === '' || !str(host) || !int(pid) || !int(concurrency, 1) || !num(started)) return false;
  if (
    !isPlainObject(model) ||
    !str(model.dir) ||
    !str(model.pipelineClass) ||
    !str(model.family) ||
    !int(model.vaeScaleFactor, 1)
  )
    return false;
  if (
    !isPlainObject(defaults) ||
    !int(defaults.width, 1) ||
    !int(defaults.height, 1) ||
    !int(defaults.steps, 1) ||
    !num(defaults.guidanceScale)
  )
    return false;
  if (!Array.isArray(adapters)) return false;
  for (const a of adapters as unknown[]) {
    if (!isPlainObject(a) || !str(a.name) || !num(a.alpha) || !optStr(a.template) || !optStr(a.negativePrompt))
      return false;
    const r = a.report;
    if (r === undefined) continue;
    if (!isPlainObject(r) || !str(r.format) || !Array.isArray(r.ranks) || !r.ranks.every((x) => num(x))) return false;
    if (
      !Array.isArray(r.targets) ||
      !r.targets.every(str) ||
      !int(r.matched) ||
      !int(r.unmatched) ||
      typeof r.converted !== 'boolean'
    )
      return false;
  }
  if (
    limits !== undefined &&
    (!isPlainObject(limits) || !int(limits.maxSize, 1) || !int(limits.maxSteps, 1) || !int(limits.maxImages, 1))
  )
    return false;
  return true;
}

/**
 * @internal What a job carries, checked on the worker before anything runs (the job may have been written into
 * Redis by anything). Generate checks the options' values; this checks the record's shape and keys.
 */
export function checkJobData(data: unknown, jobId: string): JobData {
  const not = (why: string): MultiloraError =>
    new MultiloraError('ERR_INVALID_ARGUMENT', `Job ${jobId} is not a multilora generation job: ${why}`);
  if (!isPlainObject(data)) throw not(`its data is ${describeShape(data)}, not an object`);
  if (data.v !== 1) throw not(`expected v 1 but found ${JSON.stringify(data.v) ?? 'none'}`);
  if (typeof data.prompt !== 'string') throw not(`its prompt is ${describeShape(data.prompt)}, not a string`);
  if (!isPlainObject(data.options)) throw not(`its options are ${describeShape(data.options)}, not an object`);
  knownKeys(data.options, REMOTE_KEYS, `the options of job ${jobId}`);
  return { v: 1, prompt: data.prompt, options: data.options };
}

function describeShape(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * @internal Checks a job against a worker's limits: the values that decide how much memory and time it takes. The
 * model's defaults stand for what the job leaves out.
 */
export function checkLimits(options: Record<string, unknown>, limits: WorkerLimits, where: string): void {
  const over = (name: string, max: number, flag: string): void => {
    const value = options[name];
    if (value === undefined) return;
    if (typeof value !== 'number' || value > max) {
      throw invalid(`a number of at most ${max} (the ${flag} of ${where})`, `options.${name}`, value);
    }
  };
  over('width', limits.maxSize, '--max-size');
  over('height', limits.maxSize, '--max-size');
  over('steps', limits.maxSteps, '--max-steps');
  over('numImages', limits.maxImages, '--max-images');
}

/** @internal A failure as a job's failedReason: the code travels with the message. */
export function encodeFailure(err: unknown): string {
  if (err instanceof MultiloraError) return JSON.stringify({ code: err.code, message: err.message });
  return JSON.stringify({ code: 'ERR_GENAI', message: err instanceof Error ? err.message : String(err) });
}

/** @internal The MultiloraError a failedReason stands for. */
function decodeFailure(reason: string | undefined, jobId: string): MultiloraError {
  try {
    const { code, message } = JSON.parse(reason ?? '') as { code: ErrorCode; message: string };
    if (code === 'ERR_ABORTED') return new AbortError(new Error(`job ${jobId} was cancelled`));
    if ((ERROR_CODES as readonly string[]).includes(code)) return new MultiloraError(code, message);
  } catch {
    // not ours: BullMQ's own reasons (a job stalled too often...)
  }
  return new MultiloraError('ERR_REMOTE', `Job ${jobId} failed: ${reason ?? 'no reason given'}`);
}

/** Removes the workers-hash entries (KEYS[1]) of the workers (ARGV: id, liveness key, ...) whose key is gone. */
const DROP_DEAD = `for i = 1, #ARGV, 2 do
  if redis.call('exists', ARGV[i + 1]) == 0 then redis.call('hdel', KEYS[1], ARGV[i]) end
end
return 0`;

/** The adapter names a selection uses. */
function selectedNames(selection: AdapterSelection | undefined): string[] {
  if (selection === undefined || selection === null) return [];
  if (typeof selection === 'string') return [selection];
  if (Array.isArray(selection)) return selection.filter((s): s is string => typeof s === 'string');
  return Object.keys(selection);
}

/** @internal A job checked on the caller's side (checkEnqueue), to enqueue with enqueueChecked. */
export interface CheckedJob {
  data: JobData;
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

/**
 * @internal The caller's side of a job: its options checked as far as no model is needed (the schema's values, and
 * the alphas of a { name: alpha } map), within a service's limits and under its names (`policy`), and split into
 * what travels as JSON and what stays in this process. The worker checks the whole call again.
 */
export function checkEnqueue(prompt: unknown, options: unknown, policy?: CheckPolicy): CheckedJob {
  checkHooks.onCheck?.('enqueue');
  const text = string(prompt, 'prompt', { maxLength: policy?.limits?.prompt ?? MAX_PROMPT });
  const opts = object(options, 'options');
  knownKeys(opts, [...REMOTE_KEYS, ...LOCAL_KEYS], 'the enqueue options');
  const copy: Record<string, unknown> = {};
  const data: JobData = { v: 1, prompt: text, options: copy };
  for (const key of REMOTE_KEYS) {
    const value = reading(`options.${key}`, () => opts[key]);
    if (value !== undefined) copy[key] = value;
  }
  const onProgress = reading('options.onProgress', () => opts.onProgress);
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw invalid('a function', 'options.onProgress', onProgress);
  const signal = reading('options.signal', () => opts.signal);
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw invalid('an AbortSignal', 'options.signal', signal);
  if (signal?.aborted) throw new AbortError(signal.reason);
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `The options cannot travel as JSON: ${(err as Error).message}`);
  }
  if (json.length > 1_000_000) throw invalid('options under 1 MB as JSON', 'options', options);
  checkPortable(copy, REMOTE_KEYS, policy);
  if (isPlainObject(copy.adapters)) {
    const bound = policy?.limits?.alpha ?? ALPHA.max;
    const base = optionName('adapters', policy);
    for (const [name, alpha] of Object.entries(copy.adapters))
      finite(alpha, `${base}[${JSON.stringify(name)}]`, -bound, bound);
  }
  const checked: CheckedJob = { data };
  if (onProgress !== undefined) checked.onProgress = onProgress as (event: ProgressEvent) => void;
  if (signal !== undefined) checked.signal = signal;
  return checked;
}

export interface RemoteQueueOptions {
  /** A Redis URL: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  redis: string;
  /** The queue's name. Default "generate". Workers must use the same. */
  queue?: string;
  /** The prefix of every key in Redis. Default "multilora". */
  prefix?: string;
  /**
   * How long result() bears with a Redis it cannot reach, in ms, before it rejects with ERR_JOB_LOST. Default 20 000:
   * result() settles at most 26 s after Redis went away. A job that Redis no longer has (a restart without
   * persistence lost it) rejects within JOB_CHECK_MS (2 s) of Redis answering again.
   */
  lostAfterMs?: number;
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

/** @internal What a job asked for, that its result must show: result() refuses a record that does not. */
export interface JobRequest {
  numImages?: number | undefined;
  seed?: number | undefined;
  width?: number | undefined;
  height?: number | undefined;
}

/** @internal The request that a job's options make. */
function requestOf(options: Record<string, unknown> | undefined): JobRequest {
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  return {
    numImages: num(options?.numImages),
    seed: num(options?.seed),
    width: num(options?.width),
    height: num(options?.height),
  };
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
  readonly #request: JobRequest;

  /** @internal */
  constructor(queue: RemoteQueue, id: string, request: JobRequest) {
    super();
    this.#queue = queue;
    this.id = id;
    this.#request = request;
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
   * its bytes outlived their TTL in Redis, ERR_JOB_LOST when Redis no longer has the job (restarted without
   * persistence) or could not be reached for `lostAfterMs`.
   */
  result(): Promise<Image | Image[]> {
    this.#settled ??= Promise.race([this.#queue.waitFor(this.id), this.#cancelledLocally]).then((r) =>
      this.#queue.fetchImages(this.id, r, this.#request),
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

/** Set by RemoteQueue's static block: see enqueueChecked. */
let enqueueCheckedOn: (queue: RemoteQueue, job: CheckedJob) => Promise<RemoteJob>;

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
  readonly #lostAfterMs: number;
  /** The waiters of result(): close() rejects them at once. */
  readonly #waiters = new Set<() => void>();
  #closed = false;

  static {
    enqueueCheckedOn = (queue, job) => queue.#enqueueChecked(job);
  }

  constructor(options: RemoteQueueOptions) {
    const opts = object(options, 'options');
    knownKeys(opts, ['redis', 'queue', 'prefix', 'lostAfterMs'], 'the RemoteQueue options');
    const url = checkRedisUrl(opts.redis, 'options.redis');
    this.#lostAfterMs =
      opts.lostAfterMs === undefined
        ? DEFAULT_LOST_AFTER_MS
        : integer(opts.lostAfterMs, 'options.lostAfterMs', 1000, 3_600_000);
    this.name = opts.queue === undefined ? DEFAULT_QUEUE : checkName(opts.queue, 'options.queue');
    this.prefix = opts.prefix === undefined ? DEFAULT_PREFIX : checkName(opts.prefix, 'options.prefix');
    this.#names = names(this.prefix, this.name);
    this.#url = url;
    const { Queue } = bull();
    // Commands fail after one retry instead of waiting for a Redis that is down: enqueue() rejects with ERR_REMOTE.
    // The connections are this queue's own, given to BullMQ: close() can always drop them, which BullMQ's own close
    // does not while Redis is down.
    this.#redis = new (ioredis())(url, { maxRetriesPerRequest: 1, connectTimeout: 5000 });
    this.#redis.on('error', () => undefined);
    this.#queue = new Queue(this.name, { connection: this.#redis, prefix: this.prefix });
    this.#queue.on('error', () => undefined); // each call reports its own failure
    this.#queue.setMaxListeners(0); // every job followed at once listens for the queue's closing
  }

  /** @internal One QueueEvents for every job of this queue, made on first need. */
  #queueEvents(): import('bullmq').QueueEvents {
    if (!this.#events) {
      const { QueueEvents } = bull();
      // BullMQ makes the events' connection itself (it duplicates any it is given, for its blocking reads): it stops
      // reconnecting once this queue is closed.
      const retryStrategy = (times: number): number | null => (this.#closed ? null : Math.min(1000 * times, 5000));
      this.#events = new QueueEvents(this.name, {
        connection: { url: this.#url, connectTimeout: 5000, retryStrategy },
        prefix: this.prefix,
      });
      this.#events.on('error', () => undefined);
      this.#events.setMaxListeners(0);
      this.#events.on('progress', ({ jobId, data }) => {
        const job = this.#jobs.get(jobId);
        if (!job || !isJobProgress(data)) return;
        const p = data;
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

  /**
   * The live workers: their models, defaults, adapters and limits, oldest first. A worker is live while its liveness
   * key is in Redis (it expires WORKER_FRESH_MS after the worker's last heartbeat, by Redis's clock). Entries of dead
   * workers, and entries that are not a worker's description at all, are skipped and removed.
   */
  async workers(): Promise<WorkerInfo[]> {
    this.#check();
    return this.#liveWorkers('read the workers');
  }

  async #liveWorkers(what: string): Promise<WorkerInfo[]> {
    const n = this.#names;
    const all = await remote(() => this.#redis.hgetall(n.workers), what);
    const ids = Object.keys(all);
    if (!ids.length) return [];
    const alive = await remote(() => {
      const multi = this.#redis.multi();
      for (const id of ids) multi.exists(n.alive(id));
      return multi.exec();
    }, what);
    const live: WorkerInfo[] = [];
    const bogus: string[] = [];
    const dead: string[] = [];
    ids.forEach((id, i) => {
      const info = parseWorkerInfo(all[id]);
      if (!info || info.id !== id) bogus.push(id);
      else if (alive?.[i]?.[1] === 1) live.push(info);
      else dead.push(id);
    });
    if (bogus.length) await this.#redis.hdel(n.workers, ...bogus).catch(() => undefined);
    // A dead worker's entry goes, unless the worker beat again meanwhile (its key is back): checked in Redis, at once.
    if (dead.length)
      await this.#redis
        .eval(DROP_DEAD, 1, n.workers, ...dead.flatMap((id) => [id, n.alive(id)]))
        .catch(() => undefined);
    return live.sort((a, b) => a.started - b.started);
  }

  /**
   * Puts a generation in the queue; resolves with its job once Redis has it. The options are generate's, adapters by
   * name. When workers are live, a job that names an adapter none of them has is refused here (ERR_INVALID_ARGUMENT);
   * the worker checks everything again, and fails the job with the same error as generate.
   */
  async enqueue(prompt: string, options: EnqueueOptions = {}): Promise<RemoteJob> {
    this.#check();
    return this.#enqueueChecked(checkEnqueue(prompt, options));
  }

  /** Enqueues a job that checkEnqueue checked: it is not checked again. */
  async #enqueueChecked({ data, onProgress, signal }: CheckedJob): Promise<RemoteJob> {
    this.#check();
    if (signal?.aborted) throw new AbortError(signal.reason);
    const copy = data.options;
    // With workers live, what none of them would take is refused here: an adapter none has, a job over their limits.
    const live = await this.#liveWorkers('enqueue the job');
    if (live.length) {
      const wanted = selectedNames(copy.adapters as AdapterSelection | undefined);
      const known = new Set(live.flatMap((w) => w.adapters.map((a) => a.name)));
      const unknown = wanted.filter((n) => !known.has(n));
      if (unknown.length) {
        throw new MultiloraError(
          'ERR_INVALID_ARGUMENT',
          `Unknown adapter ${unknown.map((n) => JSON.stringify(n)).join(', ')}: the workers have ${[...known].map((n) => JSON.stringify(n)).join(', ') || 'none'}`,
        );
      }
      // Any live worker may take the job: it must fit the smallest limits.
      const limited = live.filter((w) => w.limits);
      if (limited.length) {
        const limits: WorkerLimits = {
          maxSize: Math.min(...limited.map((w) => w.limits!.maxSize)),
          maxSteps: Math.min(...limited.map((w) => w.limits!.maxSteps)),
          maxImages: Math.min(...limited.map((w) => w.limits!.maxImages)),
        };
        checkLimits(copy, limits, 'the live workers');
      }
    }
    this.#queueEvents(); // listening before the job exists, so that no event is missed
    const id = randomUUID();
    await remote(
      () =>
        this.#queue.add('generate', data, {
          jobId: id,
          removeOnComplete: { age: 3600, count: 10_000 },
          removeOnFail: { age: 24 * 3600 },
        }),
      'enqueue the job',
    );
    const remoteJob = new RemoteJob(this, id, requestOf(copy));
    this.#jobs.set(id, remoteJob);
    if (onProgress) remoteJob.on('progress', onProgress);
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
      const data = found.data as Partial<JobData> | null;
      job = new RemoteJob(this, id, requestOf(isPlainObject(data?.options) ? data.options : undefined));
      this.#jobs.set(id, job);
    }
    return job;
  }

  /** Counts of the queue's jobs by state. */
  async counts(): Promise<{ waiting: number; active: number; completed: number; failed: number; delayed: number }> {
    this.#check();
    const c = await remote(
      () => this.#queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed'),
      'count the jobs',
    );
    return {
      waiting: c.waiting ?? 0,
      active: c.active ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
      delayed: c.delayed ?? 0,
    };
  }

  /** @internal */
  async bullJob(id: string): Promise<import('bullmq').Job | undefined> {
    return remote(() => this.#queue.getJob(id), 'read the job');
  }

  /**
   * @internal Resolves with the job's result record, or rejects with its failure. Besides the queue's events, it
   * reads the job's state every JOB_CHECK_MS: a job Redis no longer has (restarted without persistence, removed by
   * someone else) rejects with ERR_JOB_LOST (AbortError when a cancel flag says why), and so does a Redis that cannot
   * be reached for lostAfterMs.
   */
  async waitFor(id: string): Promise<JobResult> {
    const events = this.#queueEvents();
    const n = this.#names;
    try {
      return await new Promise<JobResult>((resolve, reject) => {
        let settled = false;
        let timer: NodeJS.Timeout | undefined;
        /** When Redis last answered a probe. */
        let answered = Date.now();
        const onClose = (): void =>
          settle(() => reject(new MultiloraError('ERR_DISPOSED', 'The RemoteQueue was closed')));
        this.#waiters.add(onClose);
        const settle = (fn: () => void): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.#waiters.delete(onClose);
          events.off('completed', onFinished).off('failed', onFinished);
          fn();
        };
        // The event says the job finished; its record in Redis says how (read again: the event's copy is the same).
        const onFinished = ({ jobId }: { jobId: string }): void => {
          if (jobId === id) void check();
        };
        events.on('completed', onFinished).on('failed', onFinished);
        const probe = async (): Promise<void> => {
          try {
            const state = await remote(() => this.#queue.getJobState(id), 'read the job', JOB_CHECK_MS * 2);
            answered = Date.now();
            if (state === 'unknown') {
              const cancelled = await remote(
                () => this.#redis.exists(n.cancelFlag(id)),
                'read the job',
                JOB_CHECK_MS * 2,
              );
              if (cancelled) return settle(() => reject(new AbortError(new Error(`job ${id} was cancelled`))));
              return settle(() =>
                reject(
                  new MultiloraError(
                    'ERR_JOB_LOST',
                    `Job ${id} is no longer in Redis: it was removed, or Redis restarted without persistence and lost it (enqueue it again)`,
                  ),
                ),
              );
            }
            if (state !== 'completed' && state !== 'failed') return;
            // Finished: its record, read after the state, has the result or the reason.
            const job = await remote(() => this.#queue.getJob(id), 'read the job', JOB_CHECK_MS * 2);
            if (!job) return; // removed in between: the next probe says how
            if (state === 'completed') return settle(() => resolve(job.returnvalue as JobResult));
            return settle(() => reject(decodeFailure(job.failedReason, id)));
          } catch (err) {
            if (!this.#closed && Date.now() - answered >= this.#lostAfterMs) {
              return settle(() =>
                reject(
                  new MultiloraError(
                    'ERR_JOB_LOST',
                    `Lost track of job ${id}: Redis could not be reached for ${this.#lostAfterMs / 1000} s (${(err as Error).message})`,
                    { cause: err },
                  ),
                ),
              );
            }
          }
          if (this.#closed) settle(() => reject(new MultiloraError('ERR_DISPOSED', 'The RemoteQueue was closed')));
        };
        // One probe at a time: an event during a probe asks for another right after it.
        let probing = false;
        let again = false;
        const check = async (): Promise<void> => {
          if (settled) return;
          if (probing) {
            again = true;
            return;
          }
          probing = true;
          clearTimeout(timer);
          await probe();
          probing = false;
          if (settled) return;
          if (again) {
            again = false;
            return check();
          }
          timer = setTimeout(() => void check(), JOB_CHECK_MS);
        };
        void check();
      });
    } finally {
      this.#jobs.get(id)?.removeAllListeners('progress');
      this.#jobs.delete(id);
    }
  }

  /**
   * @internal The images of a completed job, read from Redis, once its record is shown to be this job's: the same id,
   * and the count, seed and size the job asked for.
   */
  async fetchImages(id: string, result: JobResult, request: JobRequest): Promise<Image | Image[]> {
    const mismatch = (why: string): MultiloraError =>
      new MultiloraError('ERR_JOB_LOST', `The result in Redis is not job ${id}'s (${why}): it was not handed over`);
    if (!isPlainObject(result) || result.jobId !== id)
      throw mismatch(`it is job ${JSON.stringify((result as Partial<JobResult> | null)?.jobId)}'s`);
    if (!Array.isArray(result.images) || result.images.length !== (request.numImages ?? 1))
      throw mismatch(`${result.images?.length} images`);
    for (const meta of result.images) {
      if (request.seed !== undefined && meta.seed !== request.seed)
        throw mismatch(`seed ${meta.seed}, not ${request.seed}`);
      if (request.width !== undefined && meta.width !== request.width)
        throw mismatch(`width ${meta.width}, not ${request.width}`);
      if (request.height !== undefined && meta.height !== request.height)
        throw mismatch(`height ${meta.height}, not ${request.height}`);
    }
    const images: Image[] = [];
    for (const meta of result.images) {
      const data = await remote(() => this.#redis.getBuffer(meta.key), 'read the result');
      if (!data) {
        throw new MultiloraError(
          'ERR_RESULT_EXPIRED',
          `The image of job ${id} is no longer in Redis: results stay ${result.ttl} s after the job completes (the workers' resultTtl)`,
        );
      }
      if (data.length !== meta.width * meta.height * 3)
        throw mismatch(`${data.length} bytes for ${meta.width}x${meta.height}`);
      images.push({
        width: meta.width,
        height: meta.height,
        channels: 3,
        data,
        seed: meta.seed,
        metrics: result.metrics,
      });
    }
    return request.numImages === undefined ? images[0] : images;
  }

  /** @internal Marks a job cancelled; removes it when it still waits. True when it was removed. */
  async cancelJob(id: string): Promise<boolean> {
    const n = this.#names;
    await remote(
      () => this.#redis.multi().set(n.cancelFlag(id), '1', 'EX', CANCEL_FLAG_TTL_S).publish(n.cancelChannel, id).exec(),
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
    for (const stop of [...this.#waiters]) stop();
    // Gracefully while Redis answers; after CLOSE_GRACE_MS (Redis is down) the connections are dropped.
    let timer: NodeJS.Timeout | undefined;
    const graceful = Promise.allSettled([this.#queue.close(), this.#events?.close()]).then(() => this.#redis.quit());
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), CLOSE_GRACE_MS)));
    await Promise.race([graceful, late]);
    clearTimeout(timer);
    this.#redis.disconnect();
    void this.#events?.disconnect().catch(() => undefined);
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
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw invalid('a redis:// or rediss:// URL', name, value);
  return text;
}

function checkName(value: unknown, name: string): string {
  const text = string(value, name, { nonEmpty: true, maxLength: 100 });
  if (!/^[\w.-]+$/.test(text)) throw invalid('letters, digits, ".", "_" or "-"', name, value);
  return text;
}

/**
 * @internal Enqueues a job that checkEnqueue checked (the server checks its requests so, with its own limits): it is
 * not checked again in this process. The worker checks the whole call.
 */
export function enqueueChecked(queue: RemoteQueue, job: CheckedJob): Promise<RemoteJob> {
  return enqueueCheckedOn(queue, job);
}
