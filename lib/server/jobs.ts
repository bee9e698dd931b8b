// The server's jobs: one per generation request, with its AbortController, its state, and the SSE listeners that
// follow it. A job's id is the client's (job_id / X-Job-Id) or a random one.
import { randomUUID } from 'node:crypto';

export type JobState = 'queued' | 'running' | 'done' | 'error' | 'cancelled';

/** What an SSE stream carries: `queued`, `progress`, then one of `done`, `error`, `cancelled`. */
export interface JobEvent {
  event: 'queued' | 'progress' | 'done' | 'error' | 'cancelled';
  data: Record<string, unknown>;
}

type Listener = (event: JobEvent) => void;

export class Job {
  readonly id: string;
  readonly controller = new AbortController();
  readonly created = Date.now();
  state: JobState = 'queued';
  /** Why it was aborted: 'cancelled' (DELETE), 'disconnected' (its client left), 'closing' (the server stops). */
  abortedBy: 'cancelled' | 'disconnected' | 'closing' | undefined;
  /** The last progress event, for a stream that joins late. */
  lastProgress: JobEvent | undefined;
  /** The final event, for a stream that joins after the end. */
  final: JobEvent | undefined;
  readonly listeners = new Set<Listener>();

  constructor(id: string) {
    this.id = id;
  }

  get active(): boolean {
    return this.state === 'queued' || this.state === 'running';
  }

  emit(event: JobEvent): void {
    if (event.event === 'progress') this.lastProgress = event;
    if (event.event === 'done' || event.event === 'error' || event.event === 'cancelled') this.final = event;
    for (const listener of [...this.listeners]) listener(event);
  }

  abort(by: 'cancelled' | 'disconnected' | 'closing'): boolean {
    if (!this.active || this.controller.signal.aborted) return false;
    this.abortedBy = by;
    this.controller.abort(new Error(`job ${this.id} ${by}`));
    return true;
  }
}

/** How long a finished job stays, so that a stream can still read how it ended. */
const KEEP_MS = 5 * 60_000;
const KEEP_MAX = 200;
/** How long a stream may wait for a job that the client has not posted yet. */
const WAIT_FOR_JOB_MS = 30_000;

export class Jobs {
  readonly #jobs = new Map<string, Job>();
  /** Streams opened before their job was posted (the page opens the stream first so it misses nothing). */
  readonly #waiting = new Map<string, Set<(job: Job, existed: boolean) => void>>();
  readonly counters = { accepted: 0, completed: 0, failed: 0, cancelled: 0, disconnected: 0, rejectedFull: 0 };

  get active(): Job[] {
    return [...this.#jobs.values()].filter((j) => j.active);
  }

  get(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** A new job, or undefined when an active job has that id. */
  create(id: string | undefined): Job | undefined {
    const jobId = id ?? randomUUID();
    if (this.#jobs.get(jobId)?.active) return undefined;
    const job = new Job(jobId);
    this.#jobs.delete(jobId);
    this.#jobs.set(jobId, job);
    this.counters.accepted += 1;
    this.#prune();
    const waiters = this.#waiting.get(jobId);
    this.#waiting.delete(jobId);
    for (const w of waiters ?? []) w(job, false);
    return job;
  }

  /** Calls `found` when a job of this id exists or is created within WAIT_FOR_JOB_MS; returns a way to stop waiting. */
  whenCreated(id: string, found: (job: Job, existed: boolean) => void, timeout: () => void): () => void {
    const job = this.#jobs.get(id);
    if (job) {
      found(job, true);
      return () => undefined;
    }
    let set = this.#waiting.get(id);
    if (!set) this.#waiting.set(id, (set = new Set()));
    const waiter = (j: Job): void => {
      clearTimeout(timer);
      found(j, false);
    };
    const timer = setTimeout(() => {
      set.delete(waiter);
      if (set.size === 0) this.#waiting.delete(id);
      timeout();
    }, WAIT_FOR_JOB_MS);
    timer.unref();
    set.add(waiter);
    return () => {
      clearTimeout(timer);
      set.delete(waiter);
      if (set.size === 0 && this.#waiting.get(id) === set) this.#waiting.delete(id);
    };
  }

  /** Ends every stream still waiting for a job (the server is closing). */
  dropWaiting(): void {
    this.#waiting.clear();
  }

  #prune(): void {
    const now = Date.now();
    const finished = [...this.#jobs.values()].filter((j) => !j.active);
    let excess = finished.length - KEEP_MAX;
    for (const job of finished) {
      if (excess > 0 || now - job.created > KEEP_MS) {
        this.#jobs.delete(job.id);
        excess -= 1;
      }
    }
  }
}
