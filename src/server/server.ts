/**
 * The server standalone: a Fastify app on Node's HTTP server with the client-side time limits
 * set, and a graceful shutdown (stop accepting, let requests finish up to a deadline, then stop
 * them). Also the same app as a bare `(request, response)` handler for a plain `http.Server`.
 * @module
 */
import http from 'node:http';

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';

import type { ServerContext } from './context.js';
import { DEFAULT_LIMITS, type ServerOptions } from './options.js';
import { mountVideoLlama } from './plugin.js';

/** Options of {@link createServer}. */
export interface StandaloneOptions extends ServerOptions {
  /** Fastify's logger setting (pino); default: JSON lines at `info` on stdout. */
  logger?: FastifyServerOptions['logger'];
}

/** A standalone server. */
export interface VideoLlamaServer {
  /** The Fastify app (already ready). */
  readonly app: FastifyInstance;
  /** Starts listening; resolves to the address, e.g. `http://127.0.0.1:8080`. */
  listen(port: number, host?: string): Promise<string>;
  /**
   * Stops accepting connections, lets requests in flight finish for up to `deadlineMs`
   * (default 30 000), then stops the rest, and resolves when all are closed. The model stays
   * loaded (dispose it after).
   */
  shutdown(deadlineMs?: number): Promise<void>;
}

/** Builds the app on an `http.Server` created here, with the request-receiving time limit. */
async function build(options: StandaloneOptions): Promise<{ app: FastifyInstance; context: ServerContext }> {
  const bodyTimeoutMs = options.limits?.bodyTimeoutMs ?? DEFAULT_LIMITS.bodyTimeoutMs;
  const app = Fastify({
    logger: options.logger ?? true,
    // A client must send its whole request within bodyTimeoutMs (slow-body clients get 408);
    // Node checks the limit every connectionsCheckingInterval.
    serverFactory: (handler) => http.createServer({
      requestTimeout: bodyTimeoutMs,
      headersTimeout: bodyTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, bodyTimeoutMs),
    }, handler),
  });
  const context = await mountVideoLlama(app, options);
  await app.ready();
  return { app, context };
}

/**
 * Creates the standalone server (not yet listening).
 *
 * @example
 * ```ts
 * const server = await createServer({ engine: Engine.load({ llm: 'llm.gguf', projector: 'proj.gguf' }) });
 * console.log(await server.listen(8080, '127.0.0.1'));
 * process.once('SIGTERM', () => void server.shutdown(30_000));
 * ```
 */
export async function createServer(options: StandaloneOptions): Promise<VideoLlamaServer> {
  const { app, context } = await build(options);
  return {
    app,
    listen: (port, host = '127.0.0.1') => app.listen({ port, host }),
    async shutdown(deadlineMs = 30_000) {
      const deadline = setTimeout(() => context.abortAll(), deadlineMs);
      try {
        await app.close();
      } finally {
        clearTimeout(deadline);
      }
    },
  };
}

/** What {@link createRequestHandler} returns. */
export interface RequestHandler {
  /** The app as a `(request, response)` listener for a Node `http.Server`. */
  handler: http.RequestListener;
  /** Closes the app (Fastify's `close()`: its hooks run and in-flight requests finish). */
  close: () => Promise<void>;
}

/**
 * The server as a Node request handler, to put inside a service's own `http.Server`
 * (`http.createServer(handler)`); `close` ends the app. The host's server sets its own time limits.
 *
 * @example
 * ```ts
 * const { handler } = await createRequestHandler({ engine: Engine.load({ llm: 'llm.gguf' }), logger: false });
 * http.createServer((req, res) => (req.url?.startsWith('/v1/') ? handler(req, res) : myRoutes(req, res))).listen(8080);
 * ```
 */
export async function createRequestHandler(options: StandaloneOptions): Promise<RequestHandler> {
  let captured: http.RequestListener | undefined;
  const app = Fastify({
    logger: options.logger ?? true,
    serverFactory: (handler) => {
      captured = handler as http.RequestListener;
      return http.createServer();
    },
  });
  await mountVideoLlama(app, options);
  await app.ready();
  return { handler: captured!, close: () => app.close() };
}
