/**
 * The one-line path: a language model, one context and (optionally) a projector, loaded together,
 * with chats on the context's sequences. Each part is its own object ({@link LlmModel},
 * {@link LlmContext}, {@link Projector}) for callers that need more than one of them.
 * @module
 */
import os from 'node:os';

import { Chat, chatSettings, type ChatOptions } from './chat/session.js';
import { defaultTemplateName, type TemplateName } from './chat/templates.js';
import { gpuOption, type GpuOption } from './backends.js';
import { checkThreads } from './compute-options.js';
import { invalidArgument, validateSignal, VideoLlamaError } from './errors.js';
import type { AudioInput, ImageInput, VideoInput } from './encoders/inputs.js';
import type { LlmContext } from './llm/context.js';
import { checkInteger } from './llm/arguments.js';
import { LlmModel } from './llm/model.js';
import type { MediaInput } from './media/index.js';
import type { MediaEmbedding } from './media-embedding.js';
import { Projector, type AudioEncodeOptions, type ImageEncodeOptions, type MediaEncodeOptions, type ProjectorLoadOptions, type VideoEncodeOptions } from './projector.js';
import type { EncodeCache } from './cache/encode-cache.js';

/** Options of {@link VideoLlama.load}; an invalid value rejects with INVALID_ARGUMENT. */
export interface VideoLlamaOptions {
  /** Path of the language model GGUF (any LLaMA-family model libllama reads). */
  llm: string;
  /**
   * Path of the projector GGUF (`video-llama convert`) whose encoders make the media
   * embeddings; its `vl.llm_width` must equal the LLM's embedding width. Without it, chats
   * still take {@link MediaEmbedding}s made elsewhere.
   */
  projector?: string;
  /**
   * CPU threads of the LLM context and of the encoders, an integer >= 1; default
   * `os.availableParallelism()`. More than twice the hardware threads are clamped to that, with
   * a `VIDEO_LLAMA_THREADS_CLAMPED` process warning.
   */
  threads?: number;
  /**
   * Where the encoders and the language model run (see {@link GpuOption}); default
   * `$VIDEO_LLAMA_GPU`, else `'auto'`.
   */
  gpu?: GpuOption;
  /** KV cells of the context, shared by its sequences; default as {@link ContextOptions.contextSize}. */
  contextSize?: number;
  /** Sequences of the context: chats that may exist at once; default 1. */
  sequences?: number;
  /**
   * Layers of the language model to offload to the GPU `gpu` chose; default: all of them.
   * Without a GPU backend it is ignored, with a `VIDEO_LLAMA_GPU_LAYERS_IGNORED` process warning.
   */
  gpuLayers?: number;
  /** Memory-map the LLM file; see {@link LlmModelOptions.mmap}. Default false. */
  mmap?: boolean;
  /** Cancels loading (the LLM and the projector): rejects with ABORTED, nothing stays loaded. */
  signal?: AbortSignal;
  /** Called with the loading progress, 0 to 1 (the projector's weights, then the LLM's); default none. */
  onProgress?: (fraction: number) => void;
  /** Encode cache of the projector; see {@link ProjectorLoadOptions.cache}. Default none. */
  cache?: EncodeCache;
  /** Bound on the projector's encode queue; see {@link ProjectorLoadOptions.maxQueuedEncodes}. Default 16. */
  maxQueuedEncodes?: number;
  /**
   * CPU threads of the encoders alone; default `threads`. Fewer than the LLM's keep replies
   * streaming while a video encodes (docs/performance.md).
   */
  encoderThreads?: number;
}

/** Checks the options (before anything loads); returns the threads, clamped ({@link checkThreads}). */
function validateOptions(options: VideoLlamaOptions): { threads?: number; encoderThreads?: number } {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  if (typeof options.llm !== 'string' || options.llm === '') throw invalidArgument('options.llm', 'the path of a GGUF file', options.llm);
  if (options.projector !== undefined && (typeof options.projector !== 'string' || options.projector === '')) {
    throw invalidArgument('options.projector', 'the path of a projector GGUF file', options.projector);
  }
  // Checked again where they are used; here so that a bad value fails before anything loads.
  checkInteger(options.contextSize, 'options.contextSize', 1);
  checkInteger(options.sequences, 'options.sequences', 1);
  gpuOption(options.gpu, 'options.gpu');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalidArgument('options.onProgress', 'a function', options.onProgress);
  }
  validateSignal(options.signal);
  return { threads: checkThreads(options.threads, 'options.threads'), encoderThreads: checkThreads(options.encoderThreads, 'options.encoderThreads') };
}

/** A projector must produce vectors of the LLM's width. */
function checkProjectorWidth(projector: Projector | undefined, llm: LlmModel): void {
  if (!projector || projector.info.llmWidth === llm.embeddingWidth) return;
  throw new VideoLlamaError('DIMENSION_MISMATCH',
    `the projector ${projector.file} makes embeddings of width ${projector.info.llmWidth}, but the LLM ${llm.file} ` +
    `has embedding width ${llm.embeddingWidth}: they belong to different model sizes`,
    { projector: projector.file, llm: llm.file, expected: llm.embeddingWidth, found: projector.info.llmWidth });
}

/**
 * A language model with one context, and the projector's encoders when one is given: what most
 * programs need, loaded in one call. Encode media with {@link VideoLlama.encodeMedia} (or one
 * modality with `encodeVideo` / `encodeImage` / `encodeAudio`), talk about them through
 * {@link VideoLlama.createChat}, free everything with {@link VideoLlama.dispose} (or
 * `await using`). The parts are {@link VideoLlama.model}, {@link VideoLlama.context} and
 * {@link VideoLlama.projector}.
 *
 * @example
 * ```ts
 * import { VideoLlama } from 'video-llama';
 *
 * await using llama = await VideoLlama.load({ llm: 'llama-2-7b-chat.Q4_K_M.gguf', projector: 'video-llama.gguf' });
 * const media = await llama.encodeMedia('clip.mp4'); // [audio, video], or [video] for a silent file
 * const chat = llama.createChat();
 * for await (const piece of chat.stream({ text: 'What happens in this video?', media })) process.stdout.write(piece);
 * ```
 */
export class VideoLlama implements AsyncDisposable {
  private disposed = false;

  private constructor(
    /** The language model (tokenizer, sizes, more contexts). */
    readonly model: LlmModel,
    /** The context chats are created on. */
    readonly context: LlmContext,
    private readonly encoders: Projector | undefined,
  ) {}

  /**
   * Loads the projector (when `options.projector` is given) and the language model, and
   * creates a context with `options.sequences` sequences, on worker threads.
   *
   * Rejects with INVALID_ARGUMENT (bad options), FILE_NOT_FOUND, INVALID_MODEL for a file that
   * is not a loadable LLaMA-family GGUF (truncated, corrupt, or a projector) or not a projector,
   * the projector's MISSING_TENSOR / TENSOR_SHAPE, DIMENSION_MISMATCH when the projector was
   * made for an LLM of another width, ABORTED (`options.signal`) or NATIVE. Nothing stays
   * loaded after a failure.
   *
   * @example
   * ```ts
   * const llama = await VideoLlama.load({
   *   llm: 'llama-2-7b-chat.Q4_K_M.gguf',
   *   projector: 'video-llama.gguf',
   *   sequences: 2,
   *   onProgress: (fraction) => console.log(`loading ${Math.round(fraction * 100)}%`),
   * });
   * ```
   */
  static async load(options: VideoLlamaOptions): Promise<VideoLlama> {
    const checked = validateOptions(options);
    const { signal, onProgress } = options;
    const threads = checked.threads ?? os.availableParallelism();
    // Progress: the projector's share first (it is read whole), then the LLM's.
    const share = options.projector === undefined ? 0 : 0.5;
    const gpu = gpuOption(options.gpu, 'options.gpu');
    const projector = options.projector === undefined ? undefined
      : await Projector.load(options.projector, {
        threads: checked.encoderThreads ?? threads, gpu, signal, cache: options.cache, maxQueuedEncodes: options.maxQueuedEncodes,
        onProgress: onProgress && ((f) => onProgress(f * share)),
      });
    let model: LlmModel | undefined;
    try {
      model = await LlmModel.load(options.llm, {
        gpu, gpuLayers: options.gpuLayers, mmap: options.mmap, signal,
        onProgress: onProgress && ((f) => onProgress(share + f * (1 - share))),
      });
      checkProjectorWidth(projector, model);
      const context = await model.createContext({ contextSize: options.contextSize, sequences: options.sequences, threads });
      return new VideoLlama(model, context, projector);
    } catch (error) {
      await model?.dispose();
      await projector?.dispose();
      throw error;
    }
  }

  /**
   * The template chats use unless told otherwise, judged from the GGUF's
   * `tokenizer.chat_template` by {@link defaultTemplateName}: `'llama2'` or `'vicuna'`.
   */
  get defaultTemplate(): TemplateName {
    return defaultTemplateName(this.model.chatTemplate);
  }

  /** The loaded encoders (`options.projector`), or undefined. */
  get projector(): Projector | undefined {
    return this.encoders;
  }

  /**
   * {@link Projector.encodeVideo} of the loaded projector. Without `options.projector` at
   * load time, this and the other encode methods reject with INVALID_ARGUMENT.
   */
  async encodeVideo(input: VideoInput, options?: VideoEncodeOptions): Promise<MediaEmbedding> {
    return this.requireProjector().encodeVideo(input, options);
  }

  /** {@link Projector.encodeImage} of the loaded projector. */
  async encodeImage(input: ImageInput, options?: ImageEncodeOptions): Promise<MediaEmbedding> {
    return this.requireProjector().encodeImage(input, options);
  }

  /** {@link Projector.encodeAudio} of the loaded projector. */
  async encodeAudio(input: AudioInput, options?: AudioEncodeOptions): Promise<MediaEmbedding> {
    return this.requireProjector().encodeAudio(input, options);
  }

  /**
   * {@link Projector.encodeMedia} of the loaded projector: `[audio, video]`, or `[video]` for a
   * silent file; pass them as one message's `media`.
   *
   * @example
   * ```ts
   * const media = await llama.encodeMedia('clip.mp4', { frames: 8, clips: 8 });
   * const reply = await llama.createChat().send({ text: 'What do you see and hear?', media });
   * ```
   */
  async encodeMedia(input: MediaInput, options?: MediaEncodeOptions): Promise<MediaEmbedding[]> {
    return this.requireProjector().encodeMedia(input, options);
  }

  /**
   * Starts a conversation on a free sequence of the context; {@link Chat.dispose} gives the
   * sequence back. Throws INVALID_ARGUMENT for bad options, NO_FREE_SEQUENCE when every sequence
   * has a chat (dispose one, or load with more `sequences`), DISPOSED after {@link VideoLlama.dispose}.
   *
   * @example
   * ```ts
   * await using chat = llama.createChat({ template: 'llama2', system: 'Answer in one sentence.' });
   * console.log(await chat.send('Who are you?'));
   * ```
   */
  createChat(options: ChatOptions = {}): Chat {
    this.throwIfDisposed();
    chatSettings(options, this.model);
    return new Chat(this.context.getSequence(), options);
  }

  /** Stops any running turn and encode and frees the context, the model and the projector. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([this.model.dispose(), this.encoders?.dispose()]);
  }

  /** `await using llama = await VideoLlama.load(...)` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private requireProjector(): Projector {
    this.throwIfDisposed();
    if (!this.encoders) throw new VideoLlamaError('INVALID_ARGUMENT', 'no projector is loaded: pass options.projector to VideoLlama.load');
    return this.encoders;
  }

  private throwIfDisposed(): void {
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'This VideoLlama has been disposed');
  }
}
