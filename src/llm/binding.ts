/**
 * The language-model part of the native addon (native/addon/addon_llm.cpp), as typed here.
 * Rejections and throws from it carry a `code` that {@link fromNative} turns into a
 * {@link VideoLlamaError}.
 * @internal
 * @module
 */
import type { NativeGpuChoice } from '../backends.js';
import { VideoLlamaError, type VideoLlamaErrorCode } from '../errors.js';
import { loadAddon } from '../native.js';

/** Facts about a loaded model. */
export interface AddonModelInfo {
  embeddingWidth: number;
  vocabularySize: number;
  trainContextSize: number;
  layers: number;
  addsBos: boolean;
  description: string;
  chatTemplate: string;
}

/** native AddonModel: a GGUF language model; `load()` must resolve before the other methods. */
export interface AddonModel {
  load(onProgress?: (fraction: number) => void): Promise<void>;
  info(): AddonModelInfo;
  meta(key: string): string | undefined;
  tokenize(text: string, addBos: boolean, parseSpecial: boolean): Int32Array;
  detokenize(tokens: Int32Array, renderSpecial: boolean): string;
  isEog(token: number): boolean;
  /** Rows of token_embd.weight as f32, one after another. */
  tokenEmbeddings(tokens: Int32Array): Promise<Float32Array>;
  dispose(): void;
}

/** Why a generation ended. */
export type NativeStopReason = 'eos' | 'stopString' | 'maxTokens' | 'contextFull' | 'aborted';

/** Sampling and stopping parameters of {@link AddonContext.generate}. */
export interface AddonGenerateOptions {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repeatPenalty: number;
  seed?: number;
  stopStrings: readonly string[];
}

/** What {@link AddonContext.generate} resolves to. */
export interface AddonGenerateResult {
  /** Generated tokens that are now in the KV cache. */
  tokens: Int32Array;
  /** UTF-8 bytes of every generated piece (EOS excluded). */
  text: Uint8Array;
  sampled: number;
  stopReason: NativeStopReason;
}

/**
 * native AddonContext: one sequence in a libllama context; `init()` must resolve first. One job
 * (evaluate / generate) at a time; `abort()` stops it within one token.
 */
export interface AddonContext {
  init(): Promise<void>;
  contextSize(): number;
  position(): number;
  truncate(keep: number): void;
  /** Token ids (Int32Array) or embeddings (Float32Array, whole rows) decoded in order. */
  evaluate(parts: readonly (Int32Array | Float32Array)[]): Promise<{ completed: boolean }>;
  generate(options: AddonGenerateOptions, onPiece?: (bytes: Uint8Array) => void): Promise<AddonGenerateResult>;
  logits(): Float32Array | null;
  abort(): void;
  dispose(): void;
}

/** The constructors the addon exports. */
export interface LlmBinding {
  AddonModel: new (path: string, options: { gpuLayers?: number; mmap?: boolean; gpu?: NativeGpuChoice }) => AddonModel;
  AddonContext: new (model: AddonModel, options: { contextSize?: number; threads?: number; batchSize?: number }) => AddonContext;
}

/** The addon's language-model classes. */
export function llmBinding(): LlmBinding {
  return loadAddon<LlmBinding>();
}

const KNOWN_CODES = new Set<VideoLlamaErrorCode>([
  'INVALID_ARGUMENT', 'FILE_NOT_FOUND', 'INVALID_MODEL', 'DIMENSION_MISMATCH', 'CONTEXT_OVERFLOW', 'ABORTED', 'DISPOSED', 'NATIVE',
  'GPU_UNAVAILABLE',
]);

/** An error thrown by the addon as a {@link VideoLlamaError} (other errors pass through). */
export function fromNative(error: unknown): unknown {
  if (error instanceof VideoLlamaError || !(error instanceof Error)) return error;
  const code = (error as Error & { code?: unknown }).code;
  if (typeof code !== 'string' || !KNOWN_CODES.has(code as VideoLlamaErrorCode)) return error;
  return new VideoLlamaError(code as VideoLlamaErrorCode, error.message, undefined, { cause: error });
}

/** Runs a native call, converting its error with {@link fromNative}. */
export async function callNative<T>(call: () => T | Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNative(error);
  }
}

/** Synchronous {@link callNative}. */
export function callNativeSync<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromNative(error);
  }
}
