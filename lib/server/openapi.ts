// The server's API as OpenAPI 3.0: served at GET /openapi.json, and committed as docs/openapi.json (a test checks
// that the two are the same; regenerate with the command in docs/SERVER.md).
import { GENERATORS } from '../core/options';
import { bounds } from '../core/schema';
import {
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_QUEUE,
  DEFAULT_TIMEOUTS,
  MAX_GUIDANCE,
  MAX_ALPHA,
  MAX_HEADER_BYTES,
  MAX_IMAGES,
  MAX_PROMPT,
  MAX_STEPS,
} from './limits';

const error = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** Every operation under /v1 answers this when the server has an API key and the request lacks it. */
const unauthorized = {
  ...error(
    'The server has an API key (serve --api-key) and the request did not send it as Authorization: Bearer <key>, or sent another (ERR_UNAUTHORIZED)',
  ),
  headers: { 'WWW-Authenticate': { schema: { type: 'string', example: 'Bearer realm="multilora"' } } },
};

/** Every operation answers this on a server bound to loopback asked under another Host name (DNS rebinding). */
const forbiddenHost = error(
  'The server is bound to a loopback address and the Host header is not a loopback name (127.x.y.z, localhost, [::1]) (ERR_FORBIDDEN_HOST)',
);

const jobIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
};

/** What the API is, its limits and its errors in short. */
function info(): Record<string, unknown> {
  return {
    title: 'multilora serve',
    version: '1',
    description:
      'Stable Diffusion with LoRA adapters on OpenVINO GenAI, one pipeline per server. Generations run one at a time, in order; ' +
      `at most maxQueue (default ${DEFAULT_MAX_QUEUE}) are accepted at once. Request bodies are limited to maxBodyBytes ` +
      `(default ${DEFAULT_MAX_BODY}), headers to ${MAX_HEADER_BYTES} bytes (431 ERR_HEADERS_TOO_LARGE). A client has ` +
      `${DEFAULT_TIMEOUTS.headersMs} ms to send a request's headers and ${DEFAULT_TIMEOUTS.requestMs} ms to send the whole request ` +
      '(408 ERR_REQUEST_TIMEOUT, and the connection closes); an idle keep-alive connection closes after ' +
      `${DEFAULT_TIMEOUTS.keepAliveMs} ms. Malformed HTTP gets 400 ERR_MALFORMED_REQUEST; a method a path does not take gets ` +
      '405 ERR_METHOD_NOT_ALLOWED with Allow. Every error is an Error object with a code. With an API key (serve --api-key), ' +
      'every request but the page and this document needs Authorization: Bearer <key> (401 ERR_UNAUTHORIZED). A request names adapters of the ' +
      'catalogue only, never files. A client that disconnects before its response has its job aborted. See docs/SERVER.md.',
  };
}

/** POST /v1/images/generations. */
function generationsPath(): Record<string, unknown> {
  return {
    post: {
      summary: 'Generate images (OpenAI-style), waiting for the result',
      description:
        'Progress: choose a job id (job_id or X-Job-Id) and open GET /v1/jobs/{id}/events before or after posting. ' +
        'Cancel with DELETE /v1/jobs/{id}.',
      parameters: [
        {
          name: 'X-Job-Id',
          in: 'header',
          required: false,
          schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
        },
      ],
      requestBody: {
        required: true,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/GenerationRequest' } } },
      },
      responses: {
        '200': {
          description: 'The images, as PNG in base64',
          headers: { 'X-Job-Id': { schema: { type: 'string' } } },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/GenerationResponse' } } },
        },
        '401': unauthorized,
        '403': forbiddenHost,
        '400': error(
          'Bad input: malformed JSON (ERR_INVALID_JSON), a bad or unknown field (ERR_INVALID_ARGUMENT), an adapter not in the catalogue or a path (ERR_UNKNOWN_ADAPTER), malformed HTTP (ERR_MALFORMED_REQUEST)',
        ),
        '408': error('The request was not received in time (ERR_REQUEST_TIMEOUT); the connection closes'),
        '409': error('An active job already has this id (ERR_JOB_EXISTS)'),
        '413': error(
          'The body is larger than maxBodyBytes (ERR_BODY_TOO_LARGE), answered before it is read; the connection closes',
        ),
        '415': error('The body is not application/json (ERR_UNSUPPORTED_MEDIA_TYPE)'),
        '429': error('maxQueue jobs are already queued or running (ERR_QUEUE_FULL); see Retry-After'),
        '431': error(
          `The headers are larger than ${MAX_HEADER_BYTES / 1024} KiB (ERR_HEADERS_TOO_LARGE); the connection closes`,
        ),
        '499': error('The job was cancelled by DELETE /v1/jobs/{id} (ERR_CANCELLED), even after its last step'),
        '500': error('OpenVINO GenAI failed (ERR_GENAI, with its message)'),
        '503': error(
          'The server is shutting down (ERR_SHUTTING_DOWN); with serve --redis, Redis cannot be reached (ERR_REMOTE), or it lost the job (ERR_JOB_LOST)',
        ),
      },
    },
  };
}

/** GET /v1/loras. */
function lorasPath(): Record<string, unknown> {
  return {
    get: {
      summary: "The adapter catalogue (with serve --redis: the live workers' adapters)",
      responses: {
        '401': unauthorized,
        '403': forbiddenHost,
        '200': {
          description: 'The adapters a request may name',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['object', 'data'],
                properties: {
                  object: { type: 'string', enum: ['list'] },
                  data: { type: 'array', items: { $ref: '#/components/schemas/Lora' } },
                },
              },
            },
          },
        },
      },
    },
  };
}

/** GET /v1/status. */
function statusPath(): Record<string, unknown> {
  return {
    get: {
      summary: 'The model, its defaults, the limits, the queue and counters',
      responses: {
        '401': unauthorized,
        '403': forbiddenHost,
        '200': {
          description: 'Status',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Status' } } },
        },
      },
    },
  };
}

/** GET and DELETE /v1/jobs/{id}. */
function jobPath(): Record<string, unknown> {
  return {
    get: {
      summary: "A job's state",
      parameters: [jobIdParam],
      responses: {
        '401': unauthorized,
        '403': forbiddenHost,
        '200': {
          description: 'The job',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } },
        },
        '400': error('Not a job id (ERR_INVALID_ARGUMENT)'),
        '404': error('No such job, or it ended more than 5 minutes or 200 jobs ago (ERR_NOT_FOUND)'),
      },
    },
    delete: {
      summary: 'Cancel a job: queued, it leaves the queue; running, it stops at the next step',
      parameters: [jobIdParam],
      responses: {
        '401': unauthorized,
        '403': forbiddenHost,
        '202': {
          description: 'Cancelling: its POST will answer 499',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } },
        },
        '400': error('Not a job id (ERR_INVALID_ARGUMENT)'),
        '404': error('No such job (ERR_NOT_FOUND)'),
        '409': error('The job has already ended (ERR_JOB_FINISHED)'),
      },
    },
  };
}

/** GET /v1/jobs/{id}/events. */
function eventsPath(): Record<string, unknown> {
  return {
    get: {
      summary: "A job's progress as Server-Sent Events",
      description:
        'Events: `queued` {position}; `progress` {step, total, elapsedMs, preview?} after each step (dropped, never queued up, ' +
        'when the server falls behind); then one of `done` {seed, width, height, timings}, `cancelled` {reason: cancelled | ' +
        'disconnected | closing, step, total}, `error` {code, message, status}; then the stream ends. Every event carries ' +
        'job_id. The stream may be opened before the job is posted: it waits 30 s for it, then sends `error` ERR_NOT_FOUND.',
      parameters: [jobIdParam],
      responses: {
        '401': unauthorized,
        '403': forbiddenHost,
        '200': { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        '400': error('Not a job id (ERR_INVALID_ARGUMENT)'),
      },
    },
  };
}

/** GET /openapi.json. */
function openapiPath(): Record<string, unknown> {
  return {
    get: {
      summary: 'This document',
      security: [],
      responses: {
        '200': { description: 'OpenAPI 3.0', content: { 'application/json': { schema: { type: 'object' } } } },
        '403': forbiddenHost,
      },
    },
  };
}

/** components.schemas.GenerationRequest. */
function generationRequestSchema(): Record<string, unknown> {
  return {
    type: 'object',
    required: ['prompt'],
    additionalProperties: false,
    properties: {
      prompt: { type: 'string', minLength: 1, maxLength: MAX_PROMPT },
      n: {
        type: 'integer',
        minimum: bounds('numImages').min,
        maximum: MAX_IMAGES,
        default: 1,
        description: 'Images in one batch; they share the seed',
      },
      size: {
        type: 'string',
        pattern: '^[0-9]+x[0-9]+$',
        example: '512x512',
        description:
          "WIDTHxHEIGHT: multiples of the model's VAE scale factor, within GET /v1/status limits.size. Default: the model's",
      },
      response_format: { type: 'string', enum: ['b64_json'], default: 'b64_json' },
      loras: {
        type: 'object',
        additionalProperties: { type: 'number', nullable: true, minimum: -MAX_ALPHA, maximum: MAX_ALPHA },
        example: { 'style-a': 0.8, 'style-b': 0.3 },
        description: 'Catalogue adapters by name, with their alphas (null: the default alpha)',
      },
      seed: {
        type: 'integer',
        minimum: bounds('seed').min,
        maximum: bounds('seed').max,
        description: 'Default: random, reported in the response',
      },
      generator: {
        type: 'string',
        enum: [...GENERATORS],
        default: 'genai',
        description:
          "What turns the seed into the initial noise: GenAI's own generator, or torch's CPU generator (the noise of " +
          'torch.randn with torch.Generator().manual_seed(seed), as diffusers draws it)',
      },
      steps: { type: 'integer', minimum: bounds('steps').min, maximum: MAX_STEPS },
      guidance_scale: { type: 'number', minimum: bounds('guidanceScale').min, maximum: MAX_GUIDANCE },
      negative_prompt: { type: 'string', maxLength: MAX_PROMPT },
      apply_template: {
        type: 'boolean',
        default: false,
        description: "Wrap the prompt in the chosen adapters' templates and add their negative prompts",
      },
      preview: {
        type: 'boolean',
        default: false,
        description: 'Attach a small PNG of the latent to each progress event',
      },
      job_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Default: a random UUID' },
      model: { type: 'string', description: 'Ignored: the server has one model' },
      user: { type: 'string', description: 'Ignored' },
    },
  };
}

/** components.schemas.GenerationResponse. */
function generationResponseSchema(): Record<string, unknown> {
  return {
    type: 'object',
    required: ['created', 'job_id', 'data', 'seed', 'size', 'steps', 'guidance_scale', 'loras', 'timings'],
    properties: {
      created: { type: 'integer', description: 'Unix seconds' },
      job_id: { type: 'string' },
      data: {
        type: 'array',
        items: {
          type: 'object',
          required: ['b64_json', 'seed'],
          properties: { b64_json: { type: 'string', format: 'byte', description: 'PNG' }, seed: { type: 'integer' } },
        },
      },
      seed: { type: 'integer' },
      size: { type: 'string' },
      steps: { type: 'integer' },
      guidance_scale: { type: 'number' },
      loras: { type: 'object', additionalProperties: { type: 'number' } },
      timings: { $ref: '#/components/schemas/Timings' },
    },
  };
}

/** components.schemas.Timings. */
function timingsSchema(): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      queued_ms: { type: 'number' },
      total_ms: { type: 'number', description: 'From request to response' },
      generate_ms: { type: 'number', description: "GenAI's own measure of the generate call" },
      step_ms_mean: { type: 'number' },
      text_encoders_ms: { type: 'object', additionalProperties: { type: 'number' } },
      vae_decoder_ms: { type: 'number' },
    },
  };
}

/** components.schemas.Lora. */
function loraSchema(): Record<string, unknown> {
  return {
    type: 'object',
    required: ['name', 'alpha', 'template', 'negative_prompt', 'report'],
    properties: {
      name: { type: 'string' },
      alpha: { type: 'number', description: 'The default alpha' },
      template: { type: 'string', nullable: true, description: 'e.g. "xray <subject>"' },
      negative_prompt: { type: 'string', nullable: true },
      report: {
        type: 'object',
        description: 'What multilora found when it matched the file against the model',
        properties: {
          format: { type: 'string' },
          ranks: { type: 'array', items: { type: 'integer' } },
          targets: { type: 'array', items: { type: 'string' } },
          matched: { type: 'integer' },
          unmatched: { type: 'integer' },
          converted: { type: 'boolean' },
        },
      },
    },
  };
}

/** components.schemas.Job. */
function jobSchema(): Record<string, unknown> {
  return {
    type: 'object',
    required: ['job_id', 'state', 'step', 'created'],
    properties: {
      job_id: { type: 'string' },
      state: { type: 'string', enum: ['queued', 'running', 'done', 'error', 'cancelled'] },
      step: { type: 'integer' },
      total: { type: 'integer', nullable: true },
      created: { type: 'integer' },
      aborted_by: { type: 'string', enum: ['cancelled', 'disconnected', 'closing'] },
    },
  };
}

/** components.schemas.Status. */
function statusSchema(): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      model: { type: 'object' },
      defaults: { type: 'object' },
      limits: {
        type: 'object',
        description:
          'size, steps, guidance_scale, n, prompt_chars, max_queue, max_body_bytes, max_header_bytes, headers_timeout_ms, ' +
          'request_timeout_ms, keep_alive_timeout_ms',
      },
      queue: {
        type: 'object',
        properties: { active: { type: 'integer' }, running: { type: 'integer' }, queued: { type: 'integer' } },
      },
      counters: {
        type: 'object',
        properties: {
          accepted: { type: 'integer' },
          completed: { type: 'integer' },
          failed: { type: 'integer' },
          cancelled: { type: 'integer' },
          disconnected: { type: 'integer' },
          rejectedFull: { type: 'integer' },
        },
      },
      backend: {
        type: 'object',
        description:
          'kind "local" (one pipeline in the server), or "redis" (serve --redis): then queue, prefix, waiting and active ' +
          '(the whole queue, any producer), workers [{ id, concurrency, model, adapters }] (the live ones)',
        properties: { kind: { type: 'string', enum: ['local', 'redis'] } },
      },
    },
  };
}

/** components.schemas.Error. */
function errorSchema(): Record<string, unknown> {
  return {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string', example: 'ERR_INVALID_ARGUMENT' }, message: { type: 'string' } },
      },
    },
  };
}

export function openapiDocument(): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: info(),
    paths: {
      '/v1/images/generations': generationsPath(),
      '/v1/loras': lorasPath(),
      '/v1/status': statusPath(),
      '/v1/jobs/{id}': jobPath(),
      '/v1/jobs/{id}/events': eventsPath(),
      '/openapi.json': openapiPath(),
    },
    // Optional: a server without an API key takes requests without one.
    security: [{}, { apiKey: [] }],
    components: {
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'The key given to serve --api-key (or MULTILORA_API_KEY, or startServer({ apiKey })), when one was',
        },
      },
      schemas: {
        GenerationRequest: generationRequestSchema(),
        GenerationResponse: generationResponseSchema(),
        Timings: timingsSchema(),
        Lora: loraSchema(),
        Job: jobSchema(),
        Status: statusSchema(),
        Error: errorSchema(),
      },
    },
  };
}
