/**
 * The projector: Video-LLaMA's video, image and audio encoders (EVA ViT-g + Q-Formers, ImageBind
 * audio + Q-Former) running as ggml graphs on weights from a projector GGUF.
 * @module
 */
import fs from 'node:fs';

import {
  audioTensor, imageTensor, mediaTensors, videoTensor,
  type AudioInput, type AudioInputOptions, type ImageInput, type KindTensor, type MediaDecodeOptions, type MediaRouteOptions,
  type VideoInput, type VideoInputOptions,
} from './encoders/inputs.js';
import { addon } from './bindings/addon.js';
import { withAbortFlag } from './bindings/abort.js';
import { callNativeSync } from './bindings/errors.js';
import type { ProjectorInfo, StageTensor } from './bindings/projector-info.js';
import type { AddonProjector, NativeEncodeOptions } from './bindings/projector.js';
import { invalidArgument, requireFinite, throwIfAborted, VideoLlamaError } from './errors.js';
import type { MediaInput } from './media/input.js';
import { validateMediaInput, validateSignal } from './media/input.js';
import type { MediaEmbedding } from './media-embedding.js';
import type { TensorInput } from './processors/tensor.js';
import { checkGgufHeader } from './gguf/header-check.js';
import { EncodeCache, encodeCacheKey } from './cache/encode-cache.js';
import { fileIdentity, hashMediaInput } from './cache/hashing.js';
import { cacheKeyInput } from './encoders/cache-key.js';
import { clipFlop, type EncodePlan, frameFlop, type Hparams, planMedia, type PlanOptions } from './plan/plan.js';
import { gpuOption, resolveGpu, type GpuOption } from './backends.js';
import { checkThreads } from './compute-options.js';

export type { ProjectorInfo, StageTensor } from './bindings/projector-info.js';


/** Options of {@link Projector.load}; an invalid value throws INVALID_ARGUMENT. */
export interface ProjectorLoadOptions {
  /**
   * CPU threads of the encoders, an integer >= 1; default all hardware threads. More than twice
   * the hardware threads are clamped to that, with a `VIDEO_LLAMA_THREADS_CLAMPED` process warning.
   */
  threads?: number;
  /** Where the encoders run (see {@link GpuOption}); default `$VIDEO_LLAMA_GPU`, else `'auto'`. */
  gpu?: GpuOption;
  /** Cancels the load (checked per tensor): rejects with ABORTED, nothing stays loaded. */
  signal?: AbortSignal;
  /** Called with the fraction of the weights read, 0 to 1; default none. */
  onProgress?: (fraction: number) => void;
  /**
   * Where encodes are looked up before they run and stored after (docs/caching.md); default
   * none. With a cache, every embedding carries the projector file's identity (`projector`).
   */
  cache?: EncodeCache;
  /**
   * Most encodes waiting or running at once (an integer >= 1); default 16. One more is refused
   * at once with BUSY (its `details.queued` says how many wait), so a flood of requests cannot
   * grow an unbounded queue.
   */
  maxQueuedEncodes?: number;
}

export type { TensorInput };

/** Progress of one encode: a stage just finished. */
export interface EncodeProgress {
  /** `"vit"`, `"qformer"`, `"video_qformer"` (vision) or `"imagebind"`, `"audio_qformer"` (audio). */
  stage: string;
  /** Stages finished so far, this one included. */
  completed: number;
  /** Stages of this encode. */
  total: number;
}

/** Options of the encode methods of {@link Projector} (and of {@link VideoLlama}). */
export interface EncodeOptions {
  /** Cancels the encode (between stages and between graph nodes); the promise rejects with ABORTED. */
  signal?: AbortSignal;
  /** Called after each stage, before the promise resolves; default none. */
  onProgress?: (progress: EncodeProgress) => void;
}

/** Options of {@link Projector.encodeVideo}: encoding plus, for a file or frames, decoding. */
export interface VideoEncodeOptions extends EncodeOptions, VideoInputOptions {}

/** Options of {@link Projector.encodeAudio}: encoding plus, for a file or PCM, fbank making. */
export interface AudioEncodeOptions extends EncodeOptions, AudioInputOptions {}

/** Options of {@link Projector.encodeImage}: encoding plus, for a file, decoding. */
export interface ImageEncodeOptions extends EncodeOptions, MediaDecodeOptions {}

/** Options of {@link Projector.encodeMedia}: encoding plus decoding and routing. */
export interface MediaEncodeOptions extends EncodeOptions, MediaRouteOptions {}

/** An embedding with the intermediate tensors of every stage (for parity tests). @internal */
export interface EmbeddingWithStages {
  /** What the public encode method returns. */
  embedding: MediaEmbedding;
  /** vit, qformer, video_qformer_input, video_qformer / audio_imagebind_feature, audio_imagebind, audio_qformer_input, audio_qformer. */
  stages: Record<string, StageTensor>;
}

/** Default of {@link ProjectorLoadOptions.maxQueuedEncodes}. */
const DEFAULT_MAX_QUEUED = 16;

/**
 * Hyper-parameters ggml asserts on rather than reports (a negative or NaN layer-norm epsilon,
 * a Q-Former without layers), checked before the native loader sees them.
 */
function checkHparamRanges(path: string, metadata: ReadonlyMap<string, number>): void {
  for (const [key, value] of metadata) {
    if (!key.startsWith('vl.')) continue;
    const fault = /eps$/.test(key) && !(Number.isFinite(value) && value >= 0) ? 'a finite number >= 0'
      : key.endsWith('.layers') && value < 1 ? 'at least 1' : undefined;
    if (fault) {
      throw new VideoLlamaError('INVALID_MODEL', `The projector file ${path} has ${key} = ${value}, expected ${fault}`, { path, key, found: value });
    }
  }
}

type Kind = MediaEmbedding['kind'];

/** `encodeVideo`, `encodeImage`, `encodeAudio`: for error messages. */
function operationName(kind: Kind): string {
  return `encode${kind[0]!.toUpperCase()}${kind.slice(1)}`;
}

/**
 * Video-LLaMA's encoders: media files, frames, PCM or tensors in, LLM-width
 * {@link MediaEmbedding}s out. One encode runs at a time per projector (calls queue, decoding
 * included, and resolve in call order); weights are loaded once and compute buffers are
 * reused. Load it with {@link Projector.load}, free it with {@link Projector.dispose} (or
 * `await using`). It needs no language model: a service can encode media with it and hand the
 * embeddings to a {@link Chat} elsewhere (see {@link MediaEmbedding}).
 *
 * @example
 * ```ts
 * import { Projector } from 'video-llama';
 *
 * await using projector = await Projector.load('video-llama.gguf');
 * const video = await projector.encodeVideo('clip.mp4');     // 8 frames sampled as the original
 * const audio = await projector.encodeAudio('clip.mp4');     // 8 clips of 2 s
 * console.log(video.tokens, video.dim, video.description);  // e.g. 32 4096 "The video contains 8 frames …"
 * ```
 */
export class Projector implements AsyncDisposable {
  /** Sizes and constants read from the file. */
  readonly info: ProjectorInfo;
  private queue: Promise<unknown> = Promise.resolve();
  /** Encodes waiting or running. */
  private pending = 0;
  private disposed = false;
  /** Aborted by {@link Projector.dispose}: stops the running encode. */
  private readonly closing = new AbortController();
  /** SHA-256 of the projector file, computed at the first encode that needs it. */
  private identity: Promise<string> | undefined;
  /** FLOP/s the last encode reached: calibrates {@link Projector.plan}'s time estimate. */
  private measuredRate: number | undefined;

  private constructor(
    private readonly native: AddonProjector,
    /** Path of the projector GGUF. */
    readonly file: string,
    private readonly limits: { cache: EncodeCache | undefined; maxQueuedEncodes: number },
    private readonly hparams: Hparams,
  ) {
    this.info = Object.freeze(native.info());
  }

  /**
   * Loads a projector GGUF (`video-llama convert`; docs/projector-format.md) without blocking
   * the event loop. Throws INVALID_ARGUMENT for a bad path or options; rejects with
   * FILE_NOT_FOUND, INVALID_MODEL (not a projector, truncated, a corrupt header — the message
   * names the fault and its byte offset — impossible hyper-parameters such as a NaN epsilon, or
   * f32/f16/bf16 weights holding NaN or infinity), MISSING_TENSOR, TENSOR_SHAPE, ABORTED
   * (`options.signal`; what was read is freed), the error `options.onProgress` threw, or NATIVE
   * (the addon failed, e.g. out of memory).
   *
   * @example
   * ```ts
   * import { Projector } from 'video-llama';
   *
   * const projector = await Projector.load('video-llama.gguf', { threads: 4 });
   * console.log(projector.info.backend, projector.info.llmWidth); // e.g. CPU 4096
   * ```
   */
  static async load(path: string, options: ProjectorLoadOptions = {}): Promise<Projector> {
    if (typeof path !== 'string' || path === '') throw invalidArgument('path', 'a non-empty path string', path);
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
    const { gpu, signal, onProgress, cache, maxQueuedEncodes = DEFAULT_MAX_QUEUED } = options;
    const threads = checkThreads(options.threads, 'threads');
    if (cache !== undefined && !(cache instanceof EncodeCache)) throw invalidArgument('cache', 'an EncodeCache', cache);
    if (!Number.isInteger(maxQueuedEncodes) || maxQueuedEncodes < 1) throw invalidArgument('maxQueuedEncodes', 'an integer >= 1', maxQueuedEncodes);
    const gpuChoice = resolveGpu(gpuOption(gpu, 'gpu'));
    validateSignal(signal);
    if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidArgument('onProgress', 'a function', onProgress);
    if (!fs.existsSync(path)) throw new VideoLlamaError('FILE_NOT_FOUND', `projector file '${path}' does not exist`, { path });
    // gguf.h only says "invalid"; this names the fault and its offset.
    const hparams = await checkGgufHeader(path, 'projector');
    checkHparamRanges(path, hparams);
    const native = callNativeSync(() => new (addon().AddonProjector)(path, { threads, gpu: gpuChoice }));
    try {
      await withAbortFlag(`Loading ${path}`, signal, (abort, progress) => native.load({ abort, onProgress: progress }),
        { onProgress, details: { file: path } });
    } catch (error) {
      native.dispose(); // e.g. onProgress threw after the last tensor: nothing stays loaded
      throw error;
    }
    return new Projector(native, path, { cache, maxQueuedEncodes }, hparams);
  }

  /**
   * Encodes a video into `info.videoQueries` rows of `info.llmWidth`. The input is a media file
   * (path or bytes: `options.frames` frames, default 8, are sampled and decoded as the original
   * `load_video` does), decoded RGB frames, or a normalised tensor [T, 3, S, S] (C order) with
   * 1 ≤ T ≤ `info.maxFrames` and S = `info.imageSize`. Decoded frames (`{ rgb, width, height,
   * frames }`) are sampled like a file's and resized bilinearly. From a file, the result's
   * `description` says which moments were sampled.
   *
   * Rejects with INVALID_ARGUMENT (bad input, shape or options, or a projector without the
   * vision branch), FILE_NOT_FOUND, NO_VIDEO_STREAM, MEDIA_DECODE, FFMPEG_NOT_FOUND, ABORTED
   * (`options.signal`), DISPOSED or NATIVE.
   *
   * @example
   * ```ts
   * const video = await projector.encodeVideo('clip.mp4', { frames: 8 });
   * ```
   */
  encodeVideo(input: VideoInput, options: VideoEncodeOptions = {}): Promise<MediaEmbedding> {
    return this.schedule('video', options, (run) => this.cachedOne('video', input, run,
      async (local) => this.encodeTensor(await videoTensor(local, this.info, run), run)));
  }

  /**
   * Encodes one image as a 1-frame video, into `info.videoQueries` rows of `info.llmWidth`. The
   * input is an image file (path or bytes; any format ffmpeg reads, or a video's first frame;
   * turned upright by its rotation metadata as video frames are, then resized bicubically like
   * BLIP-2's image processor), one decoded RGB frame
   * (`{ rgb, width, height, frames: 1 }`), or a normalised tensor [1, 3, S, S] or [3, S, S].
   * Rejects with the errors of {@link Projector.encodeVideo}.
   *
   * @example
   * ```ts
   * const image = await projector.encodeImage('cat.jpg');
   * ```
   */
  encodeImage(input: ImageInput, options: ImageEncodeOptions = {}): Promise<MediaEmbedding> {
    return this.schedule('image', options, (run) => this.cachedOne('image', input, run,
      async (local) => this.encodeTensor(await imageTensor(local, this.info, run), run)));
  }

  /**
   * Encodes audio into `info.audioQueries` rows of `info.llmWidth`. The input is a media file
   * with an audio track (path or bytes: `options.clips` 2-second clips, default 8, as ImageBind
   * places them), 16 kHz mono PCM, or a normalised fbank tensor [M, 1, melBins, targetFrames]
   * with 1 ≤ M ≤ `info.maxClips`. PCM at another rate takes `options.sampleRate`; of a file with
   * several audio streams, `options.audioStream` picks one (default the first).
   *
   * Rejects with INVALID_ARGUMENT (bad input, shape or options, or a projector without the
   * audio branch), FILE_NOT_FOUND, NO_AUDIO_STREAM (a file without sound), MEDIA_DECODE,
   * FFMPEG_NOT_FOUND, ABORTED (`options.signal`), DISPOSED or NATIVE.
   *
   * @example
   * ```ts
   * const audio = await projector.encodeAudio('speech.wav', { clips: 4 });
   * ```
   */
  encodeAudio(input: AudioInput, options: AudioEncodeOptions = {}): Promise<MediaEmbedding> {
    return this.schedule('audio', options, (run) => this.cachedOne('audio', input, run,
      async (local) => this.encodeTensor(await audioTensor(local, this.info, run), run)));
  }

  /**
   * Encodes a media file by what it is, probing it once (see {@link probe}) and writing bytes to
   * disk at most once: a video with sound (and a projector with an audio branch) →
   * `[audio, video]`, in the order the original's audio-visual prompt uses them; a silent video
   * → `[video]` (the original demo's fallback to vision only); an audio file (mp3, wav, flac,
   * ogg, also with cover art) → `[audio]`; a still image (png, jpg, webp, bmp, tiff, any
   * one-frame file) → `[image]`. An animated gif is a video. Pass them as one message's
   * `media`: the chat wraps them in the original's wording (docs/chat.md). Rejects with the
   * errors of the other encode methods, and NO_VIDEO_STREAM for a file with nothing to encode.
   *
   * @example
   * ```ts
   * const media = await projector.encodeMedia('clip.mp4');
   * await chat.send({ text: 'What is going on?', media });
   * ```
   */
  encodeMedia(input: MediaInput, options: MediaEncodeOptions = {}): Promise<MediaEmbedding[]> {
    try {
      validateMediaInput(input);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.schedule(undefined, options, (run) => this.cached('media', input, run, async (local) => {
      const embeddings: MediaEmbedding[] = [];
      for (const tensor of await mediaTensors(local as MediaInput, this.info, run)) embeddings.push(await this.encodeTensor(tensor, run));
      return embeddings;
    }));
  }

  /**
   * What {@link Projector.encodeMedia} would do with a media file, from a probe alone (no pixel
   * or sample is decoded, nothing is queued): its kind, the frames and audio it would take, the
   * LLM positions, the encoder FLOP and (after a first encode) an estimate of the time, and,
   * with `options.contextSize`, whether the conversation fits. The limits in `options` are
   * checked here: a file over one rejects with LIMIT_EXCEEDED (`details.limit` names it).
   * Otherwise rejects with the errors of {@link probe}, INVALID_ARGUMENT or DISPOSED.
   *
   * @example
   * ```ts
   * const plan = await projector.plan(upload, { maxDurationSeconds: 600, contextSize: 4096, promptPositions: 120 });
   * if (!plan.context!.fits) throw new Error(`needs ${plan.context!.positions} positions`);
   * ```
   */
  async plan(input: MediaInput, options: PlanOptions = {}): Promise<EncodePlan> {
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'the projector was disposed');
    return planMedia({ info: this.info, hparams: this.hparams, measuredRate: this.measuredRate }, input, options);
  }

  /** Like the encode methods, also returning every stage's intermediate tensor. @internal */
  encodeWithStages(kind: Kind, input: TensorInput, options: EncodeOptions = {}): Promise<EmbeddingWithStages> {
    return this.schedule(kind, options, (run) => this.run(kind, input, run, true));
  }

  /** Bytes of the compute buffers, once pending encodes have finished (they grow to the largest input seen). @internal */
  async computeBytes(): Promise<number> {
    await this.queue.catch(() => undefined);
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'the projector was disposed');
    return this.native.computeBytes();
  }

  /**
   * Stops the running encode (it rejects with ABORTED, decoding included), rejects the queued
   * ones with DISPOSED and frees the weights and buffers once the running one has stopped;
   * later calls throw DISPOSED. Idempotent.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.closing.abort(new VideoLlamaError('DISPOSED', 'the projector was disposed'));
    await this.queue.catch(() => undefined);
    this.native.dispose();
  }

  /** `await using projector = await Projector.load(...)` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /**
   * Runs `work` after the encodes queued before it (one at a time: decoding included, so results
   * come back in call order), with `options` whose signal also fires on {@link Projector.dispose}.
   * Checks what can be checked at once, so a disposed projector, a missing branch (of `kind`,
   * when known before decoding), bad options or an aborted signal reject without waiting.
   */
  private schedule<O extends EncodeOptions, T>(kind: Kind | undefined, options: O, work: (options: O) => Promise<T>): Promise<T> {
    try {
      if (this.disposed) throw new VideoLlamaError('DISPOSED', 'the projector was disposed');
      if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
      validateSignal(options.signal);
      if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
        throw invalidArgument('options.onProgress', 'a function', options.onProgress);
      }
      if (kind) this.expectedShape(kind);
      throwIfAborted(options.signal, kind ? operationName(kind) : 'encodeMedia');
      if (this.pending >= this.limits.maxQueuedEncodes) {
        throw new VideoLlamaError('BUSY', `${this.pending} encodes are already queued on this projector (maxQueuedEncodes = ${this.limits.maxQueuedEncodes})`,
          { queued: this.pending, maxQueuedEncodes: this.limits.maxQueuedEncodes });
      }
    } catch (error) {
      return Promise.reject(error);
    }
    this.pending += 1;
    const signal = options.signal ? AbortSignal.any([options.signal, this.closing.signal]) : this.closing.signal;
    const run = this.queue.catch(() => undefined).then(() => {
      if (this.disposed) throw new VideoLlamaError('DISPOSED', 'the projector was disposed');
      return work({ ...options, signal });
    }).finally(() => { this.pending -= 1; });
    this.queue = run;
    return run;
  }

  /** {@link Projector.cached} for an encode of one embedding. */
  private async cachedOne<I>(operation: Kind, input: I, options: MediaRouteOptions, compute: (local: I) => Promise<MediaEmbedding>): Promise<MediaEmbedding> {
    const [embedding] = await this.cached(operation, input, options, async (local) => [await compute(local as I)]);
    return embedding!;
  }

  /**
   * Runs `compute` (the caller holds the queue) unless the cache holds its result: the key is the
   * projector's identity, the operation, the input's content and the options that change the
   * result, defaults resolved. A stream or URL input is read once, here, and handed on as bytes.
   */
  private async cached(operation: Kind | 'media', input: unknown, options: MediaRouteOptions,
    compute: (local: unknown) => Promise<MediaEmbedding[]>): Promise<MediaEmbedding[]> {
    const cache = this.limits.cache;
    if (!cache) return compute(input);
    const keyInput = await cacheKeyInput(operation, input, this.info, options);
    if (!keyInput) return compute(input);
    this.identity ??= fileIdentity(this.file);
    const projector = await this.identity;
    const key = encodeCacheKey({ projector, operation, input: await hashMediaInput(keyInput.bytes, keyInput.shape), options: keyInput.options });
    const media = await cache.getOrCompute(key, async () => (await compute(keyInput.local)).map((e) => ({ ...e, projector })));
    return media;
  }

  /** Encodes a prepared tensor now (the caller holds the queue), with a video's description. */
  private async encodeTensor({ kind, input, description }: KindTensor, options: EncodeOptions): Promise<MediaEmbedding> {
    const started = performance.now();
    const { embedding } = await this.run(kind, input, options, false);
    const units = kind === 'image' ? 1 : input.shape[0]!;
    const flop = units * (kind === 'audio' ? clipFlop(this.hparams) : frameFlop(this.hparams));
    this.measuredRate = flop / Math.max(1e-6, (performance.now() - started) / 1000);
    return description === undefined ? embedding : { ...embedding, description };
  }

  /** Encodes a tensor input now (the caller holds the queue). */
  private async run(kind: Kind, input: TensorInput, options: EncodeOptions, stages: boolean): Promise<EmbeddingWithStages> {
    const shape = this.validateInput(kind, input);
    const onProgress = options.onProgress;
    return withAbortFlag(operationName(kind), options.signal, async (abort, progress) => {
      const native: NativeEncodeOptions = { stages, abort, onProgress: progress };
      const result = kind === 'audio'
        ? await this.native.encodeAudio(input.tensor, shape, native)
        : await this.native.encodeVideo(input.tensor, shape, native);
      return { embedding: { kind, tokens: result.tokens, dim: result.dim, data: result.data }, stages: result.stages ?? {} };
    }, { onProgress: onProgress && ((stage: string, completed: number, total: number) => onProgress({ stage, completed, total })) });
  }

  /** Checks the input against the file's sizes; returns the shape the native side gets. */
  private validateInput(kind: Kind, input: TensorInput): number[] {
    if (typeof input !== 'object' || input === null) throw invalidArgument(kind, 'an object { tensor, shape }', input);
    if (!(input.tensor instanceof Float32Array)) throw invalidArgument(`${kind}.tensor`, 'a Float32Array', input.tensor);
    if (!Array.isArray(input.shape) || !input.shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw invalidArgument(`${kind}.shape`, 'an array of positive integers', input.shape);
    }
    // An image is a 1-frame video; its leading 1 may be left out.
    const shape = kind === 'image' && input.shape.length === 3 ? [1, ...input.shape] : [...input.shape];
    const { rest, maxFirst, text } = this.expectedShape(kind);
    const matches = shape.length === rest.length + 1 && shape[0]! <= maxFirst && rest.every((d, i) => shape[i + 1] === d);
    if (!matches) throw invalidArgument(`${kind}.shape`, text, input.shape);
    const elements = shape.reduce((a, b) => a * b, 1);
    if (input.tensor.length !== elements) {
      throw invalidArgument(`${kind}.tensor`, `a Float32Array of ${elements} elements (shape [${input.shape.join(', ')}])`,
        input.tensor);
    }
    requireFinite(input.tensor, `${kind}.tensor`);
    return shape;
  }

  /** The accepted shape: [1..maxFirst, ...rest]. */
  private expectedShape(kind: Kind): { rest: number[]; maxFirst: number; text: string } {
    const info = this.info;
    if (kind === 'audio') {
      if (!info.hasAudio) throw new VideoLlamaError('INVALID_ARGUMENT', 'this projector has no audio branch');
      return { rest: [1, info.melBins, info.targetFrames], maxFirst: info.maxClips,
        text: `a shape [M, 1, ${info.melBins}, ${info.targetFrames}] with 1 ≤ M ≤ ${info.maxClips}` };
    }
    if (!info.hasVision) throw new VideoLlamaError('INVALID_ARGUMENT', 'this projector has no vision branch');
    const s = info.imageSize;
    return kind === 'image'
      ? { rest: [3, s, s], maxFirst: 1, text: `a shape [3, ${s}, ${s}] or [1, 3, ${s}, ${s}]` }
      : { rest: [3, s, s], maxFirst: info.maxFrames, text: `a shape [T, 3, ${s}, ${s}] with 1 ≤ T ≤ ${info.maxFrames}` };
  }
}
