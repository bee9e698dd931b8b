// GET /v1/status: the model, its defaults, every limit a request meets, the queue and the counters.
import type { FastifyInstance } from 'fastify';

import { MAX_GUIDANCE, MAX_HEADER_BYTES, MAX_IMAGES, MAX_PROMPT, MAX_STEPS } from '../limits';
import { current, type ServerContext } from './context';

export function registerStatus(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/status', async () => {
    const { info, sizes } = await current(ctx);
    const { limits, jobs } = ctx;
    const active = jobs.active;
    return {
      model: {
        class: info.model.pipelineClass,
        family: info.model.family,
        vae_scale_factor: info.model.vaeScaleFactor,
        name: info.model.name,
      },
      defaults: {
        width: sizes.defaultWidth,
        height: sizes.defaultHeight,
        steps: info.defaults.steps,
        guidance_scale: info.defaults.guidanceScale,
      },
      limits: {
        size: { min: sizes.min, max: sizes.max, step: sizes.step, multiple_of: sizes.multipleOf },
        steps: { min: 1, max: MAX_STEPS },
        guidance_scale: { min: 0, max: MAX_GUIDANCE },
        n: { min: 1, max: MAX_IMAGES },
        prompt_chars: MAX_PROMPT,
        max_queue: limits.maxQueue,
        max_body_bytes: limits.maxBodyBytes,
        max_header_bytes: MAX_HEADER_BYTES,
        headers_timeout_ms: limits.headersTimeoutMs,
        request_timeout_ms: limits.requestTimeoutMs,
        keep_alive_timeout_ms: limits.keepAliveTimeoutMs,
      },
      queue: {
        active: active.length,
        running: active.filter((j) => j.state === 'running').length,
        queued: active.filter((j) => j.state === 'queued').length,
      },
      counters: { ...jobs.counters },
      backend: await ctx.backend.status(),
    };
  });
}
