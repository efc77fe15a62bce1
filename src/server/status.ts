/**
 * `GET /v1/models`, `GET /health` (ready or loading) and `GET /metrics` (Prometheus text).
 * @module
 */
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from './context.js';

/** Mounts the routes. */
export function statusRoutes(app: FastifyInstance, context: ServerContext): void {
  const started = Math.floor(Date.now() / 1000);

  app.get('/v1/models', async () => {
    const engine = context.readyEngine().describe();
    return {
      object: 'list',
      data: [{
        id: context.modelId, object: 'model', created: started, owned_by: 'video-llama',
        description: engine.description, context_length: engine.contextSize,
        // llama.cpp's server lists its modalities the same way, for clients that check before sending media.
        capabilities: ['completion', ...(engine.vision ? ['vision', 'video'] : []), ...(engine.audio ? ['audio'] : [])],
      }],
    };
  });

  app.get('/health', async (_request, reply) => {
    const status = context.status;
    return reply.code(status === 'ready' ? 200 : 503).send({ status });
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(context.metrics.render(context.gauges())));
}
