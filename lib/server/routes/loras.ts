// GET /v1/loras: the adapters a request may name, with their alphas, templates and what multilora matched of them.
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from './context';

export function registerLoras(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/loras', async () => ({
    object: 'list',
    data: (await ctx.backend.info()).adapters.map((a) => ({
      name: a.name,
      alpha: a.alpha,
      template: a.template ?? null,
      negative_prompt: a.negativePrompt ?? null,
      report: a.report,
    })),
  }));
}
