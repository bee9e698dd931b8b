// `multilora worker`: a BullMQ worker that takes RemoteQueue's generation jobs, with one pipeline per slot
// (a PipelinePool of `concurrency` members, each with the catalogue's adapters). See lib/remote/queue.ts for the protocol.
import { randomUUID } from 'node:crypto';
import os from 'node:os';

import type { AdapterSpec } from '../core/adapter';
import { AbortError, MultiloraError } from '../core/errors';
import type { Image, ProgressEvent } from '../core/options';
import type { MultiloraWarning } from '../core/pipeline';
import { PipelinePool, checkPoolCall, runPoolCall } from '../core/pool';
import { MAX_IMAGES, MAX_SIDE, SERVICE_LIMITS, bounds } from '../core/schema';
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

/** Starts a worker in this process: loads the pipelines, then takes jobs until close(). */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const opts = object(options, 'options');
  knownKeys(
    opts,
    ['redis', 'model', 'adapters', 'catalog', 'concurrency', 'queue', 'prefix', 'resultTtl', 'lockDuration', 'threads', 'maxSize', 'maxSteps', 'maxImages', 'device', 'onWarning', 'onEvent'],
    'the worker options',
  );
  const url = checkRedisUrl(opts.redis, 'options.redis');
  const model = string(opts.model, 'options.model', { nonEmpty: true });
  const concurrency = opts.concurrency === undefined ? 1 : integer(opts.concurrency, 'options.concurrency', 1, 64);
  const resultTtl = opts.resultTtl === undefined ? DEFAULT_RESULT_TTL_S : integer(opts.resultTtl, 'options.resultTtl', 1, 30 * 24 * 3600);
  const lockDuration = opts.lockDuration === undefined ? 30_000 : integer(opts.lockDuration, 'options.lockDuration', 1000, 3_600_000);
  const queueName = opts.queue === undefined ? DEFAULT_QUEUE : string(opts.queue, 'options.queue', { nonEmpty: true });
  const prefix = opts.prefix === undefined ? DEFAULT_PREFIX : string(opts.prefix, 'options.prefix', { nonEmpty: true });
  // A service's defaults, up to the library's own bounds.
  const maxSize = opts.maxSize === undefined ? undefined : integer(opts.maxSize, 'options.maxSize', 1, MAX_SIDE);
  const maxSteps = opts.maxSteps === undefined ? SERVICE_LIMITS.steps : integer(opts.maxSteps, 'options.maxSteps', 1, bounds('steps').max);
  const maxImages = opts.maxImages === undefined ? SERVICE_LIMITS.numImages : integer(opts.maxImages, 'options.maxImages', 1, MAX_IMAGES);
  const onEvent = (opts.onEvent as WorkerOptions['onEvent']) ?? (() => undefined);
  const n = names(prefix, queueName);

  // Redis first (a wrong URL fails in seconds, not after a long load), then the pipelines.
  const redis = new (ioredis())(url, { maxRetriesPerRequest: 1, connectTimeout: 5000, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new MultiloraError('ERR_REMOTE', `Could not reach Redis at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  let pool: PipelinePool;
  try {
    const load: Record<string, unknown> = { size: concurrency };
    for (const key of ['adapters', 'catalog', 'threads', 'device', 'onWarning'] as const) if (opts[key] !== undefined) load[key] = opts[key];
    pool = await PipelinePool.load(model, load as never);
  } catch (err) {
    redis.disconnect();
    throw err;
  }

  const id = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const limits: WorkerLimits = {
    maxSize: maxSize ?? sizeLimits(pool.defaults, pool.model.vaeScaleFactor).max,
    maxSteps,
    maxImages,
  };
  // Started by Redis's clock, as liveness is: the hosts' clocks need not agree.
  const [seconds, micros] = await redis.time().catch(() => [Math.floor(Date.now() / 1000), 0]);
  const info: WorkerInfo = {
    id,
    host: os.hostname(),
    pid: process.pid,
    concurrency,
    model: { dir: pool.model.dir, pipelineClass: pool.model.pipelineClass, family: pool.model.family, vaeScaleFactor: pool.model.vaeScaleFactor },
    defaults: pool.defaults,
    adapters: pool.adapters.list().map((a) => {
      const { unmatchedTensors: _, ...report } = a.info;
      return { name: a.name, alpha: a.alpha, template: a.template, negativePrompt: a.negativePrompt, report };
    }),
    limits,
    started: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000),
  };
  const description = JSON.stringify(info);
  // The description in the hash, and a key that lives WORKER_FRESH_MS: readers list the worker while the key exists.
  const beat = async (): Promise<void> => {
    await redis.multi().hset(n.workers, id, description).set(n.alive(id), '1', 'PX', WORKER_FRESH_MS).exec().catch(() => undefined);
  };
  await beat();
  const heartbeat = setInterval(() => void beat(), WORKER_HEARTBEAT_MS);
  heartbeat.unref();

  // Cancellation: the flag for jobs not started yet, the channel for running ones.
  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined);
  const { Worker, UnrecoverableError, WaitingError } = bull();
  let handingBack = false;
  /** Set when Redis could not be reached while closing: the running jobs stop, and nothing waits for Redis. */
  let giveUp = false;
  /** The running jobs' AbortControllers, by job id. */
  const running = new Map<string, AbortController>();
  /** The jobs taken and not yet completed, failed or handed back in Redis. */
  const unsettled = new Set<string>();
  /** Running jobs that Redis no longer has (restarted without persistence): stopped, as nobody can get their result. */
  const vanished = new Set<string>();
  await subscriber.subscribe(n.cancelChannel);
  subscriber.on('message', (_channel: string, jobId: string) => running.get(jobId)?.abort(new Error('cancelled')));

  const processor = async (job: import('bullmq').Job, token?: string): Promise<JobResult> => {
    // The job's timestamp is its producer's clock: a skewed one gives nonsense, not a negative wait.
    const queuedMs = Math.max(0, Date.now() - job.timestamp);
    const abort = new AbortController();
    running.set(job.id!, abort);
    unsettled.add(job.id!);
    onEvent({ event: 'active', jobId: job.id!, message: `job ${job.id} started` });
    try {
      // Anything may have written the job: its shape and its size are checked before anything is allocated.
      const data = checkJobData(job.data, job.id!);
      checkLimits(data.options, limits, 'this worker');
      if (await redis.exists(n.cancelFlag(job.id!))) throw new AbortError(new Error('cancelled before it started'));
      const started = Date.now();
      let lastProgress = Promise.resolve();
      const onProgress = (e: ProgressEvent): void => {
        const p: JobProgress = { step: e.step, total: e.total, elapsedMs: e.elapsedMs };
        if (e.preview) p.preview = { width: e.preview.width, height: e.preview.height, channels: 3, data: e.preview.data.toString('base64') };
        lastProgress = job.updateProgress(p as never).catch(() => undefined);
      };
      // Checked once in this process, as generate would; the pool runs it without checking it again.
      const call = checkPoolCall(pool, data.prompt, { ...data.options, signal: abort.signal, onProgress });
      const out = await runPoolCall(pool, call);
      await lastProgress;
      const images = Array.isArray(out) ? out : [out];
      const multi = redis.multi();
      const metas = images.map((image: Image, i) => {
        const key = n.result(job.id!, i);
        multi.set(key, image.data, 'EX', resultTtl);
        return { key, width: image.width, height: image.height, seed: image.seed, bytes: image.data.length };
      });
      await remote(() => multi.exec(), `store the result of job ${job.id}`);
      onEvent({ event: 'completed', jobId: job.id!, message: `job ${job.id} completed in ${Date.now() - started} ms` });
      return {
        v: 1,
        jobId: job.id!,
        images: metas,
        metrics: images[0]!.metrics,
        // The adapters the call ran with, at their alphas.
        adapters: Object.fromEntries(call.adapters),
        worker: id,
        timings: { queuedMs, runMs: Date.now() - started },
        ttl: resultTtl,
      };
    } catch (err) {
      if (vanished.delete(job.id!)) {
        unsettled.delete(job.id!);
        onEvent({ event: 'failed', jobId: job.id!, message: `job ${job.id} stopped: Redis no longer has it (restarted without persistence?)` });
        throw err;
      }
      if (handingBack && abort.signal.aborted && err instanceof AbortError && !giveUp) {
        // Stopped for a hand-back: the job goes back to the queue, for another worker.
        await job.moveToWait(token);
        unsettled.delete(job.id!);
        onEvent({ event: 'handed-back', jobId: job.id!, message: `job ${job.id} handed back to the queue` });
        throw new WaitingError();
      }
      onEvent({ event: 'failed', jobId: job.id!, message: `job ${job.id} failed: ${(err as Error).message}` });
      // Every failure of a generation is its own, not the worker's: retrying would fail the same way.
      throw new UnrecoverableError(encodeFailure(err));
    } finally {
      running.delete(job.id!);
    }
  };

  const worker = new Worker(queueName, processor as never, {
    connection: { url },
    prefix,
    concurrency,
    lockDuration,
    stalledInterval: lockDuration,
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
          const abort = running.get(jobId);
          if (found || !abort) return;
          vanished.add(jobId);
          abort.abort(new Error('Redis no longer has the job'));
        })
        .catch(() => undefined);
    }
  });
  // Completed or failed in Redis: nothing of the job is left with this worker.
  worker.on('completed', (job) => unsettled.delete(job.id!)).on('failed', (job) => job && unsettled.delete(job.id!));
  await worker.waitUntilReady();
  onEvent({ event: 'ready', message: `worker ${id} takes jobs from ${prefix}:${queueName} (concurrency ${concurrency}) on ${pool.model.dir}` });

  /** Whether Redis answers now, within a second. */
  const reachable = async (): Promise<boolean> => {
    if (redis.status !== 'ready') return false;
    try {
      await remote(() => redis.ping(), 'ping', 1000);
      return true;
    } catch {
      return false;
    }
  };

  let closing: Promise<WorkerClosed> | undefined;
  let handBackAt: number | undefined;
  let resolveClosed!: (closed: WorkerClosed) => void;
  const closed = new Promise<WorkerClosed>((resolve) => {
    resolveClosed = resolve;
  });
  const close = (options: { handBack?: boolean } = {}): Promise<WorkerClosed> => {
    if (options.handBack && !handingBack) {
      handingBack = true;
      handBackAt = Date.now();
      for (const abort of running.values()) abort.abort(new Error('handed back'));
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
      const done = graceful.then(
        () => true,
        () => false,
      ).finally(() => (finished = true));
      while (!finished) {
        await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
        if (finished || (await reachable())) continue;
        const now = Date.now();
        if (unsettled.size === 0 || now - closeAt >= GIVE_UP_AFTER_CLOSE_MS || (handBackAt !== undefined && now - handBackAt >= GIVE_UP_AFTER_HAND_BACK_MS)) {
          giveUp = true;
          break;
        }
      }
      // Closed, but Redis refused the last words (the worker's entry): it was not reachable either.
      if (finished && !(await done)) giveUp = true;
      const unreturned = giveUp ? [...unsettled] : [];
      if (giveUp) {
        for (const abort of running.values()) abort.abort(new Error('Redis could not be reached'));
        void worker.close(true).catch(() => undefined);
        void worker.disconnect().catch(() => undefined);
        subscriber.disconnect();
        redis.disconnect();
      } else {
        await subscriber.quit().catch(() => subscriber.disconnect());
        await redis.quit().catch(() => redis.disconnect());
      }
      await pool.dispose();
      const result = { clean: !giveUp, unreturned };
      resolveClosed(result);
      return result;
    })();
    return closing;
  };
  return { id, info, close, closed };
}
