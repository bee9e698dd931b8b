// `multilora worker`: a BullMQ worker that takes RemoteQueue's generation jobs, with one pipeline per slot
// (a PipelinePool of `concurrency` members, each with the catalogue's adapters). See lib/remote/queue.ts for the protocol.
import { randomUUID } from 'node:crypto';
import os from 'node:os';

import type { AdapterSpec } from '../core/adapter';
import { AbortError, MultiloraError } from '../core/errors';
import type { Image, ProgressEvent } from '../core/options';
import type { MultiloraWarning } from '../core/pipeline';
import { PipelinePool, checkPoolCall, runPoolCall, type PipelinePoolOptions } from '../core/pool';
import { MAX_IMAGES, MAX_SIDE, SERVICE_LIMITS, bounds } from '../core/schema';
import { summarizeReport } from '../lora/diagnose';
import {
  DEFAULT_PREFIX,
  DEFAULT_QUEUE,
  DEFAULT_RESULT_TTL_S,
  WORKER_FRESH_MS,
  WORKER_HEARTBEAT_MS,
  bull,
  checkJobData,
  checkLimits,
  checkRedisUrl,
  encodeFailure,
  ioredis,
  names,
  redactUrl,
  remote,
  type JobData,
  type JobProgress,
  type JobResult,
  type WorkerInfo,
  type WorkerLimits,
} from './queue';
import { sizeLimits } from '../server/limits';
import { integer, knownKeys, object, string } from '../core/validate';

/** With Redis unreachable while closing: how long after close() the worker gives up on it, and after a hand-back. */
const GIVE_UP_AFTER_CLOSE_MS = 20_000;
const GIVE_UP_AFTER_HAND_BACK_MS = 5_000;

export interface WorkerOptions {
  /** A Redis URL, as RemoteQueue's. */
  redis: string;
  /** The OpenVINO model folder. */
  model: string;
  /** The adapters to register, by name (as Pipeline.load's). */
  adapters?: Record<string, AdapterSpec>;
  /** A JSON catalogue of adapters (as Pipeline.load's). */
  catalog?: string;
  /** Jobs run at once, each on a pipeline of its own. Default 1. */
  concurrency?: number;
  /** As RemoteQueue's. */
  queue?: string;
  prefix?: string;
  /** Seconds a result's bytes stay in Redis after the job completes. Default 3600. */
  resultTtl?: number;
  /**
   * How long a running job's lock lasts without renewal, in ms (BullMQ's lockDuration; renewed at half of it while
   * the worker lives). A worker that dies loses its jobs to the others this long after. Default 30000.
   */
  lockDuration?: number;
  /** Threads per pipeline (Pipeline.load's `threads`). Default: OpenVINO's own choice. */
  threads?: number;
  /**
   * The largest width and height a job may ask for. Default: what `multilora serve` allows for the model (2048 for a
   * real one). A larger job fails with ERR_INVALID_ARGUMENT before anything is allocated.
   */
  maxSize?: number;
  /** The most steps a job may ask for. Default 500, as `multilora serve`. */
  maxSteps?: number;
  /** The most images one job may ask for. Default 4, as `multilora serve`. */
  maxImages?: number;
  device?: string;
  onWarning?: (warning: MultiloraWarning) => void;
  /** What the worker does, for logs: 'ready', 'active', 'completed', 'failed', 'handed-back'. */
  onEvent?: (event: WorkerEvent) => void;
}

export interface WorkerEvent {
  event: 'ready' | 'active' | 'completed' | 'failed' | 'handed-back';
  jobId?: string;
  message: string;
}

export interface RunningWorker {
  readonly id: string;
  readonly info: WorkerInfo;
  /**
   * Stops taking jobs. By default lets the running ones finish first; with `handBack: true`, stops them at their next
   * step and puts them back in the queue for another worker. Then closes the connections and the pipelines.
   * When Redis cannot be reached, nothing can be handed back nor stored: the worker waits 20 s after close() (5 s
   * after a hand-back) for Redis to return, then stops its jobs and closes anyway; `unreturned` names them.
   */
  close(options?: { handBack?: boolean }): Promise<WorkerClosed>;
  /** Resolves when the worker has closed. */
  readonly closed: Promise<WorkerClosed>;
}

export interface WorkerClosed {
  /** False when Redis could not be reached and the worker closed without it. */
  clean: boolean;
  /**
   * The jobs the worker took and could neither complete, fail nor hand back in Redis (it could not be reached). If
   * Redis kept them, their locks expire and another worker takes them; if it lost them, their waiters get ERR_JOB_LOST.
   */
  unreturned: string[];
}

/** The worker's options, checked. */
interface Settings {
  url: string;
  model: string;
  concurrency: number;
  resultTtl: number;
  lockDuration: number;
  queueName: string;
  prefix: string;
  maxSize: number | undefined;
  maxSteps: number;
  maxImages: number;
  load: PipelinePoolOptions;
  onEvent: (event: WorkerEvent) => void;
}

const WORKER_KEYS = [
  'redis',
  'model',
  'adapters',
  'catalog',
  'concurrency',
  'queue',
  'prefix',
  'resultTtl',
  'lockDuration',
  'threads',
  'maxSize',
  'maxSteps',
  'maxImages',
  'device',
  'onWarning',
  'onEvent',
] as const;

function checkOptions(options: WorkerOptions): Settings {
  const opts = object(options, 'options');
  knownKeys(opts, WORKER_KEYS, 'the worker options');
  const concurrency = opts.concurrency === undefined ? 1 : integer(opts.concurrency, 'options.concurrency', 1, 64);
  // The rest of the load options are PipelinePool.load's to check.
  const load: PipelinePoolOptions = { size: concurrency };
  if (options.adapters !== undefined) load.adapters = options.adapters;
  if (options.catalog !== undefined) load.catalog = options.catalog;
  if (options.threads !== undefined) load.threads = options.threads;
  if (options.device !== undefined) load.device = options.device;
  if (options.onWarning !== undefined) load.onWarning = options.onWarning;
  return {
    url: checkRedisUrl(opts.redis, 'options.redis'),
    model: string(opts.model, 'options.model', { nonEmpty: true }),
    concurrency,
    resultTtl:
      opts.resultTtl === undefined
        ? DEFAULT_RESULT_TTL_S
        : integer(opts.resultTtl, 'options.resultTtl', 1, 30 * 24 * 3600),
    lockDuration:
      opts.lockDuration === undefined ? 30_000 : integer(opts.lockDuration, 'options.lockDuration', 1000, 3_600_000),
    queueName: opts.queue === undefined ? DEFAULT_QUEUE : string(opts.queue, 'options.queue', { nonEmpty: true }),
    prefix: opts.prefix === undefined ? DEFAULT_PREFIX : string(opts.prefix, 'options.prefix', { nonEmpty: true }),
    // A service's defaults, up to the library's own bounds.
    maxSize: opts.maxSize === undefined ? undefined : integer(opts.maxSize, 'options.maxSize', 1, MAX_SIDE),
    maxSteps:
      opts.maxSteps === undefined
        ? SERVICE_LIMITS.steps
        : integer(opts.maxSteps, 'options.maxSteps', 1, bounds('steps').max),
    maxImages:
      opts.maxImages === undefined
        ? SERVICE_LIMITS.numImages
        : integer(opts.maxImages, 'options.maxImages', 1, MAX_IMAGES),
    load,
    onEvent: options.onEvent ?? (() => undefined),
  };
}

/** Connects to Redis: a wrong URL fails in seconds, before the long load of the pipelines. */
async function connect(url: string): Promise<Redis> {
  const redis = new (ioredis())(url, { maxRetriesPerRequest: 1, connectTimeout: 5000, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new MultiloraError('ERR_REMOTE', `Could not reach Redis at ${redactUrl(url)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return redis;
}

/** What the worker publishes about itself. Started by Redis's clock, as liveness is: the hosts' clocks need not agree. */
async function describeWorker(id: string, pool: PipelinePool, settings: Settings, redis: Redis): Promise<WorkerInfo> {
  const limits: WorkerLimits = {
    maxSize: settings.maxSize ?? sizeLimits(pool.defaults, pool.model.vaeScaleFactor).max,
    maxSteps: settings.maxSteps,
    maxImages: settings.maxImages,
  };
  const [seconds, micros] = await redis.time().catch(() => [Math.floor(Date.now() / 1000), 0]);
  return {
    id,
    host: os.hostname(),
    pid: process.pid,
    concurrency: settings.concurrency,
    model: {
      dir: pool.model.dir,
      pipelineClass: pool.model.pipelineClass,
      family: pool.model.family,
      vaeScaleFactor: pool.model.vaeScaleFactor,
    },
    defaults: pool.defaults,
    adapters: pool.adapters.list().map((a) => ({
      name: a.name,
      alpha: a.alpha,
      template: a.template,
      negativePrompt: a.negativePrompt,
      report: summarizeReport(a.info),
    })),
    limits,
    started: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000),
  };
}

/** The description in the hash, and a key that lives WORKER_FRESH_MS: readers list the worker while the key exists. */
async function startHeartbeat(redis: Redis, n: Names, info: WorkerInfo): Promise<NodeJS.Timeout> {
  const description = JSON.stringify(info);
  const beat = async (): Promise<void> => {
    await redis
      .multi()
      .hset(n.workers, info.id, description)
      .set(n.alive(info.id), '1', 'PX', WORKER_FRESH_MS)
      .exec()
      .catch(() => undefined);
  };
  await beat();
  const heartbeat = setInterval(() => void beat(), WORKER_HEARTBEAT_MS);
  heartbeat.unref();
  return heartbeat;
}

type Redis = import('ioredis').default;
type Names = ReturnType<typeof names>;
type BullJob = import('bullmq').Job<JobData, JobResult>;

/** What the job processor and close() share. */
interface WorkerState {
  handingBack: boolean;
  /** Set when Redis could not be reached while closing: the running jobs stop, and nothing waits for Redis. */
  giveUp: boolean;
  /** The running jobs' AbortControllers, by job id. */
  running: Map<string, AbortController>;
  /** The jobs taken and not yet completed, failed or handed back in Redis. */
  unsettled: Set<string>;
  /** Running jobs that Redis no longer has (restarted without persistence): stopped, as nobody can get their result. */
  vanished: Set<string>;
}

interface Processing {
  pool: PipelinePool;
  redis: Redis;
  n: Names;
  info: WorkerInfo;
  settings: Settings;
  state: WorkerState;
}

/** Runs one job: checks it (anything may have written it), generates, stores the images in Redis. */
async function runJob(job: BullJob, jobId: string, abort: AbortController, p: Processing): Promise<JobResult> {
  const { pool, redis, n, info, settings } = p;
  // The job's timestamp is its producer's clock: a skewed one gives nonsense, not a negative wait.
  const queuedMs = Math.max(0, Date.now() - job.timestamp);
  // Its shape and its size are checked before anything is allocated; then the call, once, as generate would.
  const data = checkJobData(job.data, jobId);
  checkLimits(data.options, info.limits!, 'this worker');
  if (await redis.exists(n.cancelFlag(jobId))) throw new AbortError(new Error('cancelled before it started'));
  const started = Date.now();
  let lastProgress = Promise.resolve();
  const onProgress = (e: ProgressEvent): void => {
    const progress: JobProgress = { step: e.step, total: e.total, elapsedMs: e.elapsedMs };
    if (e.preview)
      progress.preview = {
        width: e.preview.width,
        height: e.preview.height,
        channels: 3,
        data: e.preview.data.toString('base64'),
      };
    lastProgress = job.updateProgress({ ...progress }).catch(() => undefined);
  };
  const call = checkPoolCall(pool, data.prompt, { ...data.options, signal: abort.signal, onProgress });
  const out = await runPoolCall(pool, call);
  await lastProgress;
  const images = Array.isArray(out) ? out : [out];
  const multi = redis.multi();
  const metas = images.map((image: Image, i) => {
    const key = n.result(jobId, i);
    multi.set(key, image.data, 'EX', settings.resultTtl);
    return { key, width: image.width, height: image.height, seed: image.seed, bytes: image.data.length };
  });
  await remote(() => multi.exec(), `store the result of job ${jobId}`);
  settings.onEvent({ event: 'completed', jobId, message: `job ${jobId} completed in ${Date.now() - started} ms` });
  return {
    v: 1,
    jobId,
    images: metas,
    metrics: images[0].metrics,
    // The adapters the call ran with, at their alphas.
    adapters: Object.fromEntries(call.adapters),
    worker: info.id,
    timings: { queuedMs, runMs: Date.now() - started },
    ttl: settings.resultTtl,
  };
}

/** BullMQ's processor: runs a job, and says in Redis how it ended (failed, or handed back to the queue). */
function makeProcessor(p: Processing): (job: BullJob, token?: string) => Promise<JobResult> {
  const { UnrecoverableError, WaitingError } = bull();
  const { state, settings } = p;
  return async (job, token) => {
    const jobId = job.id ?? '';
    const abort = new AbortController();
    state.running.set(jobId, abort);
    state.unsettled.add(jobId);
    settings.onEvent({ event: 'active', jobId, message: `job ${jobId} started` });
    try {
      return await runJob(job, jobId, abort, p);
    } catch (err) {
      if (state.vanished.delete(jobId)) {
        state.unsettled.delete(jobId);
        settings.onEvent({
          event: 'failed',
          jobId,
          message: `job ${jobId} stopped: Redis no longer has it (restarted without persistence?)`,
        });
        throw err;
      }
      if (state.handingBack && abort.signal.aborted && err instanceof AbortError && !state.giveUp) {
        // Stopped for a hand-back: the job goes back to the queue, for another worker.
        await job.moveToWait(token);
        state.unsettled.delete(jobId);
        settings.onEvent({ event: 'handed-back', jobId, message: `job ${jobId} handed back to the queue` });
        throw new WaitingError();
      }
      settings.onEvent({ event: 'failed', jobId, message: `job ${jobId} failed: ${(err as Error).message}` });
      // Every failure of a generation is its own, not the worker's: retrying would fail the same way.
      throw new UnrecoverableError(encodeFailure(err));
    } finally {
      state.running.delete(jobId);
    }
  };
}

/** The BullMQ worker that takes the jobs. */
async function startBullWorker(p: Processing): Promise<import('bullmq').Worker<JobData, JobResult>> {
  const { settings, state, redis } = p;
  const { Worker } = bull();
  const worker = new Worker<JobData, JobResult>(settings.queueName, makeProcessor(p), {
    connection: { url: settings.url },
    prefix: settings.prefix,
    concurrency: settings.concurrency,
    lockDuration: settings.lockDuration,
    stalledInterval: settings.lockDuration,
    maxStalledCount: 2,
    autorun: true,
  });
  worker.on('error', () => undefined);
  // A lock that could not be renewed: if Redis lost the job itself, the running job stops.
  worker.on('lockRenewalFailed', (jobIds: string[]) => {
    for (const jobId of jobIds) {
      void redis
        .exists(worker.toKey(jobId))
        .then((found) => {
          const abort = state.running.get(jobId);
          if (found || !abort) return;
          state.vanished.add(jobId);
          abort.abort(new Error('Redis no longer has the job'));
        })
        .catch(() => undefined);
    }
  });
  // Completed or failed in Redis: nothing of the job is left with this worker.
  worker
    .on('completed', (job) => state.unsettled.delete(job.id ?? ''))
    .on('failed', (job) => job && state.unsettled.delete(job.id ?? ''));
  await worker.waitUntilReady();
  return worker;
}

/** Starts a worker in this process: loads the pipelines, then takes jobs until close(). */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const settings = checkOptions(options);
  const { prefix, queueName, concurrency } = settings;
  const n = names(prefix, queueName);
  // Redis first (a wrong URL fails in seconds, not after a long load), then the pipelines.
  const redis = await connect(settings.url);
  let pool: PipelinePool;
  try {
    pool = await PipelinePool.load(settings.model, settings.load);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const id = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const info = await describeWorker(id, pool, settings, redis);
  const heartbeat = await startHeartbeat(redis, n, info);
  const state: WorkerState = {
    handingBack: false,
    giveUp: false,
    running: new Map(),
    unsettled: new Set(),
    vanished: new Set(),
  };
  // Cancellation: the flag for jobs not started yet, the channel for running ones.
  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined);
  await subscriber.subscribe(n.cancelChannel);
  subscriber.on('message', (_channel: string, jobId: string) =>
    state.running.get(jobId)?.abort(new Error('cancelled')),
  );
  const worker = await startBullWorker({ pool, redis, n, info, settings, state });
  settings.onEvent({
    event: 'ready',
    message: `worker ${id} takes jobs from ${prefix}:${queueName} (concurrency ${concurrency}) on ${pool.model.dir}`,
  });
  const closing = makeClose({ worker, pool, redis, subscriber, heartbeat, n, id, state });
  return { id, info, close: closing.close, closed: closing.closed };
}

interface Closing {
  worker: import('bullmq').Worker<JobData, JobResult>;
  pool: PipelinePool;
  redis: Redis;
  subscriber: Redis;
  heartbeat: NodeJS.Timeout;
  n: Names;
  id: string;
  state: WorkerState;
}

/** Whether Redis answers now, within a second. */
async function reachable(redis: Redis): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  try {
    await remote(() => redis.ping(), 'ping', 1000);
    return true;
  } catch {
    return false;
  }
}

/** The worker's close(), and the promise it settles. */
function makeClose(c: Closing): Pick<RunningWorker, 'close' | 'closed'> {
  const { worker, pool, redis, subscriber, heartbeat, n, id, state } = c;
  let closing: Promise<WorkerClosed> | undefined;
  let handBackAt: number | undefined;
  let resolveClosed!: (closed: WorkerClosed) => void;
  const closed = new Promise<WorkerClosed>((resolve) => {
    resolveClosed = resolve;
  });
  const close = (options: { handBack?: boolean } = {}): Promise<WorkerClosed> => {
    if (options.handBack && !state.handingBack) {
      state.handingBack = true;
      handBackAt = Date.now();
      for (const abort of state.running.values()) abort.abort(new Error('handed back'));
    }
    closing ??= (async () => {
      const closeAt = Date.now();
      clearInterval(heartbeat);
      // BullMQ's close waits for the running jobs (or their hand-back), then for Redis. While Redis cannot be reached
      // it would wait for ever: a watch gives up on it after a while, stops the jobs and lets the worker close.
      const graceful = (async () => {
        await worker.close();
        await remote(() => redis.multi().hdel(n.workers, id).del(n.alive(id)).exec(), 'remove the worker', 2000);
      })();
      let finished = false;
      const done = graceful
        .then(
          () => true,
          () => false,
        )
        .finally(() => (finished = true));
      while (!finished) {
        await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
        if (finished || (await reachable(redis))) continue;
        const now = Date.now();
        if (
          state.unsettled.size === 0 ||
          now - closeAt >= GIVE_UP_AFTER_CLOSE_MS ||
          (handBackAt !== undefined && now - handBackAt >= GIVE_UP_AFTER_HAND_BACK_MS)
        ) {
          state.giveUp = true;
          break;
        }
      }
      // Closed, but Redis refused the last words (the worker's entry): it was not reachable either.
      if (finished && !(await done)) state.giveUp = true;
      const unreturned = state.giveUp ? [...state.unsettled] : [];
      if (state.giveUp) {
        for (const abort of state.running.values()) abort.abort(new Error('Redis could not be reached'));
        void worker.close(true).catch(() => undefined);
        void worker.disconnect().catch(() => undefined);
        subscriber.disconnect();
        redis.disconnect();
      } else {
        await subscriber.quit().catch(() => subscriber.disconnect());
        await redis.quit().catch(() => redis.disconnect());
      }
      await pool.dispose();
      const result = { clean: !state.giveUp, unreturned };
      resolveClosed(result);
      return result;
    })();
    return closing;
  };
  return { close, closed };
}
