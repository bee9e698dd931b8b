// What every request passes before its route: a Host header (HTTP/1.1), a loopback Host name on a loopback server
// (DNS rebinding), the API key (but for the page and the API's description), and a server not closing.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { describe } from '../../core/validate';
import { isLoopbackHost } from '../address';
import { HttpError } from '../request';
import type { ServerContext } from './context';
import { errorBody } from './errors';
import { PAGE_FILES } from './page';

/** The routes anyone may ask, with or without the API key: the page (which then asks for the key) and the API's description. */
const PUBLIC_ROUTES = new Set([...Object.keys(PAGE_FILES), '/openapi.json']);

// A page of another site may not drive this server through the browser: with no CORS headers a cross-origin
// fetch of JSON is refused, and a loopback server answers only to loopback Host names (DNS rebinding).
function gate(ctx: ServerContext, req: FastifyRequest): void {
  if (req.headers.host === undefined && req.raw.httpVersion !== '1.0') {
    throw new HttpError(400, 'ERR_MALFORMED_REQUEST', 'An HTTP/1.1 request needs a Host header');
  }
  if (ctx.loopbackOnly && !isLoopbackHost(req.headers.host, ctx.hostNames)) {
    throw new HttpError(
      403,
      'ERR_FORBIDDEN_HOST',
      `This server answers to loopback names (127.0.0.1, localhost, [::1]), not ${describe(req.headers.host ?? '')}`,
    );
  }
  // The routed path, not req.url: an absolute-form request line (GET http://x/v1/status) routes to /v1/status too.
  if (ctx.auth && !PUBLIC_ROUTES.has(req.routeOptions.url ?? '')) ctx.auth.check(req.headers.authorization);
  if (ctx.closing) throw new HttpError(503, 'ERR_SHUTTING_DOWN', 'The server is shutting down');
}

export function registerGate(app: FastifyInstance, ctx: ServerContext): void {
  app.addHook('onRequest', async (req) => gate(ctx, req));
}

/**
 * Fastify's `frameworkErrors`: what the router refuses before any hook runs (a path that is not valid
 * percent-encoding) passes the same gate as every request (the Host), then gets the documented body.
 */
export function frameworkErrors(ctx: ServerContext) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): void => {
    const pathname = describe(req.url.split('?')[0]);
    let error = new HttpError(
      400,
      'ERR_MALFORMED_REQUEST',
      err.code === 'FST_ERR_BAD_URL'
        ? `The request's path ${pathname} is not valid percent-encoding`
        : `The request's path ${pathname} was refused (${err.code})`,
    );
    try {
      gate(ctx, req);
    } catch (e) {
      error = e as HttpError;
    }
    void reply.code(error.status).headers(error.headers).send(errorBody(error.code, error.message));
  };
}
