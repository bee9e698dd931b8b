// `multilora serve`: one Pipeline behind an HTTP API (OpenAI-style image generations, the LoRA catalogue, progress
// over SSE, cancellation) and a page that uses it; or, with `redis`, the workers of a RemoteQueue behind the same API
// (backend.ts). docs/SERVER.md says what it does; docs/openapi.json is the API. This file checks the options, loads
// the backend and puts the Fastify instance together; each route is a file of routes/, sharing one ServerContext.
import { isIP, type AddressInfo } from 'node:net';

import Fastify, { type FastifyInstance } from 'fastify';

import { MultiloraError } from '../core/errors';
import { Pipeline, type LoadOptions } from '../core/pipeline';
import { describe, integer } from '../core/validate';
import { checkRedisUrl } from '../remote/queue';
import { isLoopbackAddress, listenError, reserve, resolveHost, urlOf } from './address';
import { BearerAuth, checkApiKey } from './auth';
import { LocalBackend, RemoteBackend, type Backend } from './backend';
import { Jobs } from './jobs';
import {
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_QUEUE,
  DEFAULT_TIMEOUTS,
  DEFAULT_WAIT_FOR_WORKERS_MS,
  MAX_HEADER_BYTES,
} from './limits';
import type { ServerContext, ServerLimits } from './routes/context';
import { onClientError, registerErrors } from './routes/errors';
import { registerEvents } from './routes/events';
import { frameworkErrors, registerGate } from './routes/gate';
import { registerGenerations } from './routes/generations';
import { registerJobs } from './routes/jobs';
import { registerLoras } from './routes/loras';
import { registerOpenapi } from './routes/openapi';
import { readPage, registerPage, type Page } from './routes/page';
import { registerStatus } from './routes/status';

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

/** ServeOptions, checked. */
interface Checked {
  host: string;
  port: number;
  limits: ServerLimits;
  auth: BearerAuth | undefined;
  waitForWorkersMs: number;
}

/** The limits: integers in range, and the headers' time within the request's. */
function checkLimits(o: ServeOptions): ServerLimits {
  const maxQueue = o.maxQueue ?? DEFAULT_MAX_QUEUE;
  const maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY;
  if (!Number.isInteger(maxQueue) || maxQueue < 1)
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected an integer of at least 1 for maxQueue but received ${maxQueue}`,
    );
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024)
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected an integer of at least 1024 for maxBodyBytes but received ${maxBodyBytes}`,
    );
  const headersTimeoutMs = o.headersTimeoutMs ?? DEFAULT_TIMEOUTS.headersMs;
  const requestTimeoutMs = o.requestTimeoutMs ?? DEFAULT_TIMEOUTS.requestMs;
  const keepAliveTimeoutMs = o.keepAliveTimeoutMs ?? DEFAULT_TIMEOUTS.keepAliveMs;
  for (const [name, value] of [
    ['headersTimeoutMs', headersTimeoutMs],
    ['requestTimeoutMs', requestTimeoutMs],
    ['keepAliveTimeoutMs', keepAliveTimeoutMs],
  ] as const) {
    if (!Number.isInteger(value) || value < 100)
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `Expected an integer of at least 100 for ${name} but received ${value}`,
      );
  }
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected a headersTimeoutMs of at most requestTimeoutMs (${requestTimeoutMs}) but received ${headersTimeoutMs}`,
    );
  }
  return { maxQueue, maxBodyBytes, headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs };
}

/** With `redis`: no model, catalogue or adapters (the workers own them). Without: a model, and no queue options. */
function checkBackendOptions(o: ServeOptions): void {
  if (o.redis !== undefined) {
    checkRedisUrl(o.redis, 'options.redis');
    for (const key of ['model', 'catalog', 'loras'] as const) {
      if (o[key] !== undefined) {
        throw new MultiloraError(
          'ERR_INVALID_ARGUMENT',
          `Expected no ${key} with redis (the workers own the model and the adapters) but received ${JSON.stringify(o[key])}`,
        );
      }
    }
    return;
  }
  if (typeof o.model !== 'string' || o.model === '')
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected a model folder for model but received ${JSON.stringify(o.model)}`,
    );
  for (const key of ['queue', 'prefix', 'waitForWorkersMs'] as const) {
    if (o[key] !== undefined)
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `Expected ${key} only with redis but received ${JSON.stringify(o[key])}`,
      );
  }
}

function checkOptions(o: ServeOptions): Checked {
  const host = o.host || '127.0.0.1';
  if (typeof host !== 'string')
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected an IP address or a host name for host but received ${describe(host)}`,
    );
  const port = integer(o.port, 'port', 0, 65535);
  const limits = checkLimits(o);
  checkBackendOptions(o);
  const auth = o.apiKey === undefined ? undefined : new BearerAuth(checkApiKey(o.apiKey, 'apiKey'));
  const waitForWorkersMs =
    o.waitForWorkersMs === undefined
      ? DEFAULT_WAIT_FOR_WORKERS_MS
      : integer(o.waitForWorkersMs, 'waitForWorkersMs', 0, 3_600_000);
  return { host, port, limits, auth, waitForWorkersMs };
}

/** The workers behind the queue (`redis`), or the model loaded here. */
async function loadBackend(o: ServeOptions, waitForWorkersMs: number): Promise<Backend> {
  if (o.redis !== undefined)
    return RemoteBackend.connect({ redis: o.redis, queue: o.queue, prefix: o.prefix, waitForWorkersMs });
  const load: LoadOptions = {};
  if (o.catalog !== undefined) load.catalog = o.catalog;
  if (o.loras?.length)
    load.adapters = Object.fromEntries(o.loras.map((l) => [l.name, { path: l.path, alpha: l.alpha }]));
  return new LocalBackend(await Pipeline.load(o.model!, load));
}

/** The Fastify instance, with every route. */
function createApp(ctx: ServerContext, page: Page): FastifyInstance {
  const { limits } = ctx;
  // Node's own timeouts bound a client that sends slowly (slowloris): the headers within headersTimeout, the whole
  // request within requestTimeout, checked every second; an idle keep-alive connection closes after keepAliveTimeout.
  // Fastify disables requestTimeout unless told. No socket timeout: a generation's response may take minutes.
  const app = Fastify({
    bodyLimit: limits.maxBodyBytes,
    logger: false,
    forceCloseConnections: true,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node answers an HTTP/1.1 request without Host itself, with an empty 400; the gate answers it instead.
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      maxHeaderSize: MAX_HEADER_BYTES,
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      requireHostHeader: false,
    },
    clientErrorHandler: onClientError,
    // A path parameter longer than the router's limit (100 by default) is answered by Fastify itself, with a 414
    // and a body of its own format that echoes the whole path. Every path Node's parser lets through (its request
    // line counts against the 16 KiB of headers) fits this limit, so a too-long job id reaches the route: 400.
    routerOptions: { maxParamLength: MAX_HEADER_BYTES },
    // Fastify's own 503 body while closing has its format, not ours: the onRequest hook answers instead.
    return503OnClosing: false,
    frameworkErrors: frameworkErrors(ctx),
  });
  registerErrors(app, ctx); // first: its onRoute hook sees every route, for the 405s
  registerGate(app, ctx);
  registerPage(app, page);
  registerOpenapi(app);
  registerLoras(app, ctx);
  registerStatus(app, ctx);
  registerJobs(app, ctx);
  registerEvents(app, ctx);
  registerGenerations(app, ctx);
  return app;
}

/** Stops accepting, aborts the jobs, ends the streams, closes the server and the backend. */
async function shutDown(ctx: ServerContext, app: FastifyInstance): Promise<void> {
  for (const job of ctx.jobs.active) job.abort('closing');
  ctx.jobs.dropWaiting();
  for (const res of ctx.streams) res.end();
  ctx.streams.clear();
  await app.close();
  await ctx.backend.close();
}

/**
 * Everything that needs no model is checked first, in milliseconds: the options, the host (an address, or a name that
 * resolves), and the port (bound, and held until the server listens). Only then does the model load.
 * `onChecked` (the CLI's) runs between the two.
 */
export async function startServer(o: ServeOptions, onChecked?: () => void): Promise<RunningServer> {
  const { host, port, limits, auth, waitForWorkersMs } = checkOptions(o);
  const page = readPage();
  const reservation = await reserve(host, await resolveHost(host), port);
  onChecked?.();
  let backend: Backend;
  try {
    backend = await loadBackend(o, waitForWorkersMs);
  } catch (err) {
    await reservation.release();
    throw err;
  }
  const ctx: ServerContext = {
    backend,
    jobs: new Jobs(),
    limits,
    auth,
    streams: new Set(),
    hostNames: new Set(isIP(host) === 0 ? [host.toLowerCase()] : []),
    loopbackOnly: true,
    closing: undefined,
  };
  const app = createApp(ctx, page);
  try {
    await reservation.release();
    await app.listen({ host, port });
  } catch (err) {
    await backend.close();
    // Another program took the port in the moment between the reservation's release and this listen.
    throw (err as NodeJS.ErrnoException).syscall === 'listen'
      ? listenError(err as NodeJS.ErrnoException, host, port)
      : err;
  }
  const bound = app.server.address() as AddressInfo;
  ctx.loopbackOnly = isLoopbackAddress(bound.address);
  return {
    url: urlOf(bound.address, bound.port),
    close: () => (ctx.closing ??= shutDown(ctx, app)),
  };
}
