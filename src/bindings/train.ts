/**
 * native AddonTrainLlama (native/addon/addon_train.cpp): the frozen LLaMA training graph.
 * @module
 */
import type { NativeJob } from './job.js';

/** One example for the llama_proj loss (src/train/frozen-llama.ts's ProjectedPrompt). */
export interface AddonProjectedPrompt {
  /** Media rows before llama_proj, `rows × mediaWidth` values. */
  media: Float32Array;
  /** Width of a media row (llama_proj's input width). */
  mediaWidth: number;
  /** llama_proj's weight as nn.Linear stores it: `[embeddingWidth][mediaWidth]`, row-major. */
  projWeight: Float32Array;
  /** llama_proj's bias, `embeddingWidth` values. */
  projBias: Float32Array;
  /** Token ids of every position; the values at the media positions are ignored. */
  tokens: Int32Array;
  /** First position of the media rows. */
  mediaOffset: number;
  /**
   * The label of every position: the token the model must predict there (from the previous
   * position's logits, as the original's shifted loss), or -100 (IGNORE_LABEL: no loss there).
   */
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
