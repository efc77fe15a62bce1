/**
 * The entry point: a Video-LLaMA language model loaded from GGUF, with chats about text and
 * media embeddings.
 * @module
 */
import os from 'node:os';

import { invalidArgument, VideoLlamaError } from './errors.js';
import { Chat, type ChatBackend, type ChatOptions } from './chat/session.js';
import { defaultTemplateName, type TemplateName } from './chat/templates.js';
import { LlmContext, type PromptItem } from './llm/context.js';
import { LlmModel } from './llm/model.js';
import type { AudioInput, ImageInput, VideoInput } from './encoders/inputs.js';
import type { MediaInput } from './media/index.js';
import { validateMediaEmbedding, type MediaEmbedding } from './media-embedding.js';
import {
  Projector, type AudioEncodeOptions, type EncodeOptions, type MediaEncodeOptions, type ProjectorLoadOptions, type VideoEncodeOptions,
} from './projector.js';

/** Options of {@link VideoLlama.load}. */
export interface VideoLlamaOptions {
  /** Path of the language model GGUF (any LLaMA-family model libllama reads; memory-mapped). */
  llm: string;
  /**
   * Path of the projector GGUF (`video-llama convert`) whose encoders make the media
   * embeddings; its `vl.llm_width` must equal the LLM's embedding width. Without it, chats
   * still take {@link MediaEmbedding}s made elsewhere.
   */
  projector?: string;
  /** CPU threads for decoding and encoding; default `os.availableParallelism()`. */
  threads?: number;
  /** Run the encoders on a GPU when the linked libraries have one; default true. */
  gpu?: boolean;
  /**
   * Positions of the context (prompt + reply); default the smaller of 2048 and the model's
   * training context. libllama may round it up (to a multiple of 256); see {@link VideoLlama.contextSize}.
   */
  contextSize?: number;
  /** Layers to offload to a GPU (with a GPU build of libllama); default: libllama's choice. */
  gpuLayers?: number;
  /** Called with the loading progress, 0 to 1. */
  onProgress?: (fraction: number) => void;
}

/** A piece of a raw prompt for {@link VideoLlama.nextTokenLogits}: token ids or a media embedding. */
export type PromptPart = readonly number[] | Int32Array | MediaEmbedding;

/** Default context size: the original's `max_length` is 2000. */
const DEFAULT_CONTEXT_SIZE = 2048;

function checkInteger(value: unknown, name: string, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < min)) {
    throw invalidArgument(name, `an integer >= ${min}`, value);
  }
}

function validateOptions(options: VideoLlamaOptions): void {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  if (typeof options.llm !== 'string' || options.llm === '') throw invalidArgument('options.llm', 'the path of a GGUF file', options.llm);
  checkInteger(options.threads, 'options.threads', 1);
  checkInteger(options.contextSize, 'options.contextSize', 1);
  checkInteger(options.gpuLayers, 'options.gpuLayers', 0);
  if (options.projector !== undefined && (typeof options.projector !== 'string' || options.projector === '')) {
    throw invalidArgument('options.projector', 'the path of a projector GGUF file', options.projector);
  }
  if (options.gpu !== undefined && typeof options.gpu !== 'boolean') throw invalidArgument('options.gpu', 'a boolean', options.gpu);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalidArgument('options.onProgress', 'a function', options.onProgress);
  }
}

/** A projector must produce vectors of the LLM's width. */
function checkProjectorWidth(projector: Projector | undefined, llmWidth: number, options: VideoLlamaOptions): void {
  if (!projector || projector.info.llmWidth === llmWidth) return;
  throw new VideoLlamaError('DIMENSION_MISMATCH',
    `the projector ${options.projector} makes embeddings of width ${projector.info.llmWidth}, but the LLM ${options.llm} ` +
    `has embedding width ${llmWidth}: they belong to different model sizes`,
    { projector: options.projector, llm: options.llm, expected: llmWidth, found: projector.info.llmWidth });
}

function tokenArray(tokens: readonly number[] | Int32Array, name: string): Int32Array {
  if (!(tokens instanceof Int32Array) && !(Array.isArray(tokens) && tokens.every((t) => Number.isInteger(t)))) {
    throw invalidArgument(name, 'an array of integer token ids', tokens);
  }
  return tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
}

/**
 * A loaded language model and its context. Create it with {@link VideoLlama.load}; talk to it
 * through {@link VideoLlama.createChat}; free it with {@link VideoLlama.dispose} (or `await using`).
 *
 * @example
 * ```ts
 * import { VideoLlama } from 'video-llama';
 *
 * await using model = await VideoLlama.load({ llm: 'llama-2-7b-chat.Q4_K_M.gguf' });
 * const chat = model.createChat();
 * for await (const piece of chat.stream('Hello!')) process.stdout.write(piece);
 * ```
 */
export class VideoLlama implements AsyncDisposable {
  /** The template chats use unless told otherwise, judged from the GGUF's chat template. */
  readonly defaultTemplate: TemplateName;
  private disposed = false;

  private constructor(
    private readonly model: LlmModel,
    private readonly context: LlmContext,
    private readonly encoders: Projector | undefined,
  ) {
    this.defaultTemplate = defaultTemplateName(model.info.chatTemplate);
  }

  /**
   * Loads the language model and creates its context, on worker threads.
   * Rejects with FILE_NOT_FOUND, or INVALID_MODEL for a file that is not a loadable
   * LLaMA-family GGUF (truncated, corrupt, or a projector).
   */
  static async load(options: VideoLlamaOptions): Promise<VideoLlama> {
    validateOptions(options);
    const threads = options.threads ?? os.availableParallelism();
    const projector = options.projector === undefined ? undefined
      : await Projector.load(options.projector, { threads, gpu: options.gpu });
    let model: LlmModel | undefined;
    try {
      model = await LlmModel.load(options.llm, { gpuLayers: options.gpuLayers, onProgress: options.onProgress });
      checkProjectorWidth(projector, model.info.embeddingWidth, options);
      const contextSize = options.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, model.info.trainContextSize);
      const context = await LlmContext.create(model, { contextSize, threads });
      return new VideoLlama(model, context, projector);
    } catch (error) {
      model?.dispose();
      await projector?.dispose();
      throw error;
    }
  }

  /**
   * Loads only the encoders of a projector GGUF, to make media embeddings without an LLM
   * (e.g. in another process or service). Same as {@link Projector.load}.
   *
   * @example
   * ```ts
   * const projector = await VideoLlama.loadProjector('video-llama.gguf');
   * const video = await projector.encodeVideo('clip.mp4');
   * ```
   */
  static loadProjector(path: string, options: ProjectorLoadOptions = {}): Promise<Projector> {
    return Projector.load(path, options);
  }

  /** The loaded encoders (`options.projector`), or undefined. */
  get projector(): Projector | undefined {
    return this.encoders;
  }

  /** {@link Projector.encodeVideo} of the loaded projector. */
  async encodeVideo(input: VideoInput, options?: VideoEncodeOptions): Promise<MediaEmbedding> {
    return this.requireProjector().encodeVideo(input, options);
  }

  /** {@link Projector.encodeImage} of the loaded projector. */
  async encodeImage(input: ImageInput, options?: EncodeOptions): Promise<MediaEmbedding> {
    return this.requireProjector().encodeImage(input, options);
  }

  /** {@link Projector.encodeAudio} of the loaded projector. */
  async encodeAudio(input: AudioInput, options?: AudioEncodeOptions): Promise<MediaEmbedding> {
    return this.requireProjector().encodeAudio(input, options);
  }

  /** {@link Projector.encodeMedia} of the loaded projector: `[audio, video]`, or `[video]` for a silent file. */
  async encodeMedia(input: MediaInput, options?: MediaEncodeOptions): Promise<MediaEmbedding[]> {
    return this.requireProjector().encodeMedia(input, options);
  }

  /** Width of the LLM's input embeddings: every {@link MediaEmbedding} must have this `dim`. */
  get embeddingWidth(): number {
    return this.model.info.embeddingWidth;
  }

  /** Positions (tokens and media vectors) the context holds. */
  get contextSize(): number {
    return this.context.size;
  }

  /** Number of tokens in the vocabulary. */
  get vocabularySize(): number {
    return this.model.info.vocabularySize;
  }

  /** The context length the model was trained with. */
  get trainContextSize(): number {
    return this.model.info.trainContextSize;
  }

  /** libllama's one-line description of the model, e.g. `llama 7B Q4_K - Medium`. */
  get description(): string {
    return this.model.info.description;
  }

  /**
   * Starts a conversation. Chats of one model share its context: their turns run one at a
   * time, and switching between chats re-evaluates what differs in the cache.
   */
  createChat(options: ChatOptions = {}): Chat {
    this.throwIfDisposed();
    const backend: ChatBackend = { model: this.model, context: this.context, defaultTemplate: this.defaultTemplate };
    return new Chat(backend, options);
  }

  /**
   * Token ids of `text` with the model's tokenizer.
   * @param options.addBos - prepend BOS when the model uses one; default true
   * @param options.special - parse special-token text such as `</s>`; default false
   */
  tokenize(text: string, options: { addBos?: boolean; special?: boolean } = {}): number[] {
    this.throwIfDisposed();
    if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
    return Array.from(this.model.tokenize(text, { addBos: options.addBos ?? true, parseSpecial: options.special ?? false }));
  }

  /**
   * The text of token ids.
   * @param options.special - render special tokens (BOS, EOS) as text; default false
   */
  detokenize(tokens: readonly number[] | Int32Array, options: { special?: boolean } = {}): string {
    this.throwIfDisposed();
    return this.model.detokenize(tokenArray(tokens, 'tokens'), options.special ?? false);
  }

  /**
   * The rows of the token embedding matrix for `tokens`, as f32 (`embeddingWidth` values per
   * token): what the model's input layer looks up for them. Passed as a {@link MediaEmbedding},
   * they act exactly like the tokens themselves.
   */
  async tokenEmbeddings(tokens: readonly number[] | Int32Array): Promise<Float32Array> {
    this.throwIfDisposed();
    return this.model.tokenEmbeddings(tokenArray(tokens, 'tokens'));
  }

  /**
   * Low level: evaluates `prompt` (token ids and embeddings in order, no template, no BOS
   * added) in the model's context and returns the logits of the next token
   * (`vocabularySize` values). Shares the context with the chats: positions in common with
   * what is cached are reused.
   */
  async nextTokenLogits(prompt: readonly PromptPart[], options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    this.throwIfDisposed();
    if (!Array.isArray(prompt) || prompt.length === 0) throw invalidArgument('prompt', 'a non-empty array of token arrays and MediaEmbeddings', prompt);
    const items: PromptItem[] = prompt.map((part, i) => {
      if (Array.isArray(part) || part instanceof Int32Array) return { type: 'tokens', tokens: tokenArray(part, `prompt[${i}]`) };
      const media = validateMediaEmbedding(part, `prompt[${i}]`, this.embeddingWidth);
      return { type: 'embeddings', data: media.data, count: media.tokens };
    });
    return this.context.exclusive(async () => {
      await this.context.evaluate(items, options.signal);
      return this.context.logits();
    });
  }

  /** Stops any running generation and frees the context and the model. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.context.dispose();
    this.model.dispose();
    await this.encoders?.dispose();
  }

  /** `await using model = await VideoLlama.load(...)` disposes it at the end of the scope. */
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
