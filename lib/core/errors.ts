/** Every error code that multilora's errors carry. */
export const ERROR_CODES = [
  'ERR_MODEL_NOT_FOUND',
  'ERR_MODEL_INVALID',
  'ERR_ADAPTER_NOT_FOUND',
  'ERR_ADAPTER_INVALID',
  'ERR_ADAPTER_UNMATCHED',
  'ERR_ADAPTER_INCOMPATIBLE',
  'ERR_ADAPTER_FORMAT',
  'ERR_INVALID_ARGUMENT',
  'ERR_GENAI',
  'ERR_BUSY',
  'ERR_DISPOSED',
  'ERR_ABORTED',
  'ERR_CALLBACK',
  'ERR_NATIVE_LOAD',
  'ERR_CONVERT_SOURCE',
  'ERR_HUB_UNREACHABLE',
  'ERR_OUTPUT_NOT_EMPTY',
  'ERR_NO_SPACE',
  'ERR_CONVERT_SETUP',
  'ERR_CONVERT_FAILED',
  'ERR_REMOTE',
  'ERR_RESULT_EXPIRED',
  'ERR_JOB_LOST',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The one error class of multilora: `code` says what went wrong, `message` says what to do. */
export class MultiloraError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MultiloraError';
    this.code = code;
  }
}

/** A call on an object that was disposed. */
export class DisposedError extends MultiloraError {
  constructor(what: string) {
    super('ERR_DISPOSED', `${what} was disposed`);
    this.name = 'DisposedError';
  }
}

/** A call stopped by its AbortSignal. `cause` holds the signal's reason. */
export class AbortError extends MultiloraError {
  constructor(reason?: unknown) {
    super('ERR_ABORTED', 'The operation was aborted', { cause: reason });
    this.name = 'AbortError';
  }
}

const KNOWN_CODES = new Set<string>(ERROR_CODES);

/**
 * Turns what the addon rejected with (an Error with a `code`) into a MultiloraError. Created here, in the awaiting
 * async function, so that the stack shows the caller's frames rather than the addon's.
 */
export function fromNative(err: unknown): MultiloraError {
  if (err instanceof MultiloraError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' && KNOWN_CODES.has(e.code) ? (e.code as ErrorCode) : 'ERR_GENAI';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (code === 'ERR_DISPOSED') return new DisposedError('The pipeline');
  if (code === 'ERR_ABORTED') return new AbortError();
  return new MultiloraError(code, message, { cause: err });
}
