/**
 * native AddonTrainLlama (native/addon/addon_train.cpp): the frozen LLaMA training graph.
 * @module
 */
import type { NativeJob } from './job.js';

/** One example for the llama_proj loss: see src/train/llama-loss.ts. */
export interface AddonProjectedPrompt {
  media: Float32Array;
  mediaWidth: number;
  projWeight: Float32Array;
  projBias: Float32Array;
  tokens: Int32Array;
  mediaOffset: number;
  labels: Int32Array;
}

/** The loss of an example and, when asked, its llama_proj gradients. */
export interface AddonLossResult {
  loss: number;
  gradWeight?: Float32Array;
  gradBias?: Float32Array;
}

/** A frozen LLaMA read from a GGUF; `load()` must resolve before the other methods. */
export interface AddonTrainLlama {
  load(path: string): Promise<{ embeddingWidth: number; vocabularySize: number }>;
  /** Logits of every position, [n_tokens][n_vocab]. */
  logits(tokens: Int32Array, threads: number): Promise<Float32Array>;
  loss(example: AddonProjectedPrompt, withGrads: boolean, threads: number, job?: NativeJob): Promise<AddonLossResult>;
  dispose(): void;
}

/** new AddonTrainLlama() */
export type AddonTrainLlamaConstructor = new () => AddonTrainLlama;

/** One trainable tensor of a gradient check. */
export interface TensorGradientCheck {
  name: string;
  entries: number;
  /** Max over entries of |analytic − central difference|. */
  maxAbsError: number;
  /** Max over entries of |analytic|. */
  maxAbsGradient: number;
}

/** native/core/train/gradient_check.h's report. */
export interface GradientCheckReport {
  /** Max |composition − ggml's inference op| of the graph's output. */
  forwardError: number;
  tensors: TensorGradientCheck[];
}
