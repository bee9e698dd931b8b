// The page (web/): its files, read once at start, served with a strict Content-Security-Policy.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { FastifyInstance } from 'fastify';

import { PACKAGE_ROOT } from '../../core/sdk';

const WEB_DIR = path.join(PACKAGE_ROOT, 'web');
export const PAGE_FILES: Readonly<Record<string, [file: string, type: string]>> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
  '/favicon.svg': ['favicon.svg', 'image/svg+xml'],
};
const CSP =
  "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's files by route, with their content types. */
export type Page = Record<string, { body: Buffer; type: string }>;

/** Reads the page's files (before the model loads: a broken install fails at once). */
export function readPage(): Page {
  return Object.fromEntries(
    Object.entries(PAGE_FILES).map(([route, [file, type]]) => [
      route,
      { body: readFileSync(path.join(WEB_DIR, file)), type },
    ]),
  );
}

export function registerPage(app: FastifyInstance, page: Page): void {
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
}
