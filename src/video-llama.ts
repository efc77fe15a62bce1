/**
 * The entry point: a Video-LLaMA language model loaded from GGUF, with chats about text and
 * media embeddings.
 * @module
 */
import os from 'node:os';

import { gpuOption, resolveGpu, type GpuOption } from './backends.js';
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

/** Options of {@link VideoLlama.load}; an invalid value rejects with INVALID_ARGUMENT. */
export interface VideoLlamaOptions {
  /** Path of the language model GGUF (any LLaMA-family model libllama reads; read into memory, not mapped). */
  llm: string;
  /**
   * Path of the projector GGUF (`video-llama convert`) whose encoders make the media
   * embeddings; its `vl.llm_width` must equal the LLM's embedding width. Without it, chats
   * still take {@link MediaEmbedding}s made elsewhere.
   */
  projector?: string;
  /** CPU threads of the LLM context and of the encoders; default `os.availableParallelism()`. */
  threads?: number;
  /**
   * Where the encoders and the language model run (see {@link GpuOption}); default
   * `$VIDEO_LLAMA_GPU`, else `'auto'`.
   */
  gpu?: GpuOption;
  /**
   * Positions of the context (prompt + reply); default the smaller of 2048 and the model's
   * training context. libllama may round it up (to a multiple of 256); see {@link VideoLlama.contextSize}.
   */
  contextSize?: number;
  /** Layers of the language model to offload to the GPU `gpu` chose; default: all of them. */
  gpuLayers?: number;
  /**
   * Memory-map the LLM file instead of reading it; default false. On CPUs where ggml repacks
   * the weights (AVX2, AVX-512, NEON) a mapping keeps the file's pages resident next to the
   * repacked copy, doubling memory (docs/performance.md, "The language model"); mapping pays when the layers go
   * to a GPU or several processes share one file.
   */
  mmap?: boolean;
  /** Called with the language model's loading progress, 0 to 1; default none. */
  onProgress?: (fraction: number) => void;
}

/**
 * A piece of a raw prompt for {@link VideoLlama.nextTokenLogits}: token ids (integers), or a
 * media embedding of the LLM's width whose vectors take `tokens` positions.
 */
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
  if (options.mmap !== undefined && typeof options.mmap !== 'boolean') throw invalidArgument('options.mmap', 'a boolean', options.mmap);
  if (options.projector !== undefined && (typeof options.projector !== 'string' || options.projector === '')) {
    throw invalidArgument('options.projector', 'the path of a projector GGUF file', options.projector);
  }
  gpuOption(options.gpu, 'options.gpu');
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
 * A loaded language model and its context, with the projector's encoders when one is given.
 * Create it with {@link VideoLlama.load}; encode media with {@link VideoLlama.encodeMedia} (or
 * one modality with `encodeVideo` / `encodeImage` / `encodeAudio`); talk to it through
 * {@link VideoLlama.createChat}; free it with {@link VideoLlama.dispose} (or `await using`).
 * After `dispose`, every method throws or rejects with DISPOSED.
 *
 * @example
 * ```ts
 * import { VideoLlama } from 'video-llama';
 *
 * await using model = await VideoLlama.load({ llm: 'llama-2-7b-chat.Q4_K_M.gguf', projector: 'video-llama.gguf' });
 * const media = await model.encodeMedia('clip.mp4'); // [audio, video], or [video] for a silent file
 * const chat = model.createChat();
 * for await (const piece of chat.stream({ text: 'What happens in this video?', media })) process.stdout.write(piece);
 * ```
 */
export class VideoLlama implements AsyncDisposable {
  /**
   * The template chats use unless told otherwise, judged from the GGUF's
   * `tokenizer.chat_template` by {@link defaultTemplateName}: `'llama2'` or `'vicuna'`.
   */
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
   * Loads the language model (and the projector, when `options.projector` is given) and
   * creates the model's context, on worker threads.
   *
   * Rejects with INVALID_ARGUMENT (bad options), FILE_NOT_FOUND, INVALID_MODEL for a file that
   * is not a loadable LLaMA-family GGUF (truncated, corrupt, or a projector) or not a projector,
   * the projector's MISSING_TENSOR / TENSOR_SHAPE, DIMENSION_MISMATCH when the projector was
   * made for an LLM of another width, or NATIVE. Nothing stays loaded after a failure.
   *
   * @example
   * ```ts
   * const model = await VideoLlama.load({
   *   llm: 'llama-2-7b-chat.Q4_K_M.gguf',
   *   projector: 'video-llama.gguf',
   *   threads: 4,
   *   onProgress: (fraction) => console.log(`loading ${Math.round(fraction * 100)}%`),
   * });
   * ```
   */
  static async load(options: VideoLlamaOptions): Promise<VideoLlama> {
    validateOptions(options);
    const threads = options.threads ?? os.availableParallelism();
    const gpu = gpuOption(options.gpu, 'options.gpu');
    const projector = options.projector === undefined ? undefined
      : await Projector.load(options.projector, { threads, gpu });
    let model: LlmModel | undefined;
    try {
      model = await LlmModel.load(options.llm, { gpu: resolveGpu(gpu), gpuLayers: options.gpuLayers, mmap: options.mmap, onProgress: options.onProgress });
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
   * (e.g. in another process or service). Same as {@link Projector.load}, with its errors.
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

  /**
   * {@link Projector.encodeVideo} of the loaded projector. Without `options.projector` at
   * load time, this and the other encode methods reject with INVALID_ARGUMENT.
   */
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

  /**
   * {@link Projector.encodeMedia} of the loaded projector: `[audio, video]`, or `[video]` for a
   * silent file; pass them as one message's `media`.
   *
   * @example
   * ```ts
   * const media = await model.encodeMedia('clip.mp4', { frames: 8, clips: 8 });
   * const reply = await model.createChat().send({ text: 'What do you see and hear?', media });
   * ```
   */
  async encodeMedia(input: MediaInput, options?: MediaEncodeOptions): Promise<MediaEmbedding[]> {
    return this.requireProjector().encodeMedia(input, options);
  }

  /** Width of the LLM's input embeddings: every {@link MediaEmbedding} must have this `dim`. */
  get embeddingWidth(): number {
    return this.model.info.embeddingWidth;
  }

  /** Positions (tokens and media vectors) the context holds: `options.contextSize`, possibly rounded up by libllama. */
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
   * time, and switching between chats re-evaluates what differs in the cache. Throws
   * INVALID_ARGUMENT for bad options, DISPOSED after {@link VideoLlama.dispose}.
   *
   * @example
   * ```ts
   * const chat = model.createChat({ template: 'llama2', system: 'Answer in one sentence.' });
   * console.log(await chat.send('Who are you?'));
   * ```
   */
  createChat(options: ChatOptions = {}): Chat {
    this.throwIfDisposed();
    const backend: ChatBackend = { model: this.model, context: this.context, defaultTemplate: this.defaultTemplate };
    return new Chat(backend, options);
  }

  /**
   * Token ids of `text` with the model's tokenizer. Throws INVALID_ARGUMENT when `text` is not
   * a string.
   * @param text - the text to tokenize
   * @param options - tokenizer switches
   * @param options.addBos - prepend BOS when the model uses one; default true
   * @param options.special - parse special-token text such as `</s>`; default false
   */
  tokenize(text: string, options: { addBos?: boolean; special?: boolean } = {}): number[] {
    this.throwIfDisposed();
    if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
    return Array.from(this.model.tokenize(text, { addBos: options.addBos ?? true, parseSpecial: options.special ?? false }));
  }

  /**
   * The text of token ids. Throws INVALID_ARGUMENT for anything but integer token ids.
   * @param tokens - token ids of this model's vocabulary
   * @param options - detokenizer switches
   * @param options.special - render special tokens (BOS, EOS) as text; default false
   */
  detokenize(tokens: readonly number[] | Int32Array, options: { special?: boolean } = {}): string {
    this.throwIfDisposed();
    return this.model.detokenize(tokenArray(tokens, 'tokens'), options.special ?? false);
  }

  /**
   * The rows of the token embedding matrix for `tokens`, as f32 (`embeddingWidth` values per
   * token): what the model's input layer looks up for them. Passed as a {@link MediaEmbedding},
   * they act exactly like the tokens themselves. Rejects with INVALID_ARGUMENT for anything
   * but integer token ids.
   */
  async tokenEmbeddings(tokens: readonly number[] | Int32Array): Promise<Float32Array> {
    this.throwIfDisposed();
    return this.model.tokenEmbeddings(tokenArray(tokens, 'tokens'));
  }

  /**
   * Low level: evaluates `prompt` (token ids and embeddings in order, no template, no BOS
   * added) in the model's context and returns the logits of the next token
   * (`vocabularySize` values). Shares the context with the chats: positions in common with
   * what is cached are reused. Rejects with INVALID_ARGUMENT (an empty or malformed prompt),
   * DIMENSION_MISMATCH (an embedding of another width), CONTEXT_OVERFLOW (longer than the
   * context), ABORTED (`options.signal`) or DISPOSED.
   *
   * @example
   * ```ts
   * const logits = await model.nextTokenLogits([model.tokenize('The capital of France is')]);
   * const best = logits.indexOf(Math.max(...logits));
   * console.log(model.detokenize([best]));
   * ```
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

  /** Stops any running generation and frees the context, the model and the projector. Idempotent. */
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
