// The optional API key (`serve --api-key`, ServeOptions.apiKey): a Bearer token that every request but the page's
// files and the OpenAPI document must carry.
import { createHash, timingSafeEqual } from 'node:crypto';

import { MultiloraError } from '../core/errors';
import { describe } from '../core/validate';
import { HttpError } from './request';

/** RFC 6750's b64token: what a Bearer token may be made of, so that it goes in a header unchanged. */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MIN_LENGTH = 16;
const MAX_LENGTH = 4096;

/**
 * Checks a key. The message never shows the key (it would end up in logs): only its length, or the kind of value.
 */
export function checkApiKey(key: unknown, name: string): string {
  if (typeof key !== 'string' || key.length < MIN_LENGTH || key.length > MAX_LENGTH || !TOKEN.test(key)) {
    const received =
      typeof key === 'string'
        ? `a string of ${key.length} characters${TOKEN.test(key) ? '' : ', some of them not allowed'}`
        : describe(key);
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected ${MIN_LENGTH} to ${MAX_LENGTH} letters, digits or -._~+/ (e.g. the output of \`openssl rand -hex 32\`) for ${name} but received ${received}`,
    );
  }
  return key;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** The check of the Authorization header against one key. */
export class BearerAuth {
  readonly #digest: Buffer;

  constructor(key: string) {
    this.#digest = sha256(key);
  }

  /**
   * Throws 401 ERR_UNAUTHORIZED unless the header is `Bearer <the key>`. Both sides are hashed first, so that the
   * comparison takes the same time whatever the key and the guess, their lengths included.
   */
  check(header: string | undefined): void {
    const token = /^Bearer +(\S+) *$/i.exec(header ?? '')?.[1];
    if (token === undefined) {
      throw new HttpError(
        401,
        'ERR_UNAUTHORIZED',
        'This server needs its API key: send the header Authorization: Bearer <key>',
        {
          'www-authenticate': 'Bearer realm="multilora"',
        },
      );
    }
    if (!timingSafeEqual(sha256(token), this.#digest)) {
      throw new HttpError(401, 'ERR_UNAUTHORIZED', "The API key is not this server's", {
        'www-authenticate': 'Bearer realm="multilora", error="invalid_token"',
      });
    }
  }
}
