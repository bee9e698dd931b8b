// The body of POST /v1/images/generations, checked and turned into a generate call. Every failure is an HttpError
// with status 400, in the library's message format ("Expected <what> for <name> but received <value>").
import { MultiloraError } from '../core/errors';
import { SERVICE_LIMITS, type CheckPolicy } from '../core/schema';
import { describe, invalid, isPlainObject } from '../core/validate';
import { MAX_PROMPT, type SizeLimits } from './limits';

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
  width: number;
  height: number;
  /**
   * The call's options by their library keys, as the body gives them: the backend's check (checkRequest) checks
   * their values, once, within the service limits and under the fields' names (SERVER_POLICY).
   */
  options: Record<string, unknown>;
  /** The adapters by name with their alphas, as the call uses them (the catalogue's alpha when given as null). */
  loras: Record<string, unknown>;
}

/** How the library checks a request's call: within the service limits, naming the request's fields. */
export const SERVER_POLICY: CheckPolicy = {
  limits: SERVICE_LIMITS,
  names: {
    adapters: 'loras',
    seed: 'seed',
    generator: 'generator',
    steps: 'steps',
    guidanceScale: 'guidance_scale',
    negativePrompt: 'negative_prompt',
    applyTemplate: 'apply_template',
    numImages: 'n',
    preview: 'preview',
  },
};

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

/**
 * Runs the library's check of a request's call (the backend's: checkGenerate, or RemoteQueue's checkEnqueue, given
 * SERVER_POLICY), its failure as a 400.
 */
export function checkRequest<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw err instanceof MultiloraError ? bad(err.message) : err;
  }
}

/**
 * Reads a request body: its shape (the known fields, size, response_format, job_id, model, user), the prompt not
 * blank, the size within the limits, and the adapters against the catalogue (`adapters`: the registered names with
 * their default alphas). The call's values are left to the backend's check (checkRequest). Throws HttpError 400.
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
  if (typeof body.prompt !== 'string' || body.prompt.trim() === '') {
    throw expected(`a non-empty string of at most ${MAX_PROMPT} characters`, 'prompt', body.prompt);
  }
  if (body.response_format !== undefined && body.response_format !== 'b64_json') {
    throw expected('"b64_json" (the only format this server returns)', 'response_format', body.response_format);
  }
  const [width, height] = sizeOf(body.size, sizes);
  const loras = lorasOf(body.loras, adapters);
  const options: Record<string, unknown> = { width, height, adapters: loras };
  for (const [field, key] of FIELDS) {
    const value = body[field];
    // null: the default, as OpenAI's clients send it
    if (value !== undefined && !(value === null && NULLABLE.includes(field))) options[key] = value;
  }
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
  return { jobId, prompt: body.prompt, width, height, options, loras };
}

/** The fields that are options of the call as they are, with their library keys. */
const FIELDS = [
  ['n', 'numImages'],
  ['seed', 'seed'],
  ['generator', 'generator'],
  ['steps', 'steps'],
  ['guidance_scale', 'guidanceScale'],
  ['negative_prompt', 'negativePrompt'],
  ['apply_template', 'applyTemplate'],
  ['preview', 'preview'],
] as const;
/** The fields that take null for their default. */
const NULLABLE: readonly string[] = ['seed', 'generator', 'negative_prompt'];

/** The width and height of the request's `size` (the model's default for none or "auto"), within the size limits. */
function sizeOf(size: unknown, sizes: SizeLimits): [number, number] {
  if (size === undefined || size === 'auto') return [sizes.defaultWidth, sizes.defaultHeight];
  const m = typeof size === 'string' ? /^(\d{1,5})x(\d{1,5})$/.exec(size) : null;
  if (!m) throw expected('"WIDTHxHEIGHT" (e.g. "512x512")', 'size', size);
  const sides: [number, number] = [Number(m[1]), Number(m[2])];
  for (const [side, v] of [
    ['width', sides[0]],
    ['height', sides[1]],
  ] as const) {
    if (v < sizes.min || v > sizes.max || v % sizes.multipleOf !== 0) {
      throw expected(`a ${side} from ${sizes.min} to ${sizes.max}, a multiple of ${sizes.multipleOf}`, 'size', size);
    }
  }
  return sides;
}

/** The request's adapters, each of the catalogue, with its alpha (the catalogue's for null) left to the check. */
function lorasOf(value: unknown, adapters: ReadonlyMap<string, number>): Record<string, unknown> {
  const loras: Record<string, unknown> = {};
  if (value === undefined || value === null) return loras;
  if (!isPlainObject(value)) throw expected('an object of { name: alpha }', 'loras', value);
  for (const [name, alpha] of Object.entries(value)) {
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
      throw new HttpError(400, 'ERR_UNKNOWN_ADAPTER', `Unknown adapter ${describe(name)}; the catalogue has ${known}`);
    }
    loras[name] = alpha === null ? fallback : alpha;
  }
  return loras;
}
