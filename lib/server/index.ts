// `multilora serve`: one Pipeline behind an HTTP API (OpenAI-style image generations, the LoRA catalogue, progress
// over SSE, cancellation) and a page that uses it; or, with `redis`, the workers of a RemoteQueue behind the same API
// (backend.ts). docs/SERVER.md says what it does; docs/openapi.json is the API.
import { readFileSync } from 'node:fs';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';

import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';

import { MultiloraError } from '../core/errors';
import type { Image } from '../core/options';
import { Pipeline, type LoadOptions } from '../core/pipeline';
import { checkRedisUrl } from '../remote/queue';
import { describe, integer } from '../core/validate';
import { encodePng } from '../core/png';
import { PACKAGE_ROOT } from '../core/sdk';
import { BearerAuth, checkApiKey } from './auth';
import { isLoopbackAddress, isLoopbackHost, listenError, reserve, resolveHost, urlOf, type Reservation } from './address';
import { LocalBackend, RemoteBackend, type Backend, type BackendCall } from './backend';
import { Jobs, type Job, type JobEvent } from './jobs';
import {
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_QUEUE,
  DEFAULT_TIMEOUTS,
  DEFAULT_WAIT_FOR_WORKERS_MS,
  MAX_GUIDANCE,
  MAX_HEADER_BYTES,
  MAX_IMAGES,
  MAX_PROMPT,
  MAX_STEPS,
  sizeLimits,
} from './limits';
import { openapiDocument } from './openapi';
import { HttpError, JOB_ID, parseGeneration } from './request';

export interface ServeOptions {
  /** The model folder (an optimum-intel export). Required unless `redis` is given; refused with it. */
  model?: string;
  /** A JSON catalogue of adapters (the shape of Pipeline.load's `adapters`, paths relative to the file). Not with `redis`. */
  catalog?: string;
  /** More adapters, by name. Not with `redis`. */
  loras?: Array<{ name: string; path: string; alpha: number }>;
  /**
   * A Redis URL: generations become jobs of a RemoteQueue, run by `multilora worker` processes, and no model is loaded
   * here. The live workers' model, defaults and adapters are what the page and the API show. startServer waits
   * `waitForWorkersMs` for a live worker, and rejects with ERR_REMOTE when none shows up (or Redis cannot be reached).
   */
  redis?: string;
  /** With `redis`: the queue's name (default "generate"), as the workers' --queue. */
  queue?: string;
  /** With `redis`: the prefix of the keys in Redis (default "multilora"), as the workers' --prefix. */
  prefix?: string;
  /** With `redis`: how long startServer waits for a live worker, in ms. Default 30 s. */
  waitForWorkersMs?: number;
  /**
   * Where to listen: an IP address or a host name ('127.0.0.1' unless told otherwise). Bound to a loopback address
   * (127.0.0.0/8, ::1, or a name such as localhost that resolves to one), the server answers only to loopback Host
   * names (DNS rebinding); bound elsewhere, to anyone who can reach it.
   */
  host: string;
  /**
   * 0: any free port (the returned url says which). The host and the port are checked before the model loads: a port
   * in use, an address not of this machine, or a name that does not resolve rejects at once with ERR_INVALID_ARGUMENT,
   * and the port stays bound from that check until the server listens.
   */
  port: number;
  /**
   * Generation jobs accepted at once, running or waiting; one more gets 429. Default 8. With `redis`, the jobs of the
   * whole queue count (waiting or active, from any producer), as well as this server's own.
   */
  maxQueue?: number;
  /**
   * A key that every request but the page's files and GET /openapi.json must carry as `Authorization: Bearer <key>`;
   * else 401 ERR_UNAUTHORIZED. For a server others can reach; the page asks for it. 16 to 4096 of A-Z a-z 0-9 -._~+/.
   */
  apiKey?: string;
  /** Largest request body; a larger one gets 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Time a client has to send a request's headers, in ms; a slower one gets 408 and is disconnected. Default 10 s. */
  headersTimeoutMs?: number;
  /** Time a client has to send a whole request, headers and body, in ms (not the time to answer it). Default 30 s. */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open, in ms. Default 5 s. */
  keepAliveTimeoutMs?: number;
}

export interface RunningServer {
  /**
   * The address it is bound to, and the port: e.g. "http://127.0.0.1:43117"; "http://0.0.0.0:7860" when it listens on
   * every IPv4 address (reach it at any of them), IPv6 in brackets ("http://[::1]:7860").
   */
  url: string;
  /**
   * Stops accepting, aborts running and queued jobs (with `redis`: cancels them in the queue), ends the event streams,
   * disposes the pipeline (or closes the queue's connections). Idempotent.
   */
  close(): Promise<void>;
}

const WEB_DIR = path.join(PACKAGE_ROOT, 'web');
const PAGE_FILES: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
  '/favicon.svg': ['favicon.svg', 'image/svg+xml'],
};
/** The routes anyone may ask, with or without the API key: the page (which then asks for the key) and the API's description. */
const PUBLIC_ROUTES = new Set([...Object.keys(PAGE_FILES), '/openapi.json']);
const CSP = "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The HTTP status of a library error. */
function statusOf(err: MultiloraError): number {
  switch (err.code) {
    case 'ERR_INVALID_ARGUMENT':
      return 400;
    case 'ERR_DISPOSED':
    case 'ERR_BUSY':
    case 'ERR_REMOTE':
    case 'ERR_JOB_LOST':
      return 503;
    case 'ERR_ABORTED':
      return 499;
    default:
      return 500;
  }
}

/** The `{ error: { code, message } }` body. */
function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/**
 * What Node's HTTP parser refuses before any route runs (headers too large, a bad Content-Length, chunked garbage,
 * a request not sent in time) gets the same typed body as every other error, and the connection is closed.
 */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let body = errorBody('ERR_MALFORMED_REQUEST', `The request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`);
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    body = errorBody('ERR_HEADERS_TOO_LARGE', `The request's headers are larger than ${MAX_HEADER_BYTES} bytes`);
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    body = errorBody('ERR_REQUEST_TIMEOUT', 'The request was not received in time');
  }
  const json = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
    );
  }
  socket.destroy();
}

/** How long a connection stays after an answer to a request whose body was not read (413), before it is reset. */
const LINGER_MS = 1000;

/**
 * Answers a request whose body is still coming (413) and closes the connection a moment later. Closing at once
 * while the client still sends makes the kernel reset the connection, and a reset can reach the client before it
 * has read the answer (it then sees only "connection reset"). Meanwhile the rest of the body is not read into
 * memory: Node stops reading once its small buffer is full, and the client's sending stalls.
 */
function lingeringAnswer(
  socket: Socket,
  reply: FastifyReply,
  status: number,
  body: ReturnType<typeof errorBody>,
  headers: Readonly<Record<string, string>>,
): void {
  reply.hijack();
  const json = JSON.stringify(body);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Everything that needs no model is checked first, in milliseconds: the options, the host (an address, or a name that
 * resolves), and the port (bound, and held until the server listens). Only then does the model load.
 * `onChecked` (the CLI's) runs between the two.
 */
export async function startServer(o: ServeOptions, onChecked?: () => void): Promise<RunningServer> {
  const host = o.host || '127.0.0.1';
  if (typeof host !== 'string') throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected an IP address or a host name for host but received ${describe(host)}`);
  const port = integer(o.port, 'port', 0, 65535);
  const maxQueue = o.maxQueue ?? DEFAULT_MAX_QUEUE;
  const maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY;
  if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected an integer of at least 1 for maxQueue but received ${maxQueue}`);
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024) throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected an integer of at least 1024 for maxBodyBytes but received ${maxBodyBytes}`);
  const headersTimeout = o.headersTimeoutMs ?? DEFAULT_TIMEOUTS.headersMs;
  const requestTimeout = o.requestTimeoutMs ?? DEFAULT_TIMEOUTS.requestMs;
  const keepAliveTimeout = o.keepAliveTimeoutMs ?? DEFAULT_TIMEOUTS.keepAliveMs;
  for (const [name, value] of [['headersTimeoutMs', headersTimeout], ['requestTimeoutMs', requestTimeout], ['keepAliveTimeoutMs', keepAliveTimeout]] as const) {
    if (!Number.isInteger(value) || value < 100) throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected an integer of at least 100 for ${name} but received ${value}`);
  }
  if (headersTimeout > requestTimeout) {
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected a headersTimeoutMs of at most requestTimeoutMs (${requestTimeout}) but received ${headersTimeout}`);
  }
  if (o.redis !== undefined) {
    checkRedisUrl(o.redis, 'options.redis');
    for (const key of ['model', 'catalog', 'loras'] as const) {
      if (o[key] !== undefined) {
        throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected no ${key} with redis (the workers own the model and the adapters) but received ${JSON.stringify(o[key])}`);
      }
    }
  } else {
    if (typeof o.model !== 'string' || o.model === '') throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected a model folder for model but received ${JSON.stringify(o.model)}`);
    for (const key of ['queue', 'prefix', 'waitForWorkersMs'] as const) {
      if (o[key] !== undefined) throw new MultiloraError('ERR_INVALID_ARGUMENT', `Expected ${key} only with redis but received ${JSON.stringify(o[key])}`);
    }
  }
  const auth = o.apiKey === undefined ? undefined : new BearerAuth(checkApiKey(o.apiKey, 'apiKey'));
  const waitForWorkersMs = o.waitForWorkersMs === undefined ? DEFAULT_WAIT_FOR_WORKERS_MS : integer(o.waitForWorkersMs, 'waitForWorkersMs', 0, 3_600_000);
  const page = Object.fromEntries(
    Object.entries(PAGE_FILES).map(([route, [file, type]]) => [route, { body: readFileSync(path.join(WEB_DIR, file)), type }]),
  );
  const reservation: Reservation = await reserve(host, await resolveHost(host), port);
  onChecked?.();

  let backend: Backend;
  try {
    if (o.redis !== undefined) {
      backend = await RemoteBackend.connect({ redis: o.redis, queue: o.queue, prefix: o.prefix, waitForWorkersMs });
    } else {
      const load: LoadOptions = {};
      if (o.catalog !== undefined) load.catalog = o.catalog;
      if (o.loras?.length) load.adapters = Object.fromEntries(o.loras.map((l) => [l.name, { path: l.path, alpha: l.alpha }]));
      backend = new LocalBackend(await Pipeline.load(o.model!, load));
    }
  } catch (err) {
    await reservation.release();
    throw err;
  }
  /** The model, defaults and adapters now (the workers' may change), and the sizes they allow. */
  const current = async () => {
    const info = await backend.info();
    return { info, sizes: sizeLimits(info.defaults, info.model.vaeScaleFactor) };
  };
  // Admission (the 429 check, then the job's creation) one request at a time: with `redis` the check reads Redis.
  let admission: Promise<unknown> = Promise.resolve();
  const jobs = new Jobs();
  const streams = new Set<ServerResponse>();
  // Set once bound: whether the address is a loopback one (127.0.0.0/8, ::1), and the host name given, if one was.
  let loopbackOnly = true;
  const hostNames = new Set(isIP(host) === 0 ? [host.toLowerCase()] : []);
  let closing: Promise<void> | undefined;

  // Node's own timeouts bound a client that sends slowly (slowloris): the headers within headersTimeout, the whole
  // request within requestTimeout, checked every second; an idle keep-alive connection closes after keepAliveTimeout.
  // Fastify disables requestTimeout unless told. No socket timeout: a generation's response may take minutes.
  const app = Fastify({
    bodyLimit: maxBodyBytes,
    logger: false,
    forceCloseConnections: true,
    requestTimeout,
    keepAliveTimeout,
    // Node answers an HTTP/1.1 request without Host itself, with an empty 400; the gate answers it instead.
    http: {
      headersTimeout,
      requestTimeout,
      maxHeaderSize: MAX_HEADER_BYTES,
      connectionsCheckingInterval: Math.min(1000, headersTimeout),
      requireHostHeader: false,
    },
    clientErrorHandler: onClientError,
    // A path parameter longer than the router's limit (100 by default) is answered by Fastify itself, with a 414
    // and a body of its own format that echoes the whole path. Every path Node's parser lets through (its request
    // line counts against the 16 KiB of headers) fits this limit, so a too-long job id reaches findJob: 400.
    routerOptions: { maxParamLength: MAX_HEADER_BYTES },
    // Fastify's own 503 body while closing has its format, not ours: the onRequest hook answers instead.
    return503OnClosing: false,
    // What the router refuses before any hook runs (a path that is not valid percent-encoding): the same gate as
    // every request (the Host), then the documented body.
    frameworkErrors: (err, req, reply) => {
      const pathname = describe(req.url.split('?')[0]);
      let error = new HttpError(
        400,
        'ERR_MALFORMED_REQUEST',
        err.code === 'FST_ERR_BAD_URL' ? `The request's path ${pathname} is not valid percent-encoding` : `The request's path ${pathname} was refused (${err.code})`,
      );
      try {
        gate(req);
      } catch (e) {
        error = e as HttpError;
      }
      void (reply as FastifyReply).code(error.status).headers(error.headers).send(errorBody(error.code, error.message));
    },
  });

  // Routes by method, so that a known path asked with another method gets 405 and the methods it takes.
  const routes: Array<{ method: string; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const source = route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+');
    for (const method of [route.method].flat()) routes.push({ method, pattern: new RegExp(`^${source}$`) });
  });

  // A page of another site may not drive this server through the browser: with no CORS headers a cross-origin
  // fetch of JSON is refused, and a loopback server answers only to loopback Host names (DNS rebinding).
  function gate(req: FastifyRequest): void {
    if (req.headers.host === undefined && req.raw.httpVersion !== '1.0') {
      throw new HttpError(400, 'ERR_MALFORMED_REQUEST', 'An HTTP/1.1 request needs a Host header');
    }
    if (loopbackOnly && !isLoopbackHost(req.headers.host, hostNames)) {
      throw new HttpError(
        403,
        'ERR_FORBIDDEN_HOST',
        `This server answers to loopback names (127.0.0.1, localhost, [::1]), not ${describe(req.headers.host ?? '')}`,
      );
    }
    // The routed path, not req.url: an absolute-form request line (GET http://x/v1/status) routes to /v1/status too.
    if (auth && !PUBLIC_ROUTES.has(req.routeOptions.url ?? '')) auth.check(req.headers.authorization);
    if (closing) throw new HttpError(503, 'ERR_SHUTTING_DOWN', 'The server is shutting down');
  }
  app.addHook('onRequest', async (req) => gate(req));

  app.setErrorHandler((err: FastifyError | HttpError | MultiloraError, req, reply) => {
    let status = 500;
    let code = 'ERR_INTERNAL';
    let message = err.message;
    let headers: Readonly<Record<string, string>> = {};
    if (err instanceof HttpError) {
      status = err.status;
      code = err.code;
      headers = err.headers;
    } else if (err instanceof MultiloraError) {
      status = statusOf(err);
      code = err.code;
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      code = 'ERR_BODY_TOO_LARGE';
      message = `The request body is larger than ${maxBodyBytes} bytes`;
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
      code = 'ERR_UNSUPPORTED_MEDIA_TYPE';
      message = 'Send the request body as application/json';
    } else if (
      err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
      err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
      // Fastify's JSON body parser: a SyntaxError marked 400. Any other SyntaxError is ours (a 500), not the client's.
      (err instanceof SyntaxError && (err as FastifyError).statusCode === 400)
    ) {
      status = 400;
      code = 'ERR_INVALID_JSON';
      message = `The request body is not valid JSON: ${err.message}`;
    } else if (typeof (err as FastifyError).statusCode === 'number' && (err as FastifyError).statusCode! < 500) {
      status = (err as FastifyError).statusCode!;
      code = 'ERR_BAD_REQUEST';
    }
    if (status === 429) headers = { ...headers, 'retry-after': '5' };
    if (!req.raw.complete) {
      lingeringAnswer(req.raw.socket, reply, status, errorBody(code, message), headers);
      return;
    }
    void reply.code(status).headers(headers).send(errorBody(code, message));
  });

  app.setNotFoundHandler((req, reply) => {
    const pathname = req.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(pathname)).map((r) => r.method))];
    if (allowed.length) {
      void reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send(errorBody('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${describe(pathname)}; it takes ${allowed.join(', ')}`));
      return;
    }
    void reply.code(404).send(errorBody('ERR_NOT_FOUND', `No route ${req.method} ${describe(pathname)}`));
  });

  for (const [route, file] of Object.entries(page)) {
    app.get(route, async (_req, reply) =>
      reply
        .type(file.type)
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
        .send(file.body),
    );
  }

  app.get('/openapi.json', async () => openapiDocument());

  app.get('/v1/loras', async () => ({
    object: 'list',
    data: (await backend.info()).adapters.map((a) => ({
      name: a.name,
      alpha: a.alpha,
      template: a.template ?? null,
      negative_prompt: a.negativePrompt ?? null,
      report: a.report,
    })),
  }));

  app.get('/v1/status', async () => {
    const { info, sizes } = await current();
    const active = jobs.active;
    return {
      model: { class: info.model.pipelineClass, family: info.model.family, vae_scale_factor: info.model.vaeScaleFactor, name: info.model.name },
      defaults: { width: sizes.defaultWidth, height: sizes.defaultHeight, steps: info.defaults.steps, guidance_scale: info.defaults.guidanceScale },
      limits: {
        size: { min: sizes.min, max: sizes.max, step: sizes.step, multiple_of: sizes.multipleOf },
        steps: { min: 1, max: MAX_STEPS },
        guidance_scale: { min: 0, max: MAX_GUIDANCE },
        n: { min: 1, max: MAX_IMAGES },
        prompt_chars: MAX_PROMPT,
        max_queue: maxQueue,
        max_body_bytes: maxBodyBytes,
        max_header_bytes: MAX_HEADER_BYTES,
        headers_timeout_ms: headersTimeout,
        request_timeout_ms: requestTimeout,
        keep_alive_timeout_ms: keepAliveTimeout,
      },
      queue: {
        active: active.length,
        running: active.filter((j) => j.state === 'running').length,
        queued: active.filter((j) => j.state === 'queued').length,
      },
      counters: { ...jobs.counters },
      backend: await backend.status(),
    };
  });

  function findJob(id: string): Job {
    if (!JOB_ID.test(id)) throw new HttpError(400, 'ERR_INVALID_ARGUMENT', 'A job id is 1 to 64 letters, digits, "_" or "-"');
    const job = jobs.get(id);
    if (!job) throw new HttpError(404, 'ERR_NOT_FOUND', `No job ${JSON.stringify(id)}`);
    return job;
  }

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => describeJob(findJob(req.params.id)));

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (req, reply) => {
    const job = findJob(req.params.id);
    if (!job.active) throw new HttpError(409, 'ERR_JOB_FINISHED', `Job ${JSON.stringify(job.id)} has already ended (${job.state})`);
    job.abort('cancelled');
    return reply.code(202).send(describeJob(job));
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', (req, reply) => {
    const id = req.params.id;
    if (!JOB_ID.test(id)) throw new HttpError(400, 'ERR_INVALID_ARGUMENT', 'A job id is 1 to 64 letters, digits, "_" or "-"');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    streams.add(res);
    const send = (e: JobEvent): void => {
      res.write(`event: ${e.event}\ndata: ${JSON.stringify({ job_id: id, ...e.data })}\n\n`);
    };
    let job: Job | undefined;
    let ended = false;
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
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
  });

  app.post('/v1/images/generations', async (req: FastifyRequest, reply: FastifyReply) => {
    // Only JSON: a page of another site can send text/plain without asking (no CORS preflight), never JSON.
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      throw new HttpError(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', 'Send the request body as application/json');
    }
    const header = req.headers['x-job-id'];
    const { info, sizes } = await current();
    const alphas = new Map(info.adapters.map((a) => [a.name, a.alpha]));
    const r = parseGeneration(req.body, alphas, sizes, Array.isArray(header) ? header[0] : header);
    const admit = async (): Promise<Job> => {
      if (closing) throw new HttpError(503, 'ERR_SHUTTING_DOWN', 'The server is shutting down');
      const full = (): HttpError => {
        jobs.counters.rejectedFull += 1;
        return new HttpError(429, 'ERR_QUEUE_FULL', `${maxQueue} jobs are already queued or running; try again later`);
      };
      if (jobs.active.length >= maxQueue) throw full();
      // With `redis`, the queue's jobs from anywhere (this server's are among them once enqueued); 0 locally.
      if ((await backend.depth()) >= maxQueue) throw full();
      if (closing) throw new HttpError(503, 'ERR_SHUTTING_DOWN', 'The server is shutting down');
      const created = jobs.create(r.jobId);
      if (!created) throw new HttpError(409, 'ERR_JOB_EXISTS', `Job ${JSON.stringify(r.jobId)} is already queued or running`);
      return created;
    };
    const admitted = admission.then(admit, admit);
    admission = admitted.catch(() => undefined);
    const job = await admitted;
    void reply.header('x-job-id', job.id);
    // The client gone before its response: abort its job (queued: it leaves the queue; running: the next step stops).
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) job.abort('disconnected');
    });
    // It may have gone already, while its body was read: its 'close' has passed.
    if (req.raw.socket.destroyed) job.abort('disconnected');
    job.emit({ event: 'queued', data: { position: jobs.active.length - 1 } });
    const received = Date.now();
    let started: number | undefined;
    const steps = r.options.steps ?? info.defaults.steps;
    try {
      const call: BackendCall = {
        ...r.options,
        signal: job.controller.signal,
        preview: r.preview,
        onProgress: (e: { step: number; total: number; elapsedMs: number; preview?: Image | { width: number; height: number; data: Buffer } }) => {
          if (started === undefined) {
            started = Date.now() - e.elapsedMs;
            job.state = 'running';
          }
          const data: Record<string, unknown> = { step: e.step, total: e.total, elapsedMs: Math.round(e.elapsedMs) };
          if (e.preview) data.preview = `data:image/png;base64,${encodePng(e.preview).toString('base64')}`;
          job.emit({ event: 'progress', data });
        },
      };
      if (r.n > 1) call.numImages = r.n;
      job.state = backend.idle() ? 'running' : 'queued';
      const out = await backend.generate(r.prompt, call);
      // A cancel after the last step (while the VAE decodes) cannot stop GenAI, and the call returns its images; the
      // job still ends cancelled, so that a DELETE answered 202 always means a 499.
      if (job.abortedBy) throw new MultiloraError('ERR_ABORTED', `Job ${JSON.stringify(job.id)} was ${job.abortedBy} after its last step`);
      const first = out[0]!;
      const m = first.metrics;
      const timings = {
        queued_ms: Math.max(0, Math.round((started ?? received) - received)),
        total_ms: Date.now() - received,
        generate_ms: Math.round(m.totalMs),
        step_ms_mean: Math.round(m.stepMs.mean * 100) / 100,
        text_encoders_ms: m.textEncodersMs,
        vae_decoder_ms: Math.round(m.vaeDecoderMs * 100) / 100,
      };
      job.state = 'done';
      jobs.counters.completed += 1;
      job.emit({ event: 'done', data: { seed: first.seed, width: first.width, height: first.height, timings } });
      return {
        created: Math.floor(received / 1000),
        job_id: job.id,
        data: out.map((img) => ({ b64_json: encodePng(img).toString('base64'), seed: img.seed })),
        seed: first.seed,
        size: `${first.width}x${first.height}`,
        steps,
        guidance_scale: r.options.guidanceScale ?? info.defaults.guidanceScale,
        loras: r.loras,
        timings,
      };
    } catch (err) {
      if (job.abortedBy) {
        job.state = 'cancelled';
        if (job.abortedBy === 'disconnected') jobs.counters.disconnected += 1;
        else jobs.counters.cancelled += 1;
        job.emit({ event: 'cancelled', data: { reason: job.abortedBy, step: job.lastProgress?.data.step ?? 0, total: steps } });
        if (job.abortedBy === 'closing') throw new HttpError(503, 'ERR_SHUTTING_DOWN', 'The server is shutting down: the job was stopped');
        throw new HttpError(499, 'ERR_CANCELLED', `Job ${JSON.stringify(job.id)} was cancelled`);
      }
      job.state = 'error';
      jobs.counters.failed += 1;
      const e = err instanceof MultiloraError ? err : new MultiloraError('ERR_GENAI', String((err as Error)?.message ?? err));
      job.emit({ event: 'error', data: { code: e.code, message: e.message, status: statusOf(e) } });
      throw e;
    }
  });

  try {
    await reservation.release();
    await app.listen({ host, port });
  } catch (err) {
    await backend.close();
    // Another program took the port in the moment between the reservation's release and this listen.
    throw (err as NodeJS.ErrnoException).syscall === 'listen' ? listenError(err as NodeJS.ErrnoException, host, port) : err;
  }
  const bound = app.server.address() as AddressInfo;
  loopbackOnly = isLoopbackAddress(bound.address);

  return {
    url: urlOf(bound.address, bound.port),
    close(): Promise<void> {
      closing ??= (async () => {
        for (const job of jobs.active) job.abort('closing');
        jobs.dropWaiting();
        for (const res of streams) res.end();
        streams.clear();
        await app.close();
        await backend.close();
      })();
      return closing;
    },
  };
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
