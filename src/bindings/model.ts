/**
 * native AddonModel (native/addon/addon_model.h): a GGUF language model.
 * @module
 */
import type { NativeGpuChoice } from '../backends.js';
import type { NativeJob } from './job.js';

/** Facts about a loaded model. */
export interface AddonModelInfo {
  /** Width of the input embeddings (n_embd). */
  embeddingWidth: number;
  /** Tokens in the vocabulary. */
  vocabularySize: number;
  /** Context length the model was trained with. */
  trainContextSize: number;
  /** Transformer blocks. */
  layers: number;
  /** Whether the tokenizer prepends BOS. */
  addsBos: boolean;
  /** libllama's one-line description, e.g. `llama 7B Q4_K - Medium`. */
  description: string;
  /** `tokenizer.chat_template`, or `""`. */
  chatTemplate: string;
}

/** A GGUF language model; `load()` must resolve before the other methods. */
export interface AddonModel {
  /** Loads the weights on a worker thread; `onProgress` gets 0..1; an aborted load frees everything. */
  load(job?: NativeJob<[fraction: number]>): Promise<void>;
  info(): AddonModelInfo;
  tokenize(text: string, addBos: boolean, parseSpecial: boolean): Int32Array;
  detokenize(tokens: Int32Array, renderSpecial: boolean): string;
  /** Rows of token_embd.weight as f32, one after another. */
  tokenEmbeddings(tokens: Int32Array): Promise<Float32Array>;
  /** Drops this handle's reference to the weights (contexts keep theirs). */
  dispose(): void;
}

/** new AddonModel(path, options) */
export type AddonModelConstructor = new (path: string, options: { gpuLayers?: number; mmap?: boolean; gpu?: NativeGpuChoice }) => AddonModel;
