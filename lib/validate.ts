// Argument checks for the public API. Every failure reads "Expected <what> for <name> but received <value>".
import { MultiloraError } from './errors';

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'function') return 'a function';
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

export function invalid(what: string, name: string, value: unknown): MultiloraError {
  return new MultiloraError('ERR_INVALID_ARGUMENT', `Expected ${what} for ${name} but received ${describe(value)}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function object(value: unknown, name: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw invalid('an object', name, value);
  return value;
}

/** Rejects keys that the API does not know (a typo would otherwise be ignored without a word). */
export function knownKeys(value: Record<string, unknown>, allowed: readonly string[], name: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new MultiloraError(
        'ERR_INVALID_ARGUMENT',
        `Unknown option ${JSON.stringify(key)} in ${name}; the known options are ${allowed.join(', ')}`,
      );
    }
  }
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
