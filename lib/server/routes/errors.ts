// Every error the server answers, as one `{ error: { code, message } }` body: the library's errors, Fastify's and
// Node's HTTP parser's, unknown routes (404) and known routes asked with another method (405).
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

import { MultiloraError } from '../../core/errors';
import { describe } from '../../core/validate';
import { MAX_HEADER_BYTES } from '../limits';
import { HttpError } from '../request';
import type { ServerContext } from './context';

export type ErrorBody = { error: { code: string; message: string } };

/** The HTTP status of a library error. */
export function statusOf(err: MultiloraError): number {
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
export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** A whole HTTP/1.1 response that closes the connection, for a socket no longer in Fastify's hands. */
function rawResponse(status: number, body: ErrorBody, headers: Readonly<Record<string, string>> = {}): string {
  const json = JSON.stringify(body);
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n${extra}` +
    `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`
  );
}

/**
 * What Node's HTTP parser refuses before any route runs (headers too large, a bad Content-Length, chunked garbage,
 * a request not sent in time) gets the same typed body as every other error, and the connection is closed.
 */
export function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
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
  if (socket.writable) socket.write(rawResponse(status, body));
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
  body: ErrorBody,
  headers: Readonly<Record<string, string>>,
): void {
  reply.hijack();
  socket.end(rawResponse(status, body, headers));
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

interface Answer {
  status: number;
  code: string;
  message: string;
  headers: Readonly<Record<string, string>>;
}

/** The status, code and message of any error a route or Fastify throws. */
function answerOf(err: FastifyError | HttpError | MultiloraError, maxBodyBytes: number): Answer {
  if (err instanceof HttpError)
    return { status: err.status, code: err.code, message: err.message, headers: err.headers };
  if (err instanceof MultiloraError)
    return { status: statusOf(err), code: err.code, message: err.message, headers: {} };
  const answer = (status: number, code: string, message = err.message): Answer => ({
    status,
    code,
    message,
    headers: {},
  });
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return answer(413, 'ERR_BODY_TOO_LARGE', `The request body is larger than ${maxBodyBytes} bytes`);
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return answer(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', 'Send the request body as application/json');
  if (
    err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
    err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    // Fastify's JSON body parser: a SyntaxError marked 400. Any other SyntaxError is ours (a 500), not the client's.
    (err instanceof SyntaxError && err.statusCode === 400)
  ) {
    return answer(400, 'ERR_INVALID_JSON', `The request body is not valid JSON: ${err.message}`);
  }
  if (typeof err.statusCode === 'number' && err.statusCode < 500) return answer(err.statusCode, 'ERR_BAD_REQUEST');
  return answer(500, 'ERR_INTERNAL');
}

/** Every thrown error becomes the typed body; a 405 names the methods a known path takes. */
export function registerErrors(app: FastifyInstance, ctx: ServerContext): void {
  // Routes by method, so that a known path asked with another method gets 405 and the methods it takes.
  const routes: Array<{ method: string; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const source = route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+');
    for (const method of [route.method].flat()) routes.push({ method, pattern: new RegExp(`^${source}$`) });
  });

  app.setErrorHandler((err: FastifyError | HttpError | MultiloraError, req, reply) => {
    const { status, code, message, headers } = answerOf(err, ctx.limits.maxBodyBytes);
    const sent = status === 429 ? { ...headers, 'retry-after': '5' } : headers;
    if (!req.raw.complete) {
      lingeringAnswer(req.raw.socket, reply, status, errorBody(code, message), sent);
      return;
    }
    void reply.code(status).headers(sent).send(errorBody(code, message));
  });

  app.setNotFoundHandler((req, reply) => {
    const pathname = req.url.split('?')[0];
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(pathname)).map((r) => r.method))];
    if (allowed.length) {
      void reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send(
          errorBody(
            'ERR_METHOD_NOT_ALLOWED',
            `${req.method} is not allowed on ${describe(pathname)}; it takes ${allowed.join(', ')}`,
          ),
        );
      return;
    }
    void reply.code(404).send(errorBody('ERR_NOT_FOUND', `No route ${req.method} ${describe(pathname)}`));
  });
}
