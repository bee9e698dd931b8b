// Argument checks for the public API. Every failure reads "Expected <what> for <name> but received <value>".
import { MultiloraError } from './errors';

export function describe(value: unknown): string {
  try {
    return describeValue(value);
  } catch {
    // A Proxy whose traps throw, or a revoked one: the message must not throw in turn.
    return 'an object that cannot be inspected';
  }
}

function describeValue(value: unknown): string {
  // A long string keeps its start and its end: for a path, the end names the file.
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 27)}...${value.slice(-30)}` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'function') return 'a function';
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  if (tag !== 'Object') return `an object (${tag})`;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return 'an object (Object)';
  const ctor = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof ctor === 'string' && ctor !== '' && ctor !== 'Object'
    ? `an instance of ${ctor}`
    : 'an object whose prototype is not Object.prototype';
}

export function invalid(what: string, name: string, value: unknown): MultiloraError {
  return new MultiloraError('ERR_INVALID_ARGUMENT', `Expected ${what} for ${name} but received ${describe(value)}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  try {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const proto: unknown = Object.getPrototypeOf(value);
    return proto === Object.prototype || proto === null;
  } catch {
    return false; // a Proxy whose getPrototypeOf trap throws, or a revoked one
  }
}

/**
 * Runs `read`, which looks into a value that the caller gave (its getters, a Proxy's traps): whatever it throws
 * becomes ERR_INVALID_ARGUMENT, with the thrown value as `cause`.
 */
export function reading<T>(name: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof MultiloraError) throw err;
    let why: string;
    try {
      why = err instanceof Error ? err.message : String(err);
    } catch {
      why = typeof err;
    }
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `Reading ${name} threw: ${why}`, { cause: err });
  }
}

/**
 * A plain object's own enumerable properties, each read once, in a copy without a prototype: later checks see the
 * values that were checked (a getter cannot answer differently the second time), and a getter or Proxy trap that
 * throws is an ERR_INVALID_ARGUMENT.
 */
export function object(value: unknown, name: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw invalid('an object', name, value);
  return reading(name, () => {
    const copy = Object.create(null) as Record<string, unknown>;
    for (const key of Object.keys(value)) copy[key] = value[key];
    return copy;
  });
}

/**
 * Rejects keys that the API does not know (a typo would otherwise be ignored without a word), suggesting the known
 * key it most likely meant.
 */
export function knownKeys(value: Record<string, unknown>, allowed: readonly string[], name: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const guess = closest(key, allowed);
      const shown = JSON.stringify(key.length > 60 ? `${key.slice(0, 57)}...` : key);
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `Unknown option ${shown} in ${name}${guess ? `: did you mean ${JSON.stringify(guess)}?` : ''}; ` +
          `the known options are ${allowed.join(', ')}`,
      );
    }
  }
}

/**
 * The known key a typo most likely meant: the same but for case, or the one within a small edit distance
 * (a third of its length, at least 1; a swap of two neighbours counts as one edit). Undefined when none is close.
 */
export function closest(key: string, known: readonly string[]): string | undefined {
  if (key.length > 64) return undefined;
  const lower = key.toLowerCase();
  const sameCase = known.find((k) => k.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d <= Math.max(1, Math.floor(k.length / 3)) && d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j += 1) rows[0][j] = j;
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      rows[i][j] = d;
    }
  }
  return rows[a.length][b.length];
}

export function string(value: unknown, name: string, { nonEmpty = false, maxLength = Infinity } = {}): string {
  if (typeof value !== 'string' || (nonEmpty && value.length === 0) || value.length > maxLength) {
    const what = nonEmpty ? 'a non-empty string' : 'a string';
    throw invalid(maxLength < Infinity ? `${what} of at most ${maxLength} characters` : what, name, value);
  }
  return value;
}

export function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`an integer from ${min} to ${max}`, name, value);
  }
  return value;
}

export function finite(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = min > -Infinity || max < Infinity ? ` from ${min} to ${max}` : '';
    throw invalid(`a finite number${range}`, name, value);
  }
  return value;
}
