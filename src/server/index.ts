/**
 * video-llama's OpenAI-compatible HTTP server: as a standalone server, as a Fastify plugin, or
 * as a Node request handler. docs/server.md describes the routes and the options.
 * @module
 */
export {
  Engine, type EncodedMedia, type EncodeKind, type EngineCacheStats, type EngineDescription, type EngineMessage, type EngineOptions, type MediaFacts,
  type ReplyRequest, type ReplyResult, type Sampling,
} from './engine.js';
export { DEFAULT_LIMITS, type ServerLimits, type ServerOptions } from './options.js';
export { videoLlamaPlugin } from './plugin.js';
export { createRequestHandler, createServer, type RequestHandler, type StandaloneOptions, type VideoLlamaServer } from './server.js';
