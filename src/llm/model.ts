/**
 * A language model loaded from GGUF through libllama: weights and tokenizer, shared by the
 * contexts created from it (node-llama-cpp's `LlamaModel`).
 * @module
 */
import fs from 'node:fs/promises';
import os from 'node:os';

import { gpuOption, resolveGpu, type GpuOption } from '../backends.js';
import { addon } from '../bindings/addon.js';
import { withAbortFlag } from '../bindings/abort.js';
import { callNative, callNativeSync } from '../bindings/errors.js';
import type { AddonModel, AddonModelInfo } from '../bindings/model.js';
import { invalidArgument, validateSignal, VideoLlamaError } from '../errors.js';
import { reportIgnoredGpuLayers } from '../compute-options.js';
import { checkInteger, tokenArray } from './arguments.js';
import { LlmContext, type ContextModel, type ContextOptions } from './context.js';

const GGUF_MAGIC = Buffer.from('GGUF', 'latin1');

/** Options of {@link LlmModel.load}; an invalid value rejects with INVALID_ARGUMENT. */
export interface LlmModelOptions {
  /** Where the layers run (see {@link GpuOption}); default `$VIDEO_LLAMA_GPU`, else `'auto'`. */
  gpu?: GpuOption;
  /** Layers to offload to the GPU `gpu` chose; default: all of them (ignored, with a warning, without a GPU backend). */
  gpuLayers?: number;
  /**
   * Memory-map the file instead of reading it; default false. On CPUs where ggml repacks the
   * weights (AVX2, AVX-512, NEON) a mapping keeps the file's pages resident next to the repacked
   * copy, doubling memory (docs/performance.md, "The language model"); mapping pays when the
   * layers go to a GPU or several processes share one file.
   */
  mmap?: boolean;
  /** Cancels the load (checked per tensor): rejects with ABORTED, nothing stays loaded. */
  signal?: AbortSignal;
  /** Called with the loading progress, 0 to 1, non-decreasing; default none. */
  onProgress?: (fraction: number) => void;
}

function validateOptions(options: LlmModelOptions): void {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  checkInteger(options.gpuLayers, 'options.gpuLayers', 0);
  if (options.mmap !== undefined && typeof options.mmap !== 'boolean') throw invalidArgument('options.mmap', 'a boolean', options.mmap);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalidArgument('options.onProgress', 'a function', options.onProgress);
  }
  validateSignal(options.signal);
}

/**
 * Checks that `file` exists, is a readable file and starts with the GGUF magic, so that
 * libllama is only ever handed something that claims to be a GGUF.
 */
async function checkGgufFile(file: string, what: string): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be opened (${code})`;
    throw new VideoLlamaError('FILE_NOT_FOUND', `The ${what} file ${file} ${reason}`, { file }, { cause: error });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new VideoLlamaError('FILE_NOT_FOUND', `The ${what} path ${file} is not a file`, { file });
    const magic = Buffer.alloc(4);
    const { bytesRead } = await handle.read(magic, 0, 4, 0);
    if (bytesRead < 4 || !magic.equals(GGUF_MAGIC)) {
      throw new VideoLlamaError('INVALID_MODEL',
        `The ${what} file ${file} is not a GGUF file: expected it to start with "GGUF", found ${JSON.stringify(magic.subarray(0, bytesRead).toString('latin1'))}`,
        { file });
    }
  } finally {
    await handle.close();
  }
}

/**
 * A language model (any LLaMA-family GGUF libllama reads). Load it with {@link LlmModel.load},
 * create contexts with {@link LlmModel.createContext}, free it with {@link LlmModel.dispose}
 * (which disposes its contexts too) or `await using`.
 *
 * @example
 * ```ts
 * import { Chat, LlmModel } from 'video-llama';
 *
 * const model = await LlmModel.load('llama-2-7b-chat.Q4_K_M.gguf');
 * const context = await model.createContext({ contextSize: 4096, sequences: 2 });
 * const chat = new Chat(context.getSequence());
 * console.log(await chat.send('Hello!'));
 * ```
 */
export class LlmModel implements ContextModel, AsyncDisposable {
  private readonly info: Readonly<AddonModelInfo>;
  private readonly contexts = new Set<LlmContext>();
  private disposed = false;

  private constructor(
    /** @internal */ readonly native: AddonModel,
    /** Path of the GGUF file. */
    readonly file: string,
  ) {
    this.info = Object.freeze(native.info());
  }

  /**
   * Loads a GGUF language model on a worker thread (the event loop keeps running).
   *
   * Rejects with INVALID_ARGUMENT (bad path or options), FILE_NOT_FOUND, INVALID_MODEL (not a
   * loadable LLaMA-family GGUF: truncated, corrupt, or a projector), ABORTED (`options.signal`;
   * what was loaded is freed) or NATIVE.
   *
   * @example
   * ```ts
   * const model = await LlmModel.load('llama-2-7b-chat.Q4_K_M.gguf', {
   *   onProgress: (fraction) => console.log(`loading ${Math.round(fraction * 100)}%`),
   * });
   * ```
   */
  static async load(file: string, options: LlmModelOptions = {}): Promise<LlmModel> {
    if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'the path of a GGUF file', file);
    validateOptions(options);
    await checkGgufFile(file, 'language model');
    const gpu = resolveGpu(gpuOption(options.gpu, 'options.gpu'));
    reportIgnoredGpuLayers(options.gpuLayers, gpu);
    const native = callNativeSync(() => new (addon().AddonModel)(file, { gpu, gpuLayers: options.gpuLayers, mmap: options.mmap }));
    try {
      await withAbortFlag(`Loading ${file}`, options.signal, (abort, onProgress) => native.load({ abort, onProgress }),
        { onProgress: options.onProgress, details: { file } });
    } catch (error) {
      native.dispose();
      throw error;
    }
    return new LlmModel(native, file);
  }

  /** Width of the model's input embeddings: every {@link MediaEmbedding} must have this `dim`. */
  get embeddingWidth(): number {
    return this.info.embeddingWidth;
  }

  /** Number of tokens in the vocabulary. */
  get vocabularySize(): number {
    return this.info.vocabularySize;
  }

  /** The context length the model was trained with. */
  get trainContextSize(): number {
    return this.info.trainContextSize;
  }

  /** The GGUF's `tokenizer.chat_template` (Jinja), or `""`; chats pick their default template from it. */
  get chatTemplate(): string {
    return this.info.chatTemplate;
  }

  /** libllama's one-line description of the model, e.g. `llama 7B Q4_K - Medium`. */
  get description(): string {
    return this.info.description;
  }

  /**
   * Creates a context (a KV cache of `contextSize` cells shared by `sequences` sequences) on a
   * worker thread. Rejects with INVALID_ARGUMENT (bad options), DISPOSED or NATIVE (e.g. out of
   * memory).
   *
   * @example
   * ```ts
   * const context = await model.createContext({ contextSize: 4096, sequences: 4 });
   * ```
   */
  async createContext(options: ContextOptions = {}): Promise<LlmContext> {
    this.throwIfDisposed();
    const context = await LlmContext.create(this, { trainContextSize: this.trainContextSize, threads: os.availableParallelism() }, options);
    this.contexts.add(context);
    return context;
  }

  /**
   * Token ids of `text` with the model's tokenizer. Throws INVALID_ARGUMENT when `text` is not
   * a string, DISPOSED after {@link LlmModel.dispose}.
   * @param text - the text to tokenize
   * @param options - tokenizer switches
   * @param options.addBos - prepend BOS when the model uses one; default true
   * @param options.special - parse special-token text such as `</s>`; default false
   */
  tokenize(text: string, options: { addBos?: boolean; special?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
    return Array.from(this.tokenIds(text, options.addBos ?? true, options.special ?? false));
  }

  /**
   * The text of token ids. Throws INVALID_ARGUMENT for anything but ids of this vocabulary.
   * @param tokens - token ids of this model's vocabulary
   * @param options - detokenizer switches
   * @param options.special - render special tokens (BOS, EOS) as text; default false
   */
  detokenize(tokens: readonly number[] | Int32Array, options: { special?: boolean } = {}): string {
    this.throwIfDisposed();
    const ids = tokenArray(tokens, 'tokens');
    return callNativeSync(() => this.native.detokenize(ids, options.special ?? false));
  }

  /**
   * The rows of the token embedding matrix for `tokens`, as f32 (`embeddingWidth` values per
   * token): what the model's input layer looks up for them. Passed as a {@link MediaEmbedding},
   * they act exactly like the tokens themselves. Rejects with INVALID_ARGUMENT for anything
   * but ids of this vocabulary.
   */
  async tokenEmbeddings(tokens: readonly number[] | Int32Array): Promise<Float32Array> {
    this.throwIfDisposed();
    const ids = tokenArray(tokens, 'tokens');
    return callNative(() => this.native.tokenEmbeddings(ids));
  }

  /** Token ids as the addon returns them. @internal */
  tokenIds(text: string, addBos: boolean, parseSpecial: boolean): Int32Array {
    this.throwIfDisposed();
    return callNativeSync(() => this.native.tokenize(text, addBos, parseSpecial));
  }

  /** Forgets a disposed context. @internal */
  contextDisposed(context: LlmContext): void {
    this.contexts.delete(context);
  }

  /** Disposes the model's contexts (stopping their jobs) and frees the weights. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.contexts].map((context) => context.dispose()));
    this.native.dispose();
  }

  /** `await using model = await LlmModel.load(...)` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Throws DISPOSED after {@link LlmModel.dispose}. @internal */
  throwIfDisposed(): void {
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'The language model has been disposed');
  }
}
