/**
 * The server's options and their safe defaults.
 * @module
 */
import type { Engine } from './engine.js';

/** Limits on what one request may cost; every one has a safe default. */
export interface ServerLimits {
  /** Largest JSON request body in bytes (inline base64 media count here); default 64 MiB. */
  bodyBytes: number;
  /** Largest uploaded file in bytes; default 1 GiB. */
  uploadBytes: number;
  /** Longest media file in seconds; default 600. */
  mediaSeconds: number;
  /** Most pixels of one video frame or image (width × height); default 4096 × 4096. */
  mediaPixels: number;
  /** Replies generated at once; default 1 (the library runs one chat turn at a time per model). */
  concurrency: number;
  /** Requests that may wait for the model; one more gets 429; default 64. */
  queueLength: number;
  /** Longest time one request may take, queueing included, in ms; default 300 000. */
  requestTimeoutMs: number;
  /** Longest time a client may take to send its whole request, in ms; default 30 000 (standalone server only). */
  bodyTimeoutMs: number;
  /** Largest remote media file in bytes (when remote URLs are allowed); default 64 MiB. */
  remoteBytes: number;
  /** Longest time fetching one remote media file may take, in ms; default 15 000. */
  remoteTimeoutMs: number;
}

/** Defaults of {@link ServerLimits}. */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  bodyBytes: 64 * 1024 * 1024,
  uploadBytes: 1024 * 1024 * 1024,
  mediaSeconds: 600,
  mediaPixels: 4096 * 4096,
  concurrency: 1,
  queueLength: 64,
  requestTimeoutMs: 300_000,
  bodyTimeoutMs: 30_000,
  remoteBytes: 64 * 1024 * 1024,
  remoteTimeoutMs: 15_000,
});

/** Options of {@link videoLlamaPlugin} and {@link createServer}. */
export interface ServerOptions {
  /** The model, or its loading: until it resolves, `/health` says `loading` and model routes answer 503. */
  engine: Engine | Promise<Engine>;
  /** The model id `/v1/models` lists and replies carry; default `video-llama`. */
  modelId?: string;
  /** Overrides of {@link DEFAULT_LIMITS}. */
  limits?: Partial<ServerLimits>;
  /** Where uploads are kept (content-addressed); default a fresh temporary folder removed on close. */
  uploadDir?: string;
  /** A folder whose files messages may name as `file://` URLs; default none (client paths are never read). */
  mediaRoot?: string;
  /** Let messages name `http(s)://` media, fetched within {@link ServerLimits.remoteBytes} / `remoteTimeoutMs`; default false. */
  allowRemoteMedia?: boolean;
  /** Folder of the built web page (`npm run build:web`); default the packaged one; `false` serves no page. */
  webRoot?: string | false;
}
