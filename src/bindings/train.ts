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
  /** The tensor's name (its GGUF name for a branch's trainable tensor). */
  name: string;
  /** Entries checked: all of the tensor's. */
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
  /** One check per trainable tensor. */
  tensors: TensorGradientCheck[];
}

/** One example for {@link AddonBranchTrainer}: src/train/example.ts's TrainingExample without its branch. */
export interface AddonBranchExample {
  features: Float32Array;
  units: number;
  tokens: Int32Array;
  mediaOffset: number;
  labels: Int32Array;
}

/** The sizes a branch trainer's examples must have, and its trainable tensors. */
export interface AddonBranchInfo {
  /** Soft-prompt rows (the branch Q-Former's query tokens). */
  queries: number;
  /** Rows per unit — features: the BLIP-2 Q-Former's queries (video) or 1 (audio); media: 3 × image size (video) or mel bins (audio). */
  unitRows: number;
  /** Width of a row — features: their width; media: the image size (video) or fbank frames (audio). */
  featureWidth: number;
  /** Most units (frames or clips) the position embedding covers. */
  maxUnits: number;
  /** Whether examples carry preprocessed media (an encoder or the BLIP-2 Q-Former is trained) instead of frozen features. */
  media: boolean;
  /** The trainable tensors' GGUF names. */
  tensors: string[];
}

/** AdamW's hyper-parameters of one step. */
export interface AddonAdamW {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** A named f32 tensor. */
export interface AddonNamedTensor {
  name: string;
  values: Float32Array;
}

/** native/core/train/branch_trainer.h; `load()` must resolve before the other methods. Jobs run one at a time. */
export interface AddonBranchTrainer {
  load(llm: string, projector: string, branch: 'video' | 'audio', unfreeze: { encoder: boolean; qformer: boolean }): Promise<AddonBranchInfo>;
  loss(batch: AddonBranchExample[], threads: number, job?: NativeJob): Promise<number>;
  /** One AdamW step on the batch's loss (the mean over its labelled positions); resolves with that loss (before the update). */
  step(batch: AddonBranchExample[], adamw: AddonAdamW, dropout: { p: number; seed: number }, threads: number, job?: NativeJob): Promise<number>;
  checkGradients(batch: AddonBranchExample[], step: number, threads: number): Promise<GradientCheckReport>;
  save(path: string, state: string): Promise<void>;
  restore(path: string): Promise<{ state: string; steps: number }>;
  exportProjector(source: string, out: string): Promise<void>;
  /** The branch's output for `example`'s input: `queries × embeddingWidth` values. */
  softPrompt(example: AddonBranchExample, threads: number): Promise<Float32Array>;
  /** The trainable tensors, then every AdamW moment (`<name>.adam_m`, `<name>.adam_v`). */
  tensors(): Promise<AddonNamedTensor[]>;
  dispose(): Promise<void>;
}

/** new AddonBranchTrainer() */
export type AddonBranchTrainerConstructor = new () => AddonBranchTrainer;
