// GET /v1/jobs/:id/events: a job's progress as server-sent events, opened before or after the job is posted.
import type { ServerResponse } from 'node:http';

import type { FastifyInstance } from 'fastify';

import type { Job, JobEvent } from '../jobs';
import type { ServerContext } from './context';
import { checkJobId } from './jobs';

const HEARTBEAT_MS = 15_000;

function openStream(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
}

/** Follows job `id` on `res` until its final event, the client leaving, or no such job being posted in time. */
function follow(ctx: ServerContext, id: string, res: ServerResponse): void {
  const { jobs, streams } = ctx;
  streams.add(res);
  const send = (e: JobEvent): void => {
    res.write(`event: ${e.event}\ndata: ${JSON.stringify({ job_id: id, ...e.data })}\n\n`);
  };
  let job: Job | undefined;
  let ended = false;
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  const listener = (e: JobEvent): void => {
    send(e);
    if (e === job?.final) end();
  };
  let stopWaiting = (): void => undefined;
  stopWaiting = jobs.whenCreated(
    id,
    (j, existed) => {
      job = j;
      if (j.final) {
        send(j.final);
        end();
        return;
      }
      // A job posted after the stream opened sends its own `queued` event next.
      if (existed) send({ event: 'queued', data: { position: jobs.active.indexOf(j) } });
      if (j.lastProgress) send(j.lastProgress);
      j.listeners.add(listener);
    },
    () => {
      send({ event: 'error', data: { code: 'ERR_NOT_FOUND', message: `No job ${JSON.stringify(id)} was posted` } });
      end();
    },
  );
  function end(): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    stopWaiting();
    job?.listeners.delete(listener);
    streams.delete(res);
    res.end();
  }
  res.on('close', end);
}

export function registerEvents(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', (req, reply) => {
    checkJobId(req.params.id);
    reply.hijack();
    openStream(reply.raw);
    follow(ctx, req.params.id, reply.raw);
  });
}
