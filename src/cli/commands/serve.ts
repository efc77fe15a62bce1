/**
 * `video-llama serve`: the OpenAI-compatible HTTP server with its web page. Listens at once
 * (`/health` says `loading`), loads the model, and on SIGTERM or SIGINT stops accepting, lets
 * requests in flight finish up to the shutdown deadline, and exits 0.
 * @internal
 * @module
 */
import type { EncodeCacheOptions } from '../../cache/encode-cache.js';
import { Engine } from '../../server/engine.js';
import { createServer } from '../../server/server.js';
import type { ServerLimits } from '../../server/options.js';
import { requireString, type Command, type ParsedArgs } from '../command.js';
import { MODEL_OPTIONS, modelOptions, optionalNumber, optionalString } from '../options.js';

const MIB = 1024 * 1024;

/** The limit options: flag → how it becomes a {@link ServerLimits} field. */
const LIMIT_OPTIONS: Record<string, { field: keyof ServerLimits; scale: number; description: string }> = {
  concurrency: { field: 'concurrency', scale: 1, description: 'Replies generated at once (default 1)' },
  'queue-length': { field: 'queueLength', scale: 1, description: 'Requests that may wait; more get 429 (default 64)' },
  'request-timeout': { field: 'requestTimeoutMs', scale: 1000, description: 'Seconds one request may take (default 300)' },
  'body-timeout': { field: 'bodyTimeoutMs', scale: 1000, description: 'Seconds a client may take to send its request (default 30)' },
  'max-body-mb': { field: 'bodyBytes', scale: MIB, description: 'Largest JSON body in MiB (default 64)' },
  'max-upload-mb': { field: 'uploadBytes', scale: MIB, description: 'Largest upload in MiB (default 1024)' },
  'max-media-seconds': { field: 'mediaSeconds', scale: 1, description: 'Longest media file in seconds (default 600)' },
  'max-media-pixels': { field: 'mediaPixels', scale: 1, description: 'Most pixels per frame (default 16777216 = 4096x4096)' },
  'max-remote-mb': { field: 'remoteBytes', scale: MIB, description: 'Largest remote media file in MiB, with --allow-remote-media (default 64)' },
  'remote-timeout': { field: 'remoteTimeoutMs', scale: 1000, description: 'Seconds fetching one remote media file may take (default 15)' },
};

/** The encode cache's options (the library's EncodeCache): where and how much. */
function encodeCache(args: ParsedArgs): EncodeCacheOptions {
  const mib = (flag: string): number | undefined => {
    const value = optionalNumber(args, flag, { min: 0 });
    return value === undefined ? undefined : Math.round(value * MIB);
  };
  return { cacheDir: optionalString(args, 'cache-dir'), memoryBytes: mib('cache-memory-mb'), diskBytes: mib('cache-disk-mb') };
}

function limits(args: ParsedArgs): Partial<ServerLimits> {
  const result: Partial<ServerLimits> = {};
  for (const [flag, { field, scale }] of Object.entries(LIMIT_OPTIONS)) {
    const value = optionalNumber(args, flag, { integer: scale === 1, min: 1 });
    if (value !== undefined) result[field] = Math.round(value * scale);
  }
  return result;
}

/** Resolves when one of the signals arrives. */
function nextSignal(...signals: NodeJS.Signals[]): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handlers = signals.map((name) => {
      const handler = (): void => {
        signals.forEach((other, i) => process.off(other, handlers[i]!));
        resolve(name);
      };
      process.on(name, handler);
      return handler;
    });
  });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Serve the model over an OpenAI-compatible HTTP API, with a web page at /',
  options: {
    llm: { type: 'string', value: '<model.gguf>', description: 'Language model GGUF (required)' },
    projector: { type: 'string', value: '<projector.gguf>', description: 'Projector GGUF for images, video and audio (default: text only)' },
    host: { type: 'string', value: '<address>', description: 'Address to listen on (default 127.0.0.1)' },
    port: { type: 'string', value: '<n>', description: 'Port to listen on (default 8080; 0 picks a free one)' },
    'model-id': { type: 'string', value: '<id>', description: 'Model id in /v1/models and replies (default video-llama)' },
    'upload-dir': { type: 'string', value: '<dir>', description: 'Where uploads are kept (default: a temporary folder, removed on exit)' },
    'media-root': { type: 'string', value: '<dir>', description: 'Folder whose files messages may name as file:// URLs (default: none)' },
    'allow-remote-media': { type: 'boolean', description: 'Fetch http(s) media URLs in messages (default: refused)' },
    'cache-dir': { type: 'string', value: '<dir>', description: 'On-disk encode cache, shared by the servers that name it (default: memory only)' },
    'cache-memory-mb': { type: 'string', value: '<n>', description: 'MiB of embeddings the encode cache keeps in memory (default 256)' },
    'cache-disk-mb': { type: 'string', value: '<n>', description: 'MiB the on-disk encode cache may take, with --cache-dir (default 4096)' },
    'shutdown-timeout': { type: 'string', value: '<s>', description: 'Seconds requests may finish after SIGTERM (default 30)' },
    ...Object.fromEntries(Object.entries(LIMIT_OPTIONS).map(([flag, { description }]) => [flag, { type: 'string' as const, value: '<n>', description }])),
    ...MODEL_OPTIONS,
  },
  async run(args) {
    const llm = requireString(args, 'llm');
    const port = optionalNumber(args, 'port', { integer: true }) ?? 8080;
    const shutdownMs = (optionalNumber(args, 'shutdown-timeout') ?? 30) * 1000;
    const serverLimits = limits(args);
    const engine = Engine.load({
      llm, projector: optionalString(args, 'projector'), ...modelOptions(args), sequences: serverLimits.concurrency, encodeCache: encodeCache(args),
    });
    const server = await createServer({
      engine,
      modelId: optionalString(args, 'model-id'),
      limits: serverLimits,
      uploadDir: optionalString(args, 'upload-dir'),
      mediaRoot: optionalString(args, 'media-root'),
      allowRemoteMedia: args.values['allow-remote-media'] === true,
    });
    const stop = nextSignal('SIGTERM', 'SIGINT');
    await server.listen(port, optionalString(args, 'host'));
    // A model that cannot be loaded ends the command with its error; the signal ends it cleanly.
    const outcome = await Promise.race([stop, engine.then(() => stop)]).catch(async (error: unknown) => {
      await server.shutdown(0);
      throw error;
    });
    server.app.log.info(`${outcome}: closing (requests in flight have ${shutdownMs / 1000} s)`);
    await server.shutdown(shutdownMs);
    await (await engine).dispose();
  },
};
