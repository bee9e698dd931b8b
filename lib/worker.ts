// `multilora worker`: a BullMQ worker that takes RemoteQueue's generation jobs, with one pipeline per slot
// (a PipelinePool of `concurrency` members, each with the catalogue's adapters). See lib/remote.ts for the protocol.
import { randomUUID } from 'node:crypto';
import os from 'node:os';

import type { AdapterSpec } from './adapter';
import { AbortError, MultiloraError } from './errors';
import { selectAdapters, type Image, type ProgressEvent } from './options';
import type { MultiloraWarning } from './pipeline';
import { PipelinePool } from './pool';
import {
  DEFAULT_PREFIX,
  DEFAULT_QUEUE,
  DEFAULT_RESULT_TTL_S,
  WORKER_HEARTBEAT_MS,
  bull,
  checkRedisUrl,
  encodeFailure,
  ioredis,
  names,
  redactUrl,
  type JobData,
  type JobProgress,
  type JobResult,
  type WorkerInfo,
} from './remote';
import { integer, knownKeys, object, string } from './validate';

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
   */
  close(options?: { handBack?: boolean }): Promise<void>;
  /** Resolves when the worker has closed. */
  readonly closed: Promise<void>;
}

/** Starts a worker in this process: loads the pipelines, then takes jobs until close(). */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const opts = object(options, 'options');
  knownKeys(
    opts,
    ['redis', 'model', 'adapters', 'catalog', 'concurrency', 'queue', 'prefix', 'resultTtl', 'lockDuration', 'threads', 'device', 'onWarning', 'onEvent'],
    'the worker options',
  );
  const url = checkRedisUrl(opts.redis, 'options.redis');
  const model = string(opts.model, 'options.model', { nonEmpty: true });
  const concurrency = opts.concurrency === undefined ? 1 : integer(opts.concurrency, 'options.concurrency', 1, 64);
  const resultTtl = opts.resultTtl === undefined ? DEFAULT_RESULT_TTL_S : integer(opts.resultTtl, 'options.resultTtl', 1, 30 * 24 * 3600);
  const lockDuration = opts.lockDuration === undefined ? 30_000 : integer(opts.lockDuration, 'options.lockDuration', 1000, 3_600_000);
  const queueName = opts.queue === undefined ? DEFAULT_QUEUE : string(opts.queue, 'options.queue', { nonEmpty: true });
  const prefix = opts.prefix === undefined ? DEFAULT_PREFIX : string(opts.prefix, 'options.prefix', { nonEmpty: true });
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
    started: Date.now(),
    heartbeat: Date.now(),
  };
  const beat = async (): Promise<void> => {
    info.heartbeat = Date.now();
    await redis.hset(n.workers, id, JSON.stringify(info)).catch(() => undefined);
  };
  await beat();
  const heartbeat = setInterval(() => void beat(), WORKER_HEARTBEAT_MS);
  heartbeat.unref();

  // Cancellation: the flag for jobs not started yet, the channel for running ones.
  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined);
  const { Worker, UnrecoverableError, WaitingError } = bull();
  let handingBack = false;
  /** The running jobs' AbortControllers, by job id. */
  const running = new Map<string, AbortController>();
  await subscriber.subscribe(n.cancelChannel);
  subscriber.on('message', (_channel: string, jobId: string) => running.get(jobId)?.abort(new Error('cancelled')));

  const processor = async (job: import('bullmq').Job, token?: string): Promise<JobResult> => {
    const data = job.data as JobData;
    const queuedMs = Date.now() - job.timestamp;
    const abort = new AbortController();
    running.set(job.id!, abort);
    onEvent({ event: 'active', jobId: job.id!, message: `job ${job.id} started` });
    try {
      if (data?.v !== 1 || typeof data.prompt !== 'string' || typeof data.options !== 'object') {
        throw new MultiloraError('ERR_INVALID_ARGUMENT', `Job ${job.id} is not a multilora generation job (its data has another shape)`);
      }
      if (await redis.exists(n.cancelFlag(job.id!))) throw new AbortError(new Error('cancelled before it started'));
      const started = Date.now();
      let lastProgress = Promise.resolve();
      const onProgress = (e: ProgressEvent): void => {
        const p: JobProgress = { step: e.step, total: e.total, elapsedMs: e.elapsedMs };
        if (e.preview) p.preview = { width: e.preview.width, height: e.preview.height, channels: 3, data: e.preview.data.toString('base64') };
        lastProgress = job.updateProgress(p as never).catch(() => undefined);
      };
      const options = { ...data.options, signal: abort.signal, onProgress };
      const out = await pool.generate(data.prompt, options as never);
      await lastProgress;
      const images = Array.isArray(out) ? out : [out];
      const multi = redis.multi();
      const metas = images.map((image: Image, i) => {
        const key = n.result(job.id!, i);
        multi.set(key, image.data, 'EX', resultTtl);
        return { key, width: image.width, height: image.height, seed: image.seed, bytes: image.data.length };
      });
      await multi.exec();
      onEvent({ event: 'completed', jobId: job.id!, message: `job ${job.id} completed in ${Date.now() - started} ms` });
      return {
        v: 1,
        images: metas,
        metrics: images[0]!.metrics,
        // The selection generate just accepted, at the alphas it ran with.
        adapters: Object.fromEntries(selectAdapters(data.options.adapters, info.adapters).map(([a, alpha]) => [a.name, alpha])),
        worker: id,
        timings: { queuedMs, runMs: Date.now() - started },
        ttl: resultTtl,
      };
    } catch (err) {
      if (handingBack && abort.signal.aborted && err instanceof AbortError) {
        // Stopped for a hand-back: the job goes back to the queue, for another worker.
        await job.moveToWait(token);
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
  await worker.waitUntilReady();
  onEvent({ event: 'ready', message: `worker ${id} takes jobs from ${prefix}:${queueName} (concurrency ${concurrency}) on ${pool.model.dir}` });

  let closing: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const close = (options: { handBack?: boolean } = {}): Promise<void> => {
    if (options.handBack && !handingBack) {
      handingBack = true;
      for (const abort of running.values()) abort.abort(new Error('handed back'));
    }
    closing ??= (async () => {
      clearInterval(heartbeat);
      await worker.close(); // waits for the running jobs (or their hand-back)
      await redis.hdel(n.workers, id).catch(() => undefined);
      await subscriber.quit().catch(() => subscriber.disconnect());
      await redis.quit().catch(() => redis.disconnect());
      await pool.dispose();
      resolveClosed();
    })();
    return closing;
  };
  return { id, info, close, closed };
}
