/**
 * native AddonContext (native/addon/addon_context.cpp): a libllama context with N sequences in
 * one unified KV cache. Every sequence method takes the sequence id (0..sequences-1).
 * @module
 */
import type { NativeJob } from './job.js';
import type { AddonModel } from './model.js';

/** Why a generation ended. */
export type NativeStopReason = 'eos' | 'stopString' | 'maxTokens' | 'contextFull' | 'aborted';

/** Sampling and stopping parameters of {@link AddonContext.generate}; every field is required but the seed. */
export interface AddonGenerateOptions {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  /** 0: off. */
  minP: number;
  repeatPenalty: number;
  /** 0: off. */
  frequencyPenalty: number;
  /** 0: off. */
  presencePenalty: number;
  /** Absent: a random seed. */
  seed?: number;
  /** GBNF with a rule `root` constraining every sampled token; absent: none. */
  grammar?: string;
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

/** Options of `new AddonContext`; all required (the defaults live in src/llm/context.ts). */
export interface AddonContextOptions {
  /** KV cells, shared by the sequences. */
  contextSize: number;
  sequences: number;
  threads: number;
  batchSize: number;
}

/** `init()` must resolve first. Jobs (evaluate, generate) run one at a time per context. */
export interface AddonContext {
  init(): Promise<void>;
  /** KV cells (libllama may round the requested size up). */
  contextSize(): number;
  /** Positions of sequence `seq` in the cache. */
  position(seq: number): number;
  /** Drops positions >= keep of `seq` (0 empties it). */
  truncate(seq: number, keep: number): void;
  /** Token ids (Int32Array) or embeddings (Float32Array, whole rows) decoded into `seq` in order. */
  evaluate(seq: number, parts: readonly (Int32Array | Float32Array)[], job?: NativeJob): Promise<{ completed: boolean }>;
  /** Samples a continuation of `seq`; `job.onProgress` gets each token's bytes. */
  generate(seq: number, options: AddonGenerateOptions, job?: NativeJob<[bytes: Uint8Array]>): Promise<AddonGenerateResult>;
  /** Logits of the last evaluated position of `seq`, or null. */
  logits(seq: number): Float32Array | null;
  dispose(): void;
}

/** new AddonContext(model, options) */
export type AddonContextConstructor = new (model: AddonModel, options: AddonContextOptions) => AddonContext;
