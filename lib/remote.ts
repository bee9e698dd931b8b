// The scale-out worker, loaded on first use: its module, and the pool and limits it brings, cost nothing to an app
// that never starts a worker (as lib/serve.ts does for the server). RemoteQueue needs no such façade: its module is
// small, and it loads bullmq and ioredis only when a queue is made (lib/remote/queue.ts).
import type * as Worker from './remote/worker';

export type { RunningWorker, WorkerClosed, WorkerEvent, WorkerOptions } from './remote/worker';

/** Starts a worker in this process: loads the pipelines, then takes jobs until close(). */
export function startWorker(options: Worker.WorkerOptions): ReturnType<typeof Worker.startWorker> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const worker = require('./remote/worker') as typeof Worker;
  return worker.startWorker(options);
}
