/**
 * One sequence of a context: a conversation state in the shared KV cache, with a record of what
 * it holds so that a new prompt only evaluates what differs (node-llama-cpp's
 * `LlamaContextSequence`).
 * @module
 */
import type { AbortFlag } from '../bindings/abort.js';
import type { AddonGenerateOptions, AddonGenerateResult } from '../bindings/context.js';
import { abortedError, invalidArgument, validateSignal, VideoLlamaError } from '../errors.js';
import { validateMediaEmbedding, type MediaEmbedding } from '../media-embedding.js';
import type { AddonContext } from '../bindings/context.js';
import { tokenArray } from './arguments.js';
import { itemLength, PositionRecord, runData, runsFrom, type PromptItem, type PromptRun } from './prompt-record.js';

/**
 * A piece of a raw prompt for {@link ContextSequence.nextTokenLogits}: token ids (integers), or
 * a media embedding of the LLM's width whose vectors take `tokens` positions.
 */
export type PromptPart = readonly number[] | Int32Array | MediaEmbedding;

/** What a sequence and its chat need of the model ({@link LlmModel}). */
export interface SequenceModel {
  /** Width of the model's input embeddings. */
  readonly embeddingWidth: number;
  /** The GGUF's `tokenizer.chat_template`, or `""`. */
  readonly chatTemplate: string;
  /** Token ids of `text`. @internal */
  tokenIds(text: string, addBos: boolean, parseSpecial: boolean): Int32Array;
}

/** What a sequence needs of its context ({@link LlmContext}). */
export interface SequenceContext {
  /** The model of the context. */
  readonly model: SequenceModel;
  /** KV cells of the context. */
  readonly size: number;
  /** @internal */
  readonly native: AddonContext;
  /** @internal */
  exclusive<T>(what: string, signal: AbortSignal | undefined, job: (abort: AbortFlag | undefined) => Promise<T>): Promise<T>;
  /** @internal */
  release(id: number): void;
  /** @internal */
  throwIfDisposed(): void;
}

/** What an evaluation did with the positions of a prompt. @internal */
export interface EvaluationStats {
  /** Positions in the prompt. */
  items: number;
  /** Leading positions already in the KV cache, not evaluated again. */
  reused: number;
  /** Positions evaluated now. */
  evaluated: number;
}

/**
 * A sequence of a {@link LlmContext}, from {@link LlmContext.getSequence}: its own positions in
 * the context's KV cache (its own `seq_id` in every batch). A prompt that starts like what the
 * sequence already holds evaluates only the rest. {@link ContextSequence.dispose} clears its
 * cells and gives it back to the context. A {@link Chat} uses one.
 *
 * @example
 * ```ts
 * const sequence = context.getSequence();
 * const logits = await sequence.nextTokenLogits([model.tokenize('The capital of France is')]);
 * console.log(model.detokenize([logits.indexOf(Math.max(...logits))]));
 * ```
 */
export class ContextSequence implements AsyncDisposable {
  private readonly record = new PositionRecord();
  private disposed = false;

  /** @internal Use {@link LlmContext.getSequence}. */
  constructor(
    /** The context the sequence belongs to (an {@link LlmContext}). */
    readonly context: SequenceContext,
    /** The sequence's id in the context (0 .. `context.sequences` - 1). */
    readonly id: number,
  ) {}

  /**
   * Low level: evaluates `prompt` (token ids and embeddings in order, no template, no BOS
   * added) in this sequence and returns the logits of the next token (`vocabularySize` values).
   * Positions in common with what the sequence holds are reused. Rejects with INVALID_ARGUMENT
   * (an empty or malformed prompt), DIMENSION_MISMATCH (an embedding of another width),
   * CONTEXT_OVERFLOW (longer than the context), ABORTED (`options.signal`) or DISPOSED.
   *
   * @example
   * ```ts
   * const logits = await sequence.nextTokenLogits([model.tokenize('Hello'), videoEmbedding]);
   * ```
   */
  async nextTokenLogits(prompt: readonly PromptPart[], options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    this.throwIfDisposed();
    validateSignal(options.signal);
    if (!Array.isArray(prompt) || prompt.length === 0) throw invalidArgument('prompt', 'a non-empty array of token arrays and MediaEmbeddings', prompt);
    const width = this.context.model.embeddingWidth;
    const items: PromptItem[] = prompt.map((part, i) => {
      if (Array.isArray(part) || part instanceof Int32Array) return { type: 'tokens', tokens: tokenArray(part, `prompt[${i}]`) };
      const media = validateMediaEmbedding(part, `prompt[${i}]`, width);
      return { type: 'embeddings', data: media.data, count: media.tokens };
    });
    return this.context.exclusive('Prompt evaluation', options.signal, async (abort) => {
      await this.evaluate(items, abort, options.signal);
      return this.logits();
    });
  }

  /**
   * Makes the sequence hold exactly `items`, evaluating only what follows the longest prefix
   * already held; afterwards {@link ContextSequence.logits} and {@link ContextSequence.generate}
   * see the last position. Throws CONTEXT_OVERFLOW when the prompt does not fit, ABORTED when
   * `abort` is set. Runs inside {@link LlmContext.exclusive}. @internal
   */
  async evaluate(items: readonly PromptItem[], abort: AbortFlag | undefined, signal?: AbortSignal): Promise<EvaluationStats> {
    const total = items.reduce((sum, item) => sum + itemLength(item), 0);
    if (total === 0) throw new VideoLlamaError('INVALID_ARGUMENT', 'The prompt is empty');
    const size = this.context.size;
    if (total > size) {
      throw new VideoLlamaError('CONTEXT_OVERFLOW',
        `The prompt needs ${total} tokens but the context holds ${size} (raise contextSize, or start a new chat)`,
        { needed: total, contextSize: size });
    }
    // The last position is always evaluated again: its logits are what the caller wants.
    const reused = Math.min(this.record.commonPrefix(items), total - 1);
    this.truncate(reused);
    const runs = runsFrom(items, reused);
    try {
      const { completed } = await this.context.native.evaluate(this.id, runs.map(runData), { abort });
      if (!completed) throw abortedError('Prompt evaluation', signal);
    } finally {
      this.recordEvaluated(runs);
    }
    return { items: total, reused, evaluated: total - reused };
  }

  /**
   * Samples a continuation of the evaluated prompt; `onPiece` gets each token's bytes as it is
   * produced. An abort takes effect within one token and ends the generation with stopReason
   * `'aborted'` (the caller decides whether that is an error). Runs inside
   * {@link LlmContext.exclusive}. @internal
   */
  async generate(options: AddonGenerateOptions, onPiece: (bytes: Uint8Array) => void, abort: AbortFlag | undefined): Promise<AddonGenerateResult> {
    try {
      const result = await this.context.native.generate(this.id, options, { abort, onProgress: onPiece });
      this.record.append({ item: { type: 'tokens', tokens: result.tokens }, from: 0 });
      return result;
    } finally {
      this.syncRecord();
    }
  }

  /** Next-token logits after the last evaluated position ([vocabularySize]). @internal */
  logits(): Float32Array {
    const logits = this.context.native.logits(this.id);
    if (!logits) throw new VideoLlamaError('INVALID_ARGUMENT', 'No logits: evaluate a prompt first');
    return logits;
  }

  /**
   * Clears the sequence's cells and gives it back to its context once the jobs queued before
   * have run; later calls reject with DISPOSED. Idempotent.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.context.exclusive('Releasing a sequence', undefined, async () => this.truncate(0)).catch(() => undefined);
    this.context.release(this.id);
  }

  /** `await using sequence = context.getSequence()` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Empties the sequence's cells. Runs inside {@link LlmContext.exclusive}. @internal */
  clear(): void {
    this.truncate(0);
  }

  /** Drops cached positions >= `keep`. */
  private truncate(keep: number): void {
    this.context.native.truncate(this.id, keep);
    this.record.truncate(keep);
  }

  /** Records the leading part of `runs` the native side reports as evaluated. */
  private recordEvaluated(runs: readonly PromptRun[]): void {
    let missing = this.context.native.position(this.id) - this.record.length;
    for (const run of runs) {
      if (missing <= 0) break;
      const n = Math.min(missing, itemLength(run.item) - run.from);
      this.record.append(run, n);
      missing -= n;
    }
    this.syncRecord();
  }

  /** Guards against the record running ahead of the cache (e.g. after a failed decode). */
  private syncRecord(): void {
    const position = this.context.native.position(this.id);
    if (this.record.length > position) this.record.truncate(position);
  }

  /** Throws DISPOSED once this sequence or its context is disposed. @internal */
  throwIfDisposed(): void {
    this.context.throwIfDisposed();
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'The sequence has been disposed');
  }
}
