/**
 * The projector: Video-LLaMA's video, image and audio encoders (EVA ViT-g + Q-Formers, ImageBind
 * audio + Q-Former) running as ggml graphs on weights from a projector GGUF.
 * @module
 */
import fs from 'node:fs';

import { abortedError, invalidArgument, throwIfAborted, VideoLlamaError, type VideoLlamaErrorCode } from './errors.js';
import type { MediaEmbedding } from './media-embedding.js';
import { loadAddon } from './native.js';

/** Sizes and constants of a projector file, for preparing its inputs. */
export interface ProjectorInfo {
  /** Width of the produced embeddings (the LLM's hidden size). */
  readonly llmWidth: number;
  /** `general.file_type`: 0 f32, 1 f16, 7 q8_0, 32 bf16. */
  readonly fileType: number;
  /** Whether the file holds the vision branch (video and image encoders). */
  readonly hasVision: boolean;
  /** Whether the file holds the audio branch. */
  readonly hasAudio: boolean;
  /** Side of the square frames the vision encoder takes (0 without vision). */
  readonly imageSize: number;
  /** Embedding rows of a video or image. */
  readonly videoQueries: number;
  /** Most frames a video may have (rows of the frame position embedding). */
  readonly maxFrames: number;
  /** Per-channel RGB normalisation: `(x / 255 - mean) / std`. */
  readonly imageMean: readonly [number, number, number];
  /** See {@link ProjectorInfo.imageMean}. */
  readonly imageStd: readonly [number, number, number];
  /** Embedding rows of an audio track. */
  readonly audioQueries: number;
  /** Most audio clips (rows of the audio position embedding). */
  readonly maxClips: number;
  /** Sample rate (Hz) the fbanks are computed at. */
  readonly sampleRate: number;
  /** Mel bins of an fbank (its second-to-last dimension). */
  readonly melBins: number;
  /** Frames of an fbank (its last dimension; shorter clips are padded). */
  readonly targetFrames: number;
  /** Length of one audio clip in seconds. */
  readonly clipSeconds: number;
  /** fbank normalisation: `(fbank - fbankMean) / fbankStd`. */
  readonly fbankMean: number;
  /** See {@link ProjectorInfo.fbankMean}. */
  readonly fbankStd: number;
  /** The ggml backend the encoders run on, e.g. `"CPU"`. */
  readonly backend: string;
  /**
   * Linear layers running on the library's own bf16 kernel rather than ggml's (bf16 weights on a
   * CPU with AVX-512 BF16; 0 otherwise, or when `VIDEO_LLAMA_KERNELS=ggml`).
   */
  readonly ownKernelLayers: number;
  /** Bytes of the loaded weights. */
  readonly weightBytes: number;
}

/** Options of {@link Projector.load}. */
export interface ProjectorLoadOptions {
  /** CPU threads; default: all hardware threads. */
  threads?: number;
  /** Use the best backend available (a GPU if there is one); default `true`. `false` forces the CPU. */
  gpu?: boolean;
}

/**
 * A preprocessed input: a float tensor in C order with its shape. The tensor is read in place
 * while the encode runs: do not modify it until the promise settles.
 */
export interface TensorInput {
  /** The values, C order (last dimension contiguous). */
  tensor: Float32Array;
  /** Its dimensions, outermost first (PyTorch order). */
  shape: readonly number[];
}

/** Progress of one encode: a stage just finished. */
export interface EncodeProgress {
  /** `"vit"`, `"qformer"`, `"video_qformer"` (vision) or `"imagebind"`, `"audio_qformer"` (audio). */
  stage: string;
  /** Stages finished so far and in total. */
  completed: number;
  total: number;
}

/** Options of the encode methods. */
export interface EncodeOptions {
  /** Cancels the encode (between stages and between graph nodes); the promise rejects with ABORTED. */
  signal?: AbortSignal;
  /** Called after each stage, before the promise resolves. */
  onProgress?: (progress: EncodeProgress) => void;
}

/** A named intermediate tensor (C order). @internal */
export interface StageTensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** Values, C order. */
  data: Float32Array;
}

/** An embedding with the intermediate tensors of every stage (for parity tests). @internal */
export interface EmbeddingWithStages {
  /** What the public encode method returns. */
  embedding: MediaEmbedding;
  /** vit, qformer, video_qformer_input, video_qformer / audio_imagebind_feature, audio_imagebind, audio_qformer_input, audio_qformer. */
  stages: Record<string, StageTensor>;
}

interface NativeEncodeOptions {
  stages?: boolean;
  abort?: NativeAbortFlag;
  onProgress?: (stage: string, completed: number, total: number) => void;
}

interface NativeEncodeResult {
  tokens: number;
  dim: number;
  data: Float32Array;
  stages?: Record<string, StageTensor>;
}

interface NativeProjector {
  load(): Promise<void>;
  info(): ProjectorInfo;
  encodeVideo(tensor: Float32Array, shape: readonly number[], options?: NativeEncodeOptions): Promise<NativeEncodeResult>;
  encodeAudio(tensor: Float32Array, shape: readonly number[], options?: NativeEncodeOptions): Promise<NativeEncodeResult>;
  computeBytes(): number;
  dispose(): void;
}

interface NativeAbortFlag {
  abort(): void;
}

interface ProjectorBinding {
  AddonProjector: new (path: string, options: { threads?: number; gpu?: boolean }) => NativeProjector;
  AbortFlag: new () => NativeAbortFlag;
}

const NATIVE_CODES: ReadonlySet<string> = new Set<VideoLlamaErrorCode>([
  'INVALID_ARGUMENT', 'FILE_NOT_FOUND', 'INVALID_MODEL', 'MISSING_TENSOR', 'TENSOR_SHAPE', 'ABORTED', 'DISPOSED', 'NATIVE',
]);

/** A native error (with `code`) as a VideoLlamaError thrown from the caller's stack. */
function fromNative(error: unknown): VideoLlamaError {
  if (error instanceof VideoLlamaError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return new VideoLlamaError(typeof code === 'string' && NATIVE_CODES.has(code) ? (code as VideoLlamaErrorCode) : 'NATIVE',
    message, undefined, { cause: error });
}

type Kind = MediaEmbedding['kind'];

/**
 * Video-LLaMA's encoders: frames or fbanks in, LLM-width embeddings out. One encode runs at a
 * time per projector (calls queue); weights are loaded once and compute buffers are reused.
 *
 * @example
 * ```ts
 * await using projector = await Projector.load('projector.gguf', { threads: 4 });
 * const { imageSize, maxFrames } = projector.info;
 * const video = await projector.encodeVideo({ tensor: frames, shape: [8, 3, imageSize, imageSize] });
 * console.log(video.tokens, video.dim); // 32 4096
 * ```
 */
export class Projector {
  /** Sizes and constants read from the file. */
  readonly info: ProjectorInfo;
  private readonly native: NativeProjector;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(native: NativeProjector) {
    this.native = native;
    this.info = Object.freeze(native.info());
  }

  /**
   * Loads a projector GGUF (see docs/projector-format.md) without blocking the event loop.
   * Rejects with FILE_NOT_FOUND, INVALID_MODEL (not a projector, truncated), MISSING_TENSOR or TENSOR_SHAPE.
   */
  static async load(path: string, options: ProjectorLoadOptions = {}): Promise<Projector> {
    if (typeof path !== 'string' || path === '') throw invalidArgument('path', 'a non-empty path string', path);
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
    const { threads, gpu } = options;
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 0)) {
      throw invalidArgument('threads', 'a non-negative integer', threads);
    }
    if (gpu !== undefined && typeof gpu !== 'boolean') throw invalidArgument('gpu', 'a boolean', gpu);
    if (!fs.existsSync(path)) throw new VideoLlamaError('FILE_NOT_FOUND', `projector file '${path}' does not exist`, { path });
    const { AddonProjector } = loadAddon<ProjectorBinding>();
    const native = new AddonProjector(path, { threads, gpu });
    try {
      await native.load();
    } catch (error) {
      throw fromNative(error);
    }
    return new Projector(native);
  }

  /**
   * Encodes a video: `shape` [T, 3, S, S] (normalised frames, C order), 1 ≤ T ≤ `info.maxFrames`,
   * S = `info.imageSize`. Returns `info.videoQueries` rows of `info.llmWidth`.
   */
  encodeVideo(input: TensorInput, options: EncodeOptions = {}): Promise<MediaEmbedding> {
    return this.encode('video', input, options, false).then((r) => r.embedding);
  }

  /** Encodes one image as a 1-frame video: `shape` [1, 3, S, S] or [3, S, S]. */
  encodeImage(input: TensorInput, options: EncodeOptions = {}): Promise<MediaEmbedding> {
    return this.encode('image', input, options, false).then((r) => r.embedding);
  }

  /**
   * Encodes audio clips: `shape` [M, 1, melBins, targetFrames] (normalised fbanks), 1 ≤ M ≤
   * `info.maxClips`. Returns `info.audioQueries` rows of `info.llmWidth`.
   */
  encodeAudio(input: TensorInput, options: EncodeOptions = {}): Promise<MediaEmbedding> {
    return this.encode('audio', input, options, false).then((r) => r.embedding);
  }

  /** Like the encode methods, also returning every stage's intermediate tensor. @internal */
  encodeWithStages(kind: Kind, input: TensorInput, options: EncodeOptions = {}): Promise<EmbeddingWithStages> {
    return this.encode(kind, input, options, true);
  }

  /** Bytes of the compute buffers, once pending encodes have finished (they grow to the largest input seen). @internal */
  async computeBytes(): Promise<number> {
    await this.queue.catch(() => undefined);
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'the projector was disposed');
    return this.native.computeBytes();
  }

  /** Frees the weights and buffers once pending encodes have finished; later calls throw DISPOSED. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue.catch(() => undefined);
    this.native.dispose();
  }

  /** `await using projector = await Projector.load(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private encode(kind: Kind, input: TensorInput, options: EncodeOptions, stages: boolean): Promise<EmbeddingWithStages> {
    try {
      if (this.disposed) throw new VideoLlamaError('DISPOSED', 'the projector was disposed');
      if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
      const shape = this.validateInput(kind, input);
      throwIfAborted(options.signal, `encode${kind[0]!.toUpperCase()}${kind.slice(1)}`);
      const run = this.queue.catch(() => undefined).then(() => this.run(kind, input.tensor, shape, options, stages));
      this.queue = run;
      return run;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private async run(kind: Kind, tensor: Float32Array, shape: number[], options: EncodeOptions, stages: boolean): Promise<EmbeddingWithStages> {
    const what = `encode${kind[0]!.toUpperCase()}${kind.slice(1)}`;
    throwIfAborted(options.signal, what);
    const { AbortFlag } = loadAddon<ProjectorBinding>();
    const flag = options.signal ? new AbortFlag() : undefined;
    const onAbort = (): void => flag?.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const onProgress = options.onProgress;
    try {
      const native: NativeEncodeOptions = {
        stages,
        abort: flag,
        onProgress: onProgress && ((stage, completed, total) => onProgress({ stage, completed, total })),
      };
      const result = kind === 'audio'
        ? await this.native.encodeAudio(tensor, shape, native)
        : await this.native.encodeVideo(tensor, shape, native);
      return { embedding: { kind, tokens: result.tokens, dim: result.dim, data: result.data }, stages: result.stages ?? {} };
    } catch (error) {
      const converted = fromNative(error);
      throw converted.code === 'ABORTED' ? abortedError(what, options.signal) : converted;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
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
    if (!matches) throw invalidArgument(`${kind}.shape`, text, `[${input.shape.join(', ')}]`);
    const elements = shape.reduce((a, b) => a * b, 1);
    if (input.tensor.length !== elements) {
      throw invalidArgument(`${kind}.tensor`, `a Float32Array of ${elements} elements (shape [${input.shape.join(', ')}])`,
        `${input.tensor.length} elements`);
    }
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
