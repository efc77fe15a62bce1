/**
 * video-llama's OpenAI-compatible HTTP server: as a standalone server, as a Fastify plugin, or
 * as a Node request handler. docs/server.md describes the routes and the options.
 * @module
 */
export { Engine, type EngineDescription, type EngineOptions } from './engine.js';
export { DEFAULT_LIMITS, type ServerLimits, type ServerOptions } from './options.js';
export { videoLlamaPlugin } from './plugin.js';
export { createRequestHandler, createServer, type StandaloneOptions, type VideoLlamaServer } from './server.js';
