/**
 * native AddonLlamaTrainer (native/addon/addon_llama_trainer.cpp): a LLaMA pretrained on our own
 * graph with every weight trainable (native/core/train/llama_trainer.h).
 * @module
 */
import type { NativeJob } from './job.js';
import type { GradientCheckReport } from './train.js';

/** What `load()` tells of the LLaMA (or checkpoint) loaded. */
export interface AddonLlamaTrainerInfo {
  vocabularySize: number;
  /** `llama.context_length`. */
  contextLength: number;
  /** Optimizer steps the checkpoint had taken (0 for a model). */
  steps: number;
  /** The trainable tensors, GGUF names, in the order of gradient checks. */
  tensors: string[];
}

/** AdamW's constants of a run (the learning rate is given per step). */
export interface AddonAdamW {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** A LLaMA under pretraining with every weight trainable; `load()` must resolve before the other methods. */
export interface AddonLlamaTrainer {
  load(path: string): Promise<AddonLlamaTrainerInfo>;
  /**
   * One optimizer step per learning rate, each on `windowsPerStep` windows of `windowLength + 1`
   * tokens (inputs, then labels shifted by one); `onProgress(index, loss)` after each. Resolves
   * with the losses; ABORTED between steps or inside one (its update not applied).
   */
  train(tokens: Int32Array, windowLength: number, windowsPerStep: number, learningRates: Float32Array, adamw: AddonAdamW, threads: number,
    job?: NativeJob<[index: number, loss: number]>): Promise<Float64Array>;
  /** Finite-difference check of every entry of every trainable tensor on the windows' loss. */
  checkGradients(tokens: Int32Array, windowLength: number, step: number, threads: number): Promise<GradientCheckReport>;
  /** The LLaMA GGUF libllama loads (f32 weights, the loaded file's metadata), written atomically. */
  saveModel(path: string): Promise<void>;
  /** The model with its AdamW moments and step count (what `load()` resumes from), written atomically. */
  saveCheckpoint(path: string): Promise<void>;
  dispose(): void;
}

/** new AddonLlamaTrainer() */
export type AddonLlamaTrainerConstructor = new () => AddonLlamaTrainer;
