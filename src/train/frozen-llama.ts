/**
 * The frozen LLaMA of training: our own forward/backward graph of the LLM GGUF (libllama gives no
 * gradient with respect to input embeddings), and the answer-only cross-entropy of a prompt whose
 * media rows come from llama_proj. See docs/training.md for what exists and what is next.
 * @module
 */
import { withAbortFlag } from '../bindings/abort.js';
import { addon } from '../bindings/addon.js';
import { callNative } from '../bindings/errors.js';
import type { AddonProjectedPrompt, AddonTrainLlama } from '../bindings/train.js';
import { invalidArgument } from '../errors.js';

export { IGNORE_LABEL } from './example.js';

/**
 * One training example for llama_proj: the prompt's tokens with `media` (rows of `mediaWidth`
 * values, e.g. video Q-Former outputs) projected by llama_proj into positions
 * `mediaOffset .. mediaOffset + rows - 1`, and one label per position.
 */
export type ProjectedPrompt = AddonProjectedPrompt;

/** The loss of a {@link ProjectedPrompt} and its gradients with respect to llama_proj. */
export interface ProjectionGradients {
  /** Mean next-token cross-entropy over the labelled positions. */
  loss: number;
  /** d loss / d projWeight, laid out like it. */
  weight: Float32Array;
  /** d loss / d projBias. */
  bias: Float32Array;
}

/** Options of {@link FrozenLlama.load}. */
export interface FrozenLlamaOptions {
  /** CPU threads of each computation; default 1. */
  threads?: number;
}

/**
 * A LLaMA GGUF as a frozen, differentiable graph (CPU, f32 compute): logits like libllama's, and
 * the loss and llama_proj gradients of an example. The weights never change.
 */
export class FrozenLlama {
  private constructor(
    private readonly native: AddonTrainLlama,
    /** `n_embd`. */
    readonly embeddingWidth: number,
    /** Tokens in the vocabulary. */
    readonly vocabularySize: number,
    private readonly threads: number,
  ) {}

  /**
   * Reads a LLaMA GGUF (on a worker thread). Rejects with FILE_NOT_FOUND, INVALID_MODEL (not a
   * LLaMA GGUF) or MISSING_TENSOR.
   */
  static async load(file: string, options: FrozenLlamaOptions = {}): Promise<FrozenLlama> {
    if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'a path', file);
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw invalidArgument('threads', 'a positive integer', threads);
    const native = new (addon().AddonTrainLlama)();
    const info = await callNative(() => native.load(file));
    return new FrozenLlama(native, info.embeddingWidth, info.vocabularySize, threads);
  }

  /** Logits of every position of a token prompt: `tokens.length × vocabularySize` values. */
  async logits(tokens: Int32Array): Promise<Float32Array> {
    if (!(tokens instanceof Int32Array)) throw invalidArgument('tokens', 'an Int32Array', tokens);
    return callNative(() => this.native.logits(tokens, this.threads));
  }

  /** The loss of `example` (no gradients). Rejects with INVALID_ARGUMENT / DIMENSION_MISMATCH on bad input. */
  async loss(example: ProjectedPrompt, options: { signal?: AbortSignal } = {}): Promise<number> {
    return (await this.run(example, false, options.signal)).loss;
  }

  /** The loss of `example` and its gradients with respect to llama_proj, by ggml's backward graph. */
  async projectionGradients(example: ProjectedPrompt, options: { signal?: AbortSignal } = {}): Promise<ProjectionGradients> {
    const result = await this.run(example, true, options.signal);
    return { loss: result.loss, weight: result.gradWeight!, bias: result.gradBias! };
  }

  /** Frees the weights. */
  dispose(): void {
    this.native.dispose();
  }

  private async run(example: ProjectedPrompt, withGrads: boolean, signal: AbortSignal | undefined) {
    checkExample(example);
    return withAbortFlag('Training loss', signal, (abort) =>
      callNative(() => this.native.loss(example, withGrads, this.threads, { abort })));
  }
}

function checkExample(example: ProjectedPrompt): void {
  const floats = ['media', 'projWeight', 'projBias'] as const;
  const ints = ['tokens', 'labels'] as const;
  for (const name of floats) if (!(example?.[name] instanceof Float32Array)) throw invalidArgument(name, 'a Float32Array', example?.[name]);
  for (const name of ints) if (!(example[name] instanceof Int32Array)) throw invalidArgument(name, 'an Int32Array', example[name]);
  for (const name of ['mediaWidth', 'mediaOffset'] as const) {
    if (!Number.isInteger(example[name]) || example[name] < 0) throw invalidArgument(name, 'a non-negative integer', example[name]);
  }
}

/**
 * libllama's logits of every position of a token prompt (`tokens.length × vocabulary` values),
 * with an f32 KV cache and no flash attention: the numerics of {@link FrozenLlama}, whose logits
 * must match these (libllama's defaults round keys and values to f16, about 1e-3 away).
 */
export async function libllamaReferenceLogits(file: string, tokens: Int32Array, threads = 1): Promise<Float32Array> {
  if (!(tokens instanceof Int32Array) || tokens.length === 0) throw invalidArgument('tokens', 'a non-empty Int32Array', tokens);
  return callNative(() => addon().trainReferenceLogits(file, tokens, threads));
}
