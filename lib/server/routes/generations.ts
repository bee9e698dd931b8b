// POST /v1/images/generations: admits a job (429 when the queue is full), runs it on the backend with its progress
// going to the job's event stream (events.ts), and answers the images, OpenAI-style.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { MultiloraError } from '../../core/errors';
import type { Image, ProgressEvent } from '../../core/options';
import { encodePng } from '../../core/png';
import type { BackendCall, JobHooks } from '../backend';
import type { Job } from '../jobs';
import { HttpError, checkRequest, parseGeneration, type GenerationRequest } from '../request';
import { current, type Current, type ServerContext } from './context';
import { statusOf } from './errors';

const shuttingDown = (): HttpError => new HttpError(503, 'ERR_SHUTTING_DOWN', 'The server is shutting down');

/** A new job for `jobId`, or 429 (the queue full), 409 (that id active) or 503 (closing). */
async function admit(ctx: ServerContext, jobId: string | undefined): Promise<Job> {
  const { jobs, limits } = ctx;
  if (ctx.closing) throw shuttingDown();
  const full = (): HttpError => {
    jobs.counters.rejectedFull += 1;
    return new HttpError(
      429,
      'ERR_QUEUE_FULL',
      `${limits.maxQueue} jobs are already queued or running; try again later`,
    );
  };
  if (jobs.active.length >= limits.maxQueue) throw full();
  // With `redis`, the queue's jobs from anywhere (this server's are among them once enqueued); 0 locally.
  if ((await ctx.backend.depth()) >= limits.maxQueue) throw full();
  if (ctx.closing) throw shuttingDown();
  const created = jobs.create(jobId);
  if (!created) throw new HttpError(409, 'ERR_JOB_EXISTS', `Job ${JSON.stringify(jobId)} is already queued or running`);
  return created;
}

/** The job's timeline: when its request came, and when its first step says it started. */
interface Timeline {
  received: number;
  started: number | undefined;
}

/** What the job adds to its checked call: its signal, and its progress as the job's events. */
function hooksOf(job: Job, time: Timeline): JobHooks {
  return {
    signal: job.controller.signal,
    onProgress: (e: ProgressEvent) => {
      if (time.started === undefined) {
        time.started = Date.now() - e.elapsedMs;
        job.state = 'running';
      }
      const data: Record<string, unknown> = { step: e.step, total: e.total, elapsedMs: Math.round(e.elapsedMs) };
      if (e.preview) data.preview = `data:image/png;base64,${encodePng(e.preview).toString('base64')}`;
      job.emit({ event: 'progress', data });
    },
  };
}

/** A checked option of the request, or the model's default. */
function orDefault(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

/** Ends the job done, and answers its images. */
function done(
  ctx: ServerContext,
  job: Job,
  r: GenerationRequest,
  now: Current,
  out: Image[],
  time: Timeline,
): Record<string, unknown> {
  const first = out[0];
  const m = first.metrics;
  const timings = {
    queued_ms: Math.max(0, Math.round((time.started ?? time.received) - time.received)),
    total_ms: Date.now() - time.received,
    generate_ms: Math.round(m.totalMs),
    step_ms_mean: Math.round(m.stepMs.mean * 100) / 100,
    text_encoders_ms: m.textEncodersMs,
    vae_decoder_ms: Math.round(m.vaeDecoderMs * 100) / 100,
  };
  job.state = 'done';
  ctx.jobs.counters.completed += 1;
  job.emit({ event: 'done', data: { seed: first.seed, width: first.width, height: first.height, timings } });
  return {
    created: Math.floor(time.received / 1000),
    job_id: job.id,
    data: out.map((img) => ({ b64_json: encodePng(img).toString('base64'), seed: img.seed })),
    seed: first.seed,
    size: `${first.width}x${first.height}`,
    steps: orDefault(r.options.steps, now.info.defaults.steps),
    guidance_scale: orDefault(r.options.guidanceScale, now.info.defaults.guidanceScale),
    loras: r.loras,
    timings,
  };
}

/** Ends the job cancelled (499, or 503 when the server closes) or failed, and returns what the request throws. */
function failed(ctx: ServerContext, job: Job, steps: number, err: unknown): Error {
  const { counters } = ctx.jobs;
  if (job.abortedBy) {
    job.state = 'cancelled';
    if (job.abortedBy === 'disconnected') counters.disconnected += 1;
    else counters.cancelled += 1;
    job.emit({
      event: 'cancelled',
      data: { reason: job.abortedBy, step: job.lastProgress?.data.step ?? 0, total: steps },
    });
    if (job.abortedBy === 'closing')
      return new HttpError(503, 'ERR_SHUTTING_DOWN', 'The server is shutting down: the job was stopped');
    return new HttpError(499, 'ERR_CANCELLED', `Job ${JSON.stringify(job.id)} was cancelled`);
  }
  job.state = 'error';
  counters.failed += 1;
  const e =
    err instanceof MultiloraError
      ? err
      : new MultiloraError('ERR_GENAI', String((err as Error | undefined)?.message ?? err));
  job.emit({ event: 'error', data: { code: e.code, message: e.message, status: statusOf(e) } });
  return e;
}

/** The client gone before its response: abort its job (queued: it leaves the queue; running: the next step stops). */
function abortOnDisconnect(req: FastifyRequest, reply: FastifyReply, job: Job): void {
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) job.abort('disconnected');
  });
  // It may have gone already, while its body was read: its 'close' has passed.
  if (req.raw.socket.destroyed) job.abort('disconnected');
}

async function run(
  ctx: ServerContext,
  job: Job,
  r: GenerationRequest,
  call: BackendCall,
  now: Current,
): Promise<Record<string, unknown>> {
  const time: Timeline = { received: Date.now(), started: undefined };
  const steps = orDefault(r.options.steps, now.info.defaults.steps);
  try {
    job.state = ctx.backend.idle() ? 'running' : 'queued';
    const out = await ctx.backend.generate(call, hooksOf(job, time));
    // A cancel after the last step (while the VAE decodes) cannot stop GenAI, and the call returns its images; the
    // job still ends cancelled, so that a DELETE answered 202 always means a 499.
    if (job.abortedBy)
      throw new MultiloraError('ERR_ABORTED', `Job ${JSON.stringify(job.id)} was ${job.abortedBy} after its last step`);
    return done(ctx, job, r, now, out, time);
  } catch (err) {
    throw failed(ctx, job, steps, err);
  }
}

export function registerGenerations(app: FastifyInstance, ctx: ServerContext): void {
  // Admission (the 429 check, then the job's creation) one request at a time: with `redis` the check reads Redis.
  let admission: Promise<unknown> = Promise.resolve();
  app.post('/v1/images/generations', async (req, reply) => {
    // Only JSON: a page of another site can send text/plain without asking (no CORS preflight), never JSON.
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      throw new HttpError(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', 'Send the request body as application/json');
    }
    const header = req.headers['x-job-id'];
    const now = await current(ctx);
    const alphas = new Map(now.info.adapters.map((a) => [a.name, a.alpha]));
    const r = parseGeneration(req.body, alphas, now.sizes, Array.isArray(header) ? header[0] : header);
    // The call's one check in this process (a worker checks a job again, on its side of Redis).
    const call = checkRequest(() => ctx.backend.check(r.prompt, r.options));
    const admitOne = (): Promise<Job> => admit(ctx, r.jobId);
    const admitted = admission.then(admitOne, admitOne);
    admission = admitted.catch(() => undefined);
    const job = await admitted;
    void reply.header('x-job-id', job.id);
    abortOnDisconnect(req, reply, job);
    job.emit({ event: 'queued', data: { position: ctx.jobs.active.length - 1 } });
    return run(ctx, job, r, call, now);
  });
}
