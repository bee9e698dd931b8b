// `multilora worker --redis URL`: takes RemoteQueue's generation jobs (lib/remote/worker.ts) until SIGINT or SIGTERM.
import { redactUrl } from '../remote/queue';
import { startWorker, type WorkerOptions } from '../remote/worker';
import { MAX_IMAGES, MAX_SIDE, bounds } from '../core/schema';
import { parseInteger } from './args';
import { modelDir, planAdapters, printWarning, type ModelFlags } from './common';

export interface WorkerFlags extends ModelFlags {
  redis: string;
  concurrency: string;
  queue?: string;
  prefix?: string;
  resultTtl?: string;
  lockDuration?: string;
  threads?: string;
  maxSize?: string;
  maxSteps?: string;
  maxImages?: string;
}

/**
 * Runs the worker; resolves with 0 once a signal has closed it. The first SIGINT/SIGTERM lets the running jobs
 * finish, a second hands them back to the queue (stopped at their next step), a third leaves at once (130). With
 * Redis unreachable, the worker gives up on it 20 s after the first signal (5 s after the second), names the jobs it
 * could not hand back, and exits with 1.
 */
export async function workerCommand(flags: WorkerFlags): Promise<number> {
  const options: WorkerOptions = {
    redis: flags.redis,
    model: modelDir(flags),
    concurrency: parseInteger(flags.concurrency, '--concurrency', 1, 64),
    onWarning: printWarning,
    onEvent: (e) => process.stderr.write(`${new Date().toISOString()} ${e.message}\n`),
  };
  if (flags.queue !== undefined) options.queue = flags.queue;
  if (flags.prefix !== undefined) options.prefix = flags.prefix;
  if (flags.resultTtl !== undefined)
    options.resultTtl = parseInteger(flags.resultTtl, '--result-ttl', 1, 30 * 24 * 3600);
  if (flags.lockDuration !== undefined)
    options.lockDuration = parseInteger(flags.lockDuration, '--lock-duration', 1000, 3_600_000);
  if (flags.threads !== undefined) options.threads = parseInteger(flags.threads, '--threads', 1, 1024);
  if (flags.maxSize !== undefined) options.maxSize = parseInteger(flags.maxSize, '--max-size', 1, MAX_SIDE);
  if (flags.maxSteps !== undefined)
    options.maxSteps = parseInteger(flags.maxSteps, '--max-steps', 1, bounds('steps').max);
  if (flags.maxImages !== undefined) options.maxImages = parseInteger(flags.maxImages, '--max-images', 1, MAX_IMAGES);
  const plan = planAdapters(flags, false);
  if (Object.keys(plan.specs).length) options.adapters = plan.specs;

  const early = (): void => process.exit(0);
  process.on('SIGINT', early).on('SIGTERM', early);
  let worker: Awaited<ReturnType<typeof startWorker>>;
  try {
    process.stderr.write(
      `loading ${options.model} (${options.concurrency} pipeline${options.concurrency === 1 ? '' : 's'}), Redis ${redactUrl(options.redis)}\n`,
    );
    worker = await startWorker(options);
  } finally {
    process.off('SIGINT', early).off('SIGTERM', early);
  }
  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write('closing: the running jobs finish first (a second signal hands them back to the queue)\n');
      void worker.close();
    } else if (signals === 2) {
      process.stderr.write('closing: handing the running jobs back to the queue\n');
      void worker.close({ handBack: true });
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    const { maxSize, maxSteps, maxImages } = worker.info.limits!;
    process.stdout.write(
      `multilora worker ${worker.id} ready (jobs up to ${maxSize}x${maxSize}, ${maxSteps} steps, ${maxImages} images)\n`,
    );
    const { clean, unreturned } = await worker.closed;
    if (!clean) {
      const lost = unreturned.length
        ? `could not hand back ${unreturned.length} job${unreturned.length === 1 ? '' : 's'} (${unreturned.join(', ')}); if Redis kept them, another worker takes them once their lock expires`
        : 'nothing to hand back';
      process.stderr.write(`closed without Redis (${redactUrl(options.redis)} could not be reached): ${lost}\n`);
      // Whatever BullMQ still holds open, the process leaves.
      setTimeout(() => process.exit(1), 1000).unref();
      return 1;
    }
    process.stderr.write('closed\n');
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
  return 0;
}
