// A JSON catalogue of adapters: the shape of the `adapters` load option, with paths relative to the file.
//   { "xray": { "path": "loras/xray.safetensors", "alpha": 0.8, "template": "xray <subject>" }, ... }
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { checkSpec, type AdapterSource } from './adapter';
import { MultiloraError } from './errors';
import { topLevelKeys } from '../lora/safetensors';
import { isPlainObject } from './validate';

export function readCatalog(file: string): AdapterSource[] {
  const where = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(where, 'utf8');
  } catch (err) {
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `Cannot read the catalogue ${where}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `The catalogue ${where} is not valid JSON: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (!isPlainObject(value)) {
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `The catalogue ${where} must hold an object of adapters by name`);
  }
  // JSON.parse keeps the last of two entries of one name without a word: two adapters registered under one name.
  const names = new Set<string>();
  for (const name of topLevelKeys(text)) {
    if (names.has(name)) {
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `The catalogue ${where} names adapter ${JSON.stringify(name)} twice: give each adapter one entry, under a name of its own`,
      );
    }
    names.add(name);
  }
  return Object.entries(value).map(([name, spec]) => {
    if (isPlainObject(spec) && spec.data !== undefined) {
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `The catalogue ${where}: adapter ${JSON.stringify(name)} needs a path (JSON holds no Buffer)`,
      );
    }
    try {
      return checkSpec(name, spec, path.dirname(where));
    } catch (err) {
      if (err instanceof MultiloraError) {
        throw new MultiloraError(err.code, `In the catalogue ${where}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  });
}
