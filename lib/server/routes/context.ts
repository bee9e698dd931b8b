// What the routes of one server share: the backend, the jobs, the checked limits, the API key, and the state that
// startServer sets while it binds and closes. startServer (../index.ts) makes one and hands it to every route.
import type { ServerResponse } from 'node:http';

import type { BearerAuth } from '../auth';
import type { Backend, BackendInfo } from '../backend';
import type { Jobs } from '../jobs';
import { sizeLimits, type SizeLimits } from '../limits';

/** ServeOptions' limits, checked, with their defaults filled in. */
export interface ServerLimits {
  maxQueue: number;
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export interface ServerContext {
  readonly backend: Backend;
  readonly jobs: Jobs;
  readonly limits: ServerLimits;
  /** The API key's check, when the server has one. */
  readonly auth: BearerAuth | undefined;
  /** The event streams open now: close() ends them. */
  readonly streams: Set<ServerResponse>;
  /** The host name the server was given, if it was a name (not an IP address), lower-cased. */
  readonly hostNames: ReadonlySet<string>;
  /** Set once bound: whether the address is a loopback one (127.0.0.0/8, ::1). True until then. */
  loopbackOnly: boolean;
  /** Set by close(): every request after it gets 503. */
  closing: Promise<void> | undefined;
}

/** The model, defaults and adapters now (the workers' may change), and the sizes they allow. */
export interface Current {
  info: BackendInfo;
  sizes: SizeLimits;
}

export async function current(ctx: ServerContext): Promise<Current> {
  const info = await ctx.backend.info();
  return { info, sizes: sizeLimits(info.defaults, info.model.vaeScaleFactor) };
}
