// GET /openapi.json: the API's description (../openapi.ts), the same as docs/openapi.json.
import type { FastifyInstance } from 'fastify';

import { openapiDocument } from '../openapi';

export function registerOpenapi(app: FastifyInstance): void {
  app.get('/openapi.json', async () => openapiDocument());
}
