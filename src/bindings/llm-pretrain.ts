/**
 * native AddonLlmPretrainer (native/addon/addon_llm_pretrain.cpp): libllama's trainer on a LLaMA GGUF.
 * @module
 */
import type { NativeJob } from './job.js';

/** What `open()` takes: the GGUF to start from, the window, and AdamW's constants. */
export interface AddonPretrainSetup {
  path: string;
  /** Tokens per optimizer step. */
  window: number;
  /** Tokens per forward/backward pass; must divide `window`. */
  ubatch: number;
  threads: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** A LLaMA under training; `open()` must resolve before the other methods. */
export interface AddonLlmPretrainer {
  open(setup: AddonPretrainSetup): Promise<{ vocabularySize: number; window: number }>;
  /** The model's tokens of `text`, control tokens (`</s>`) read as such. */
  tokenize(text: string, addBos: boolean): Int32Array;
  /**
   * One optimizer step per learning rate, on `window + 1` tokens each (inputs, then labels shifted
   * by one); `onProgress(index, loss)` after each. Resolves with the losses; ABORTED between steps.
   */
  train(tokens: Int32Array, learningRates: Float32Array, job?: NativeJob<[index: number, loss: number]>): Promise<Float64Array>;
  /** Writes the model (f32, the metadata of the file opened) to `path` atomically. */
  save(path: string): Promise<void>;
  dispose(): void;
}

/** new AddonLlmPretrainer() */
export type AddonLlmPretrainerConstructor = new () => AddonLlmPretrainer;
