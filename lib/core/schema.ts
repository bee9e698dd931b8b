// The generate options, written once: each option's key, which calls take it, whether it travels to a remote worker,
// and the bounds of its value. The library (options.ts), the CLI, the server (its request parser and its OpenAPI
// document), the remote queue and the worker all take their keys and bounds from here.
import { finite, integer, invalid, string } from './validate';

/** How an option's value is checked, where that needs no model. */
export type OptionCheck =
  | { kind: 'integer'; min: number; max: number }
  | { kind: 'number'; min: number; max: number }
  | { kind: 'string'; maxLength: number }
  | { kind: 'boolean' }
  | { kind: 'oneOf'; values: readonly string[] }
  /** Checked against the model or the process by options.ts itself (adapters, scheduler, callbacks). */
  | { kind: 'special' };

export interface OptionSpec {
  check: OptionCheck;
  /** Which calls take it: generate ('text'), imageToImage/inpaint ('image'), or both. */
  calls: 'both' | 'text' | 'image';
  /** Whether it travels with a remote job (false: it lives in the caller's process, or the worker decides it). */
  travels: boolean;
}

/** The largest seed: GenAI's generator keeps 32 bits. */
export const MAX_SEED = 2 ** 32 - 1;
/** The largest width or height of an image, in or out. */
export const MAX_SIDE = 8192;
/** The most images one call may ask for (numImages). */
export const MAX_IMAGES = 16;
/** The longest prompt (each of them), in characters. */
export const MAX_PROMPT = 100_000;
/** The bounds of an adapter's alpha in a call. */
export const ALPHA = { min: -100, max: 100 } as const;

/** The generators `options.generator` can name. */
export const GENERATORS = ['genai', 'torch'] as const;
/** How the image bytes reach the caller: see `GenerateOptions.output`. */
const OUTPUT_MODES = ['copy', 'borrow'] as const;

const prompt = { check: { kind: 'string', maxLength: MAX_PROMPT }, calls: 'both', travels: true } as const;

/** Every option of a generate call, in the order they are checked. */
export const OPTIONS = {
  adapters: { check: { kind: 'special' }, calls: 'both', travels: true },
  applyTemplate: { check: { kind: 'boolean' }, calls: 'both', travels: true },
  seed: { check: { kind: 'integer', min: 0, max: MAX_SEED }, calls: 'both', travels: true },
  generator: { check: { kind: 'oneOf', values: GENERATORS }, calls: 'both', travels: true },
  output: { check: { kind: 'oneOf', values: OUTPUT_MODES }, calls: 'both', travels: false },
  width: { check: { kind: 'integer', min: 1, max: MAX_SIDE }, calls: 'text', travels: true },
  height: { check: { kind: 'integer', min: 1, max: MAX_SIDE }, calls: 'text', travels: true },
  steps: { check: { kind: 'integer', min: 1, max: 1000 }, calls: 'both', travels: true },
  strength: { check: { kind: 'number', min: 0, max: 1 }, calls: 'image', travels: false },
  guidanceScale: { check: { kind: 'number', min: 0, max: 100 }, calls: 'both', travels: true },
  negativePrompt: prompt,
  prompt2: prompt,
  prompt3: prompt,
  negativePrompt2: prompt,
  negativePrompt3: prompt,
  maxSequenceLength: { check: { kind: 'integer', min: 1, max: 4096 }, calls: 'both', travels: true },
  numImages: { check: { kind: 'integer', min: 1, max: MAX_IMAGES }, calls: 'both', travels: true },
  scheduler: { check: { kind: 'special' }, calls: 'both', travels: true },
  onProgress: { check: { kind: 'special' }, calls: 'both', travels: false },
  preview: { check: { kind: 'boolean' }, calls: 'both', travels: true },
  signal: { check: { kind: 'special' }, calls: 'both', travels: false },
} as const satisfies Record<string, OptionSpec>;

export type OptionKey = keyof typeof OPTIONS;

const ALL_KEYS = Object.keys(OPTIONS) as OptionKey[];
/** The keys of generate's options. */
export const GENERATE_KEYS: readonly OptionKey[] = ALL_KEYS.filter((k) => OPTIONS[k].calls !== 'image');
/** The keys of imageToImage's and inpaint's options. */
export const IMAGE_KEYS: readonly OptionKey[] = ALL_KEYS.filter((k) => OPTIONS[k].calls !== 'text');
/** The keys of a remote job's options: generate's, less what lives in the caller's process. */
export const REMOTE_KEYS: readonly OptionKey[] = GENERATE_KEYS.filter((k) => OPTIONS[k].travels);
/** The keys RemoteQueue.enqueue takes that stay in the caller's process. */
export const LOCAL_KEYS: readonly OptionKey[] = ['onProgress', 'signal'];
/** The options that are prompts. */
export const PROMPT_KEYS = ['negativePrompt', 'prompt2', 'prompt3', 'negativePrompt2', 'negativePrompt3'] as const;

type KeyOf<K extends OptionCheck['kind']> = {
  [P in OptionKey]: (typeof OPTIONS)[P]['check']['kind'] extends K ? P : never;
}[OptionKey];

/** The numeric options. */
export type NumericKey = KeyOf<'integer' | 'number'>;

/** The bounds of a numeric option. */
export function bounds(key: NumericKey): { min: number; max: number } {
  const { min, max } = OPTIONS[key].check;
  return { min, max };
}

/**
 * Checks a numeric option, named `name` in the message; `max` narrows its bound (a service's own limit). The checks
 * below are the only ones of an option's value that need no model: every caller of the library runs them.
 */
export function checkNumber(key: NumericKey, value: unknown, name: string = `options.${key}`, max?: number): number {
  const check = OPTIONS[key].check;
  return check.kind === 'integer'
    ? integer(value, name, check.min, max ?? check.max)
    : finite(value, name, check.min, max ?? check.max);
}

/** Checks a prompt option. */
export function checkText(key: KeyOf<'string'>, value: unknown, name: string = `options.${key}`, max?: number): string {
  return string(value, name, { maxLength: max ?? OPTIONS[key].check.maxLength });
}

/** Checks a boolean option. */
export function checkFlag(key: KeyOf<'boolean'>, value: unknown, name: string = `options.${key}`): boolean {
  if (typeof value !== 'boolean') throw invalid('a boolean', name, value);
  return value;
}

/** Checks an option that takes one of a few strings. */
export function checkChoice<K extends KeyOf<'oneOf'>>(
  key: K,
  value: unknown,
  name: string = `options.${key}`,
): (typeof OPTIONS)[K]['check']['values'][number] {
  const values: readonly string[] = OPTIONS[key].check.values;
  if (typeof value !== 'string' || !values.includes(value))
    throw invalid(values.map((v) => JSON.stringify(v)).join(' or '), name, value);
  return value as (typeof OPTIONS)[K]['check']['values'][number];
}

/**
 * Checks what can be checked of a call's options without a model: each value of a simple kind (numbers, prompts,
 * flags, choices), within the policy's limits and under its names. RemoteQueue runs this on the caller's side; the
 * worker runs the whole check (options.ts).
 */
export function checkPortable(
  options: Readonly<Record<string, unknown>>,
  keys: readonly OptionKey[],
  policy?: CheckPolicy,
): void {
  for (const key of keys) {
    const value = options[key];
    if (value === undefined) continue;
    const kind = OPTIONS[key].check.kind;
    const name = optionName(key, policy);
    if (kind === 'integer' || kind === 'number') checkNumber(key as NumericKey, value, name, limitOf(key, policy));
    else if (kind === 'string') checkText(key as KeyOf<'string'>, value, name, limitOf(key, policy));
    else if (kind === 'boolean') checkFlag(key as KeyOf<'boolean'>, value, name);
    else if (kind === 'oneOf') checkChoice(key as KeyOf<'oneOf'>, value, name);
  }
}

/**
 * What a service (`multilora serve`, a worker) allows by default: less than the library, so that one request cannot
 * hold a shared machine for long. A worker's limits can be raised up to the library's bounds.
 */
export const SERVICE_LIMITS = {
  steps: 500,
  numImages: 4,
  /** Characters of each prompt. */
  prompt: 2000,
  guidanceScale: 30,
  /** An adapter's alpha, both ways. */
  alpha: 10,
} as const;

/** A service's own bounds (SERVICE_LIMITS' keys), each at most the library's. */
export type ServiceLimits = { [K in keyof typeof SERVICE_LIMITS]?: number };

/**
 * How a service has the library check a call: within its own limits, and naming the options as its callers know
 * them (the server's HTTP fields: `guidance_scale`, `n`...). The library's own calls have none: `options.<key>`.
 */
export interface CheckPolicy {
  limits?: ServiceLimits;
  names?: Partial<Record<OptionKey, string>>;
}

/** The name of an option in a message: the policy's, or `options.<key>`. */
export function optionName(key: OptionKey, policy: CheckPolicy | undefined): string {
  return policy?.names?.[key] ?? `options.${key}`;
}

/** The policy's bound of an option (narrower than the schema's), if it has one. */
export function limitOf(key: OptionKey, policy: CheckPolicy | undefined): number | undefined {
  const limits = policy?.limits;
  if (!limits) return undefined;
  if ((PROMPT_KEYS as readonly string[]).includes(key)) return limits.prompt;
  return key === 'steps' || key === 'numImages' || key === 'guidanceScale' ? limits[key] : undefined;
}
