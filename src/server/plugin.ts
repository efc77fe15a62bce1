/**
 * The server as a Fastify plugin: every route, strict request validation, OpenAI-shaped
 * errors, and per-route request counting. {@link videoLlamaPlugin} mounts it on a host's
 * Fastify instance; `createServer` (server.ts) runs it standalone.
 * @module
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';

import { ApiError, loggedApiError } from './api-error.js';
import { chatCompletionsRoute } from './chat-completions.js';
import { ServerContext } from './context.js';
import { filesRoutes } from './files.js';
import type { ServerOptions } from './options.js';
import { PACKAGED_WEB_ROOT, pageRoutes } from './page.js';
import { statusRoutes } from './status.js';

/**
 * Validation as OpenAI does it: an unknown field is an error, not silently dropped (Fastify's
 * default removes it), and no type coercion (`"max_tokens": "5"` is a 400).
 */
const ajv = new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, strict: false });

/** Mounts the routes on `app` and returns the state they share. @internal */
export async function mountVideoLlama(app: FastifyInstance, options: ServerOptions): Promise<ServerContext> {
  const ownDir = options.uploadDir === undefined;
  const uploadDir = options.uploadDir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'video-llama-uploads-'));
  const context = new ServerContext(options, uploadDir);
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  // JSON only (uploads: multipart); Fastify would otherwise take text/plain bodies as strings.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((error, request, reply) => {
    const apiError = loggedApiError(request.log, error);
    if (apiError.retryAfter !== undefined) void reply.header('retry-after', String(apiError.retryAfter));
    return reply.code(apiError.status).send(apiError.body());
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 100)}`, 'not_found').body()));
  app.addHook('onRequest', async (request, reply) => {
    // Counted when the connection is done with the response: 499 when the client left first.
    reply.raw.once('close', () => context.metrics.countRequest(request.routeOptions.url ?? 'unmatched', reply.raw.writableFinished ? reply.statusCode : 499));
  });
  statusRoutes(app, context);
  chatCompletionsRoute(app, context);
  await filesRoutes(app, context);
  if (options.webRoot !== false) await pageRoutes(app, options.webRoot ?? PACKAGED_WEB_ROOT);
  if (ownDir) app.addHook('onClose', async () => fs.rm(uploadDir, { recursive: true, force: true }));
  return context;
}

/**
 * The whole server as a Fastify plugin, to mount inside a Node service's own Fastify app (with
 * a `prefix` if wanted). The host owns listening, timeouts and closing; the model is the
 * caller's to dispose.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { Engine, videoLlamaPlugin } from 'video-llama/server';
 *
 * const app = Fastify({ logger: true });
 * await app.register(videoLlamaPlugin, { prefix: '/llm', engine: Engine.load({ llm: 'llm.gguf', projector: 'proj.gguf' }) });
 * await app.listen({ port: 8080 });
 * ```
 */
export async function videoLlamaPlugin(app: FastifyInstance, options: ServerOptions): Promise<void> {
  await mountVideoLlama(app, options);
}
