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

/** One sequence's items in a {@link AddonContext.step}. */
export interface AddonStepItem {
  seq: number;
  /** Token ids, or whole embedding rows; decoded at the sequence's next positions. */
  part: Int32Array | Float32Array;
  /** Logits of the part's last item: a generating sequence samples from them, another keeps them for `logits(seq)`. */
  logits: boolean;
}

/** What a generating sequence sampled in a step. */
export interface AddonSampled {
  seq: number;
  /** To decode in the next step; -1 once the generation has finished. */
  token: number;
  /** Tokens the generation has sampled so far (an EOS included). */
  sampled: number;
  /** UTF-8 bytes of the token (empty for EOS). */
  piece: Uint8Array;
  /** Why the generation finished; null while it goes on. */
  stopReason: NativeStopReason | null;
}

/** Options of `new AddonContext`; all required (the defaults live in src/llm/context.ts). */
export interface AddonContextOptions {
  /** KV cells, shared by the sequences. */
  contextSize: number;
  sequences: number;
  threads: number;
  batchSize: number;
}

/** `init()` must resolve first. One step at a time; the other calls only between steps. */
export interface AddonContext {
  init(): Promise<void>;
  /** KV cells (libllama may round the requested size up). */
  contextSize(): number;
  /** Positions of sequence `seq` in the cache. */
  position(seq: number): number;
  /** Drops positions >= keep of `seq` (0 empties it). */
  truncate(seq: number, keep: number): void;
  /** From now on, a step that yields logits for `seq` samples its next token. */
  startGeneration(seq: number, options: AddonGenerateOptions): void;
  endGeneration(seq: number): void;
  /** Decodes the items (at most batchSize positions) in one llama_decode and samples the generating sequences. */
  step(items: readonly AddonStepItem[], job?: NativeJob): Promise<{ completed: boolean; sampled: AddonSampled[] }>;
  /** Logits of the last evaluated position of `seq` (not generating), or null. */
  logits(seq: number): Float32Array | null;
  dispose(): void;
}

/** new AddonContext(model, options) */
export type AddonContextConstructor = new (model: AddonModel, options: AddonContextOptions) => AddonContext;
