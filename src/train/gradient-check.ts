/**
 * Finite-difference checks of the training graphs' ggml backward passes (native/core/train/gradient_check.h).
 * @module
 */
import { addon } from '../bindings/addon.js';
import { callNative } from '../bindings/errors.js';
import type { GradientCheckReport } from '../bindings/train.js';
import type { pretrainLlm } from './llm-pretrain.js';

export type { GradientCheckReport, TensorGradientCheck } from '../bindings/train.js';

/** The tiny graphs {@link checkGradients} knows. */
export type GradientCheckGraph = 'layer_norm_gelu';

/**
 * Compares ggml's analytic gradient of every entry of every trainable tensor of a tiny graph
 * with a central difference of its f32 loss (step `step`), on seeded random values. Rejects with
 * INVALID_ARGUMENT for an unknown graph.
 */
export async function checkGradients(graph: GradientCheckGraph, options: { seed?: number; step?: number } = {}): Promise<GradientCheckReport> {
  return callNative(() => addon().trainGradientCheck(graph, options.seed ?? 1, options.step ?? 1e-2));
}

/**
 * Compares the analytic gradient of every entry of every weight of a LLaMA GGUF, as
 * {@link pretrainLlm} trains it (token embeddings, norms, attention, feed-forward, output layer), with
 * a central difference of the mean next-token loss of `tokens`: windows of `windowLength + 1`
 * tokens back to back. Meant for tiny models (two loss evaluations per entry).
 */
export async function checkLlamaGradients(model: string, tokens: Int32Array, windowLength: number,
  options: { step?: number; threads?: number } = {}): Promise<GradientCheckReport> {
  const trainer = new (addon().AddonLlamaTrainer)();
  try {
    await callNative(() => trainer.load(model));
    return await callNative(() => trainer.checkGradients(tokens, windowLength, options.step ?? 1e-2, options.threads ?? 1));
  } finally {
    trainer.dispose();
  }
}
