// GET /v1/jobs/:id (a job's state) and DELETE /v1/jobs/:id (cancel it).
import type { FastifyInstance } from 'fastify';

import type { Job, Jobs } from '../jobs';
import { HttpError, JOB_ID } from '../request';
import type { ServerContext } from './context';

/** 400 for an id that no job can have. */
export function checkJobId(id: string): void {
  if (!JOB_ID.test(id))
    throw new HttpError(400, 'ERR_INVALID_ARGUMENT', 'A job id is 1 to 64 letters, digits, "_" or "-"');
}

function findJob(jobs: Jobs, id: string): Job {
  checkJobId(id);
  const job = jobs.get(id);
  if (!job) throw new HttpError(404, 'ERR_NOT_FOUND', `No job ${JSON.stringify(id)}`);
  return job;
}

function describeJob(job: Job): Record<string, unknown> {
  const p = job.lastProgress?.data;
  return {
    job_id: job.id,
    state: job.state,
    step: p?.step ?? 0,
    total: p?.total ?? null,
    created: Math.floor(job.created / 1000),
    ...(job.abortedBy ? { aborted_by: job.abortedBy } : {}),
  };
}

export function registerJobs(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => describeJob(findJob(ctx.jobs, req.params.id)));

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (req, reply) => {
    const job = findJob(ctx.jobs, req.params.id);
    if (!job.active)
      throw new HttpError(409, 'ERR_JOB_FINISHED', `Job ${JSON.stringify(job.id)} has already ended (${job.state})`);
    job.abort('cancelled');
    return reply.code(202).send(describeJob(job));
  });
}
