/**
 * A loaded GGUF language model: weights (read into memory once, see docs/performance.md, "The language model") and tokenizer.
 * @internal
 * @module
 */
import fs from 'node:fs/promises';

import type { NativeGpuChoice } from '../backends.js';
import { VideoLlamaError } from '../errors.js';
import { callNative, callNativeSync, llmBinding, type AddonModel, type AddonModelInfo } from './binding.js';

const GGUF_MAGIC = Buffer.from('GGUF', 'latin1');

/** Options of {@link LlmModel.load}. */
export interface LlmModelOptions {
  gpu?: NativeGpuChoice;
  gpuLayers?: number;
  mmap?: boolean;
  onProgress?: (fraction: number) => void;
}

/**
 * Checks that `file` exists, is a readable file and starts with the GGUF magic, so that
 * libllama is only ever handed something that claims to be a GGUF.
 */
export async function checkGgufFile(file: string, what: string): Promise<void> {
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

/** A language model loaded through libllama. */
export class LlmModel {
  /** Facts read from the loaded model. */
  readonly info: Readonly<AddonModelInfo>;
  private disposed = false;

  private constructor(
    /** @internal */ readonly native: AddonModel,
    readonly file: string,
  ) {
    this.info = Object.freeze(native.info());
  }

  /** Loads `file` on a worker thread (FILE_NOT_FOUND / INVALID_MODEL for bad files). */
  static async load(file: string, options: LlmModelOptions = {}): Promise<LlmModel> {
    await checkGgufFile(file, 'language model');
    const native = new (llmBinding().AddonModel)(file, { gpu: options.gpu, gpuLayers: options.gpuLayers, mmap: options.mmap });
    await callNative(() => native.load(options.onProgress));
    return new LlmModel(native, file);
  }

  /** Token ids of `text` with the model's tokenizer. */
  tokenize(text: string, options: { addBos: boolean; parseSpecial: boolean }): Int32Array {
    this.throwIfDisposed();
    return callNativeSync(() => this.native.tokenize(text, options.addBos, options.parseSpecial));
  }

  /** Text of `tokens`; special tokens appear as their text when `renderSpecial`. */
  detokenize(tokens: Int32Array, renderSpecial: boolean): string {
    this.throwIfDisposed();
    return callNativeSync(() => this.native.detokenize(tokens, renderSpecial));
  }

  /** Rows of the token embedding matrix for `tokens` ([embeddingWidth] each, in order). */
  async tokenEmbeddings(tokens: Int32Array): Promise<Float32Array> {
    this.throwIfDisposed();
    return callNative(() => this.native.tokenEmbeddings(tokens));
  }

  /** A GGUF metadata value as text, if present. */
  meta(key: string): string | undefined {
    this.throwIfDisposed();
    return this.native.meta(key);
  }

  /** Releases this handle; contexts still using the weights keep them until they are disposed. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.native.dispose();
  }

  private throwIfDisposed(): void {
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'The language model has been disposed');
  }
}
