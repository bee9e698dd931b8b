// The body of POST /v1/images/generations, checked and turned into a generate call. Every failure is an HttpError
// with status 400, in the library's message format ("Expected <what> for <name> but received <value>").
import type { GenerateOptions } from '../core/options';
import { MultiloraError } from '../core/errors';
import { bounds, checkChoice, checkFlag, checkNumber } from '../core/schema';
import { describe, invalid, isPlainObject } from '../core/validate';
import { MAX_ALPHA, MAX_GUIDANCE, MAX_IMAGES, MAX_PROMPT, MAX_STEPS, type SizeLimits } from './limits';

/** An error with the HTTP status, the headers and the `{ error: { code, message } }` body it is sent as. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface GenerationRequest {
  jobId: string | undefined;
  prompt: string;
  n: number;
  width: number;
  height: number;
  preview: boolean;
  options: GenerateOptions;
  /** The adapters by name with their alphas, as the call uses them (the catalogue's alpha when given as null). */
  loras: Record<string, number>;
}

const KEYS = [
  'prompt',
  'n',
  'size',
  'response_format',
  'loras',
  'seed',
  'generator',
  'steps',
  'guidance_scale',
  'negative_prompt',
  'apply_template',
  'preview',
  'job_id',
  // OpenAI's, accepted and ignored: this server has one model.
  'model',
  'user',
] as const;

/** A job id a client may choose: it names an SSE stream and a DELETE target, nothing else. */
export const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** An adapter name as a catalogue gives it; anything with a slash, a backslash or '..' is taken for a path. */
const PATH_LIKE = /[\\/]|\.\.|^~|\.safetensors$/i;

function bad(message: string): HttpError {
  return new HttpError(400, 'ERR_INVALID_ARGUMENT', message);
}

function expected(what: string, name: string, value: unknown): HttpError {
  return bad(invalid(what, name, value).message);
}

/** A check of the option schema (lib/core/schema.ts), its failure as a 400. */
function checked<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw err instanceof MultiloraError ? bad(err.message) : err;
  }
}

function text(value: unknown, name: string, nonEmpty: boolean): string {
  if (typeof value !== 'string' || (nonEmpty && value.trim() === '') || value.length > MAX_PROMPT) {
    throw expected(`${nonEmpty ? 'a non-empty string' : 'a string'} of at most ${MAX_PROMPT} characters`, name, value);
  }
  return value;
}

/**
 * Checks a request body against the catalogue (`adapters`: the registered names with their default alphas) and
 * the size limits. Throws HttpError 400.
 */
export function parseGeneration(
  body: unknown,
  adapters: ReadonlyMap<string, number>,
  sizes: SizeLimits,
  headerJobId: string | undefined,
): GenerationRequest {
  if (!isPlainObject(body)) throw expected('a JSON object', 'the request body', body);
  for (const key of Object.keys(body)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      throw bad(`Unknown field ${describe(key)}; the known fields are ${KEYS.join(', ')}`);
    }
  }
  const prompt = text(body.prompt, 'prompt', true);
  const n = body.n === undefined ? 1 : checked(() => checkNumber('numImages', body.n, 'n', MAX_IMAGES));
  if (body.response_format !== undefined && body.response_format !== 'b64_json') {
    throw expected('"b64_json" (the only format this server returns)', 'response_format', body.response_format);
  }
  let width = sizes.defaultWidth;
  let height = sizes.defaultHeight;
  if (body.size !== undefined && body.size !== 'auto') {
    const m = typeof body.size === 'string' ? /^(\d{1,5})x(\d{1,5})$/.exec(body.size) : null;
    if (!m) throw expected('"WIDTHxHEIGHT" (e.g. "512x512")', 'size', body.size);
    width = Number(m[1]);
    height = Number(m[2]);
    for (const [side, v] of [
      ['width', width],
      ['height', height],
    ] as const) {
      if (v < sizes.min || v > sizes.max || v % sizes.multipleOf !== 0) {
        throw expected(
          `a ${side} from ${sizes.min} to ${sizes.max}, a multiple of ${sizes.multipleOf}`,
          'size',
          body.size,
        );
      }
    }
  }
  const options: GenerateOptions = { width, height };
  const loras: Record<string, number> = {};
  if (body.loras !== undefined && body.loras !== null) {
    if (!isPlainObject(body.loras)) throw expected('an object of { name: alpha }', 'loras', body.loras);
    for (const [name, alpha] of Object.entries(body.loras)) {
      if (PATH_LIKE.test(name)) {
        throw new HttpError(
          400,
          'ERR_UNKNOWN_ADAPTER',
          `${describe(name)} looks like a path: a request names adapters of the catalogue (GET /v1/loras), never files`,
        );
      }
      const fallback = adapters.get(name);
      if (fallback === undefined) {
        const known = [...adapters.keys()].map((k) => JSON.stringify(k)).join(', ') || 'none';
        throw new HttpError(
          400,
          'ERR_UNKNOWN_ADAPTER',
          `Unknown adapter ${describe(name)}; the catalogue has ${known}`,
        );
      }
      if (alpha === null) {
        loras[name] = fallback;
      } else if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha < -MAX_ALPHA || alpha > MAX_ALPHA) {
        throw expected(
          `a number from -${MAX_ALPHA} to ${MAX_ALPHA}, or null for the default`,
          `loras[${JSON.stringify(name)}]`,
          alpha,
        );
      } else {
        loras[name] = alpha;
      }
    }
  }
  options.adapters = loras;
  if (body.seed !== undefined && body.seed !== null)
    options.seed = checked(() => checkNumber('seed', body.seed, 'seed'));
  if (body.generator !== undefined && body.generator !== null) {
    options.generator = checked(() => checkChoice('generator', body.generator, 'generator'));
  }
  if (body.steps !== undefined) options.steps = checked(() => checkNumber('steps', body.steps, 'steps', MAX_STEPS));
  if (body.guidance_scale !== undefined) {
    const g = body.guidance_scale;
    const { min } = bounds('guidanceScale');
    if (typeof g !== 'number' || !Number.isFinite(g) || g < min || g > MAX_GUIDANCE) {
      throw expected(`a number from ${min} to ${MAX_GUIDANCE}`, 'guidance_scale', g);
    }
    options.guidanceScale = g;
  }
  if (body.negative_prompt !== undefined && body.negative_prompt !== null) {
    options.negativePrompt = text(body.negative_prompt, 'negative_prompt', false);
  }
  if (body.apply_template !== undefined)
    options.applyTemplate = checked(() => checkFlag('applyTemplate', body.apply_template, 'apply_template'));
  const preview = body.preview === undefined ? false : checked(() => checkFlag('preview', body.preview, 'preview'));
  if (body.model !== undefined && typeof body.model !== 'string') throw expected('a string', 'model', body.model);
  if (body.user !== undefined && typeof body.user !== 'string') throw expected('a string', 'user', body.user);
  let jobId = headerJobId;
  if (body.job_id !== undefined) {
    if (headerJobId !== undefined && headerJobId !== body.job_id) throw bad('X-Job-Id and job_id differ');
    jobId = body.job_id as string;
  }
  if (jobId !== undefined && (typeof jobId !== 'string' || !JOB_ID.test(jobId))) {
    throw expected('1 to 64 letters, digits, "_" or "-"', 'job_id', jobId);
  }
  return { jobId, prompt, n, width, height, preview, options, loras };
}
