import path from 'node:path';

import { PACKAGE_ROOT } from './sdk';

/** The embedded default model: a tiny random-weight SDXL-like export that ships with the package. */
export function defaultModelDir(): string {
  return path.join(PACKAGE_ROOT, 'models', 'sdxl-tiny');
}
