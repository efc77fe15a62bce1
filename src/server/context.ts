/**
 * What the routes share: the engine (once loaded, with its encode cache), the queues, the media
 * resolver, the upload store, the metrics, and the per-request abort signal (client gone, or
 * the time limit).
 * @module
 */
import type { FastifyReply } from 'fastify';

import { ApiError } from './api-error.js';
import { isLibraryError, type Engine } from './engine.js';
import { MediaResolver } from './media.js';
import { Metrics, type MetricGauges } from './metrics.js';
import { DEFAULT_LIMITS, type ServerLimits, type ServerOptions } from './options.js';
import { RequestQueue } from './request-queue.js';
import { UploadStore } from './uploads.js';

/** Seconds a client refused for a full queue, or during loading, is told to wait. */
const RETRY_AFTER_SECONDS = 2;

/** The server's shared state. */
export class ServerContext {
  readonly limits: ServerLimits;
  readonly modelId: string;
  readonly metrics = new Metrics();
  readonly uploads: UploadStore;
  readonly media: MediaResolver;
  /** Chat replies: `limits.concurrency` at a time. */
  readonly chats: RequestQueue;
  /** Encodes asked for alone (the page's progress bar); the projector encodes one file at a time. */
  readonly encodes: RequestQueue;
  private engine: Engine | undefined;
  private loadError: unknown;
  /** Controllers of the requests in flight, to stop them at a shutdown deadline. */
  private readonly inFlight = new Set<AbortController>();

  constructor(options: ServerOptions, uploadDir: string) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.modelId = options.modelId ?? 'video-llama';
    this.uploads = new UploadStore(uploadDir);
    this.media = new MediaResolver({
      limits: this.limits, uploads: this.uploads, mediaRoot: options.mediaRoot, allowRemoteMedia: options.allowRemoteMedia ?? false,
    });
    this.chats = new RequestQueue(this.limits.concurrency, this.limits.queueLength, RETRY_AFTER_SECONDS);
    this.encodes = new RequestQueue(1, this.limits.queueLength, RETRY_AFTER_SECONDS);
    Promise.resolve(options.engine).then((engine) => { this.engine = engine; }, (error: unknown) => { this.loadError = error; });
  }

  /** `ready`, `loading`, or `failed` (the model could not be loaded). */
  get status(): 'ready' | 'loading' | 'failed' {
    return this.engine ? 'ready' : this.loadError ? 'failed' : 'loading';
  }

  /** Why loading failed, when it did. */
  get failure(): unknown {
    return this.loadError;
  }

  /** The loaded engine; a 503 with Retry-After while it loads. */
  readyEngine(): Engine {
    if (this.engine) return this.engine;
    if (this.loadError) throw new ApiError(503, 'the model could not be loaded', 'model_unavailable');
    throw new ApiError(503, 'the model is loading; retry shortly', 'model_loading', null, RETRY_AFTER_SECONDS);
  }

  /**
   * A signal that aborts when the client goes away before the reply is complete, when the
   * request exceeds `limits.requestTimeoutMs`, or at a shutdown deadline.
   */
  requestSignal(reply: FastifyReply): AbortSignal {
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(new ApiError(504, 'the request took longer than this server allows', 'request_timeout')),
      this.limits.requestTimeoutMs);
    reply.raw.once('close', () => {
      clearTimeout(timer);
      this.inFlight.delete(controller);
      if (!reply.raw.writableFinished) controller.abort(new ApiError(499, 'the client closed the request', 'client_closed'));
    });
    return controller.signal;
  }

  /**
   * Runs library work under `signal`: when the library stops it as ABORTED, the rejection is
   * the signal's reason instead (the client left, a time limit, a shutdown), with its status.
   */
  async abortReason<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isLibraryError(error, 'ABORTED') && signal.reason instanceof ApiError) throw signal.reason;
      throw error;
    }
  }

  /** Stops every request in flight (a shutdown deadline passed). */
  abortAll(): void {
    for (const controller of this.inFlight) controller.abort(new ApiError(503, 'the server is shutting down', 'shutting_down'));
  }

  /** The engine's running and waiting work and its encode cache, for `/metrics`. */
  gauges(): MetricGauges {
    return {
      queueLength: this.chats.waiting + this.encodes.waiting,
      running: this.chats.running + this.encodes.running,
      cache: this.engine?.cacheStats(),
    };
  }
}
