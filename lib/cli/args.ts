// Parsing of the command line's values: numbers, `name=path[:alpha]`, `name[:alpha]`, output paths. Every failure is
// a UsageError (exit 2) that reads "Expected <what> for <flag> but received <value>".
import { closeSync, openSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { ALPHA } from '../core/schema';
import { describe } from '../core/validate';

/** A bad command line: the process exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function usage(what: string, flag: string, value: unknown): UsageError {
  return new UsageError(`Expected ${what} for ${flag} but received ${describe(value)}`);
}

const INTEGER = /^[+]?\d+$/;
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A decimal integer from min to max. */
export function parseInteger(text: string, flag: string, min: number, max: number): number {
  const value = INTEGER.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usage(`an integer from ${min} to ${max}`, flag, text);
  }
  return value;
}

/** A finite decimal number from min to max. */
export function parseNumber(text: string, flag: string, min: number, max: number): number {
  const value = NUMBER.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw usage(`a number from ${min} to ${max}`, flag, text);
  }
  return value;
}

/** The alphas a LoRA can take: the library's own bounds. */
const { min: ALPHA_MIN, max: ALPHA_MAX } = ALPHA;

/** Splits an optional trailing `:number` off `text`; a colon followed by something else stays in the text. */
export function splitAlpha(text: string, flag: string): { head: string; alpha: number | undefined } {
  const match = /^(.*):([^:]*)$/s.exec(text);
  if (!match || !NUMBER.test(match[2].trim())) return { head: text, alpha: undefined };
  return { head: match[1], alpha: parseNumber(match[2], `the alpha of ${flag}`, ALPHA_MIN, ALPHA_MAX) };
}

export interface LoraArg {
  name: string;
  /** As given: relative to the working directory. */
  path: string;
  alpha: number;
}

/** `name=path` with an optional trailing `:alpha` (default 1). */
export function parseLora(text: string): LoraArg {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) throw usage('name=path[:alpha]', '--lora', text);
  const name = text.slice(0, eq);
  const { head, alpha } = splitAlpha(text.slice(eq + 1), '--lora');
  if (head === '') throw usage('name=path[:alpha]', '--lora', text);
  return { name, path: head, alpha: alpha ?? 1 };
}

export interface UseArg {
  name: string;
  /** Absent: the adapter's default alpha from the catalogue. */
  alpha?: number;
}

/** `name` with an optional trailing `:alpha`. */
export function parseUse(text: string): UseArg {
  const { head, alpha } = splitAlpha(text, '--use');
  if (head === '') throw usage('name[:alpha]', '--use', text);
  return alpha === undefined ? { name: head } : { name: head, alpha };
}

/** Commander's collector for repeatable options. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export type ImageFormat = 'png' | 'jpeg';

/** The format an output path asks for, by its extension; `-` is PNG on stdout. */
export function outputFormat(file: string): ImageFormat {
  if (file === '-') return 'png';
  const ext = path.extname(file).toLowerCase();
  if (ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  throw usage('a file name ending in .png, .jpg or .jpeg, or - for stdout', '--out', file);
}

/**
 * Checks that an output file can be written, before anything slow runs, by the open its write will do: an existing
 * file is opened for writing without truncating it (a folder fails with EISDIR); a new one is created and removed at
 * once. So a folder, a missing or unwritable folder, or a read-only file system is a usage error now, not a raw
 * EISDIR or EACCES once the image is made.
 */
export function checkOutputFile(file: string, flag = '--out'): void {
  if (file === '-') return;
  let fd: number | undefined;
  let created = false;
  try {
    try {
      fd = openSync(file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fd = openSync(file, 'wx');
      created = true;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'an error';
    const dir = path.dirname(path.resolve(file));
    if (code === 'EISDIR') throw usage('a file, not a folder,', flag, file);
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw usage(`a file in an existing folder (no folder ${dir})`, flag, file);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
      throw usage(`a file this user can write (${code} in ${dir})`, flag, file);
    throw usage(`a file that can be written (${code})`, flag, file);
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (created) unlinkSync(file);
  }
}

/**
 * The files of a run: `file` itself for one image; for several, `-1`, `-2`... before the extension
 * (`cat.png` → `cat-1.png`, `cat-2.png`).
 */
export function numberedFiles(file: string, count: number): string[] {
  if (count === 1) return [file];
  const ext = path.extname(file);
  const stem = file.slice(0, file.length - ext.length);
  return Array.from({ length: count }, (_, i) => `${stem}-${i + 1}${ext}`);
}
