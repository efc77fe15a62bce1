/**
 * One sequence of a context: a conversation state in the shared KV cache, with a record of what
 * it holds so that a new prompt only evaluates what differs (node-llama-cpp's
 * `LlamaContextSequence`).
 * @module
 */
import type { AddonGenerateOptions } from '../bindings/context.js';
import { invalidArgument, validateSignal, VideoLlamaError } from '../errors.js';
import { validateMediaEmbedding, type MediaEmbedding } from '../media-embedding.js';
import type { AddonContext } from '../bindings/context.js';
import { tokenArray } from './arguments.js';
import type { BatchScheduler, Chunk, WorkOutcome } from './batch.js';
import { itemLength, PositionRecord, runsFrom, type PromptItem } from './prompt-record.js';

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
  readonly scheduler: BatchScheduler;
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

/** A reply to sample after a prompt ({@link ContextSequence.run}). @internal */
export interface SequenceGeneration {
  options: AddonGenerateOptions;
  /** Each sampled token's bytes. */
  onPiece(bytes: Uint8Array): void;
  /** The prompt has been evaluated (and the first token sampled). */
  onPromptDone(): void;
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
  private queue: Promise<unknown> = Promise.resolve();
  /** Jobs of {@link ContextSequence.serial} begun and not yet over. */
  private jobs = 0;
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
    return this.serial(async () => {
      await this.run(items, 'Prompt evaluation', options.signal);
      return this.logits();
    });
  }

  /**
   * Runs `job` once the jobs called on this sequence before it are over (a sequence does one
   * thing at a time; other sequences go on meanwhile). Rejects with DISPOSED when the context is
   * disposed by then. @internal
   */
  serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      this.context.throwIfDisposed();
      this.jobs++;
      try {
        return await job();
      } finally {
        this.jobs--;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Makes the sequence hold exactly `items`, evaluating (in the context's steps, beside the
   * other sequences) only what follows the longest prefix already held; then, with
   * `generation`, samples a reply, one token per step. Without it, {@link ContextSequence.logits}
   * then gives the last position's logits. Rejects with CONTEXT_OVERFLOW when the prompt does
   * not fit, ABORTED (naming `what`) when `signal` aborts. Call it inside
   * {@link ContextSequence.serial}. @internal
   */
  async run(items: readonly PromptItem[], what: string, signal: AbortSignal | undefined,
    generation?: SequenceGeneration): Promise<{ evaluation: EvaluationStats; outcome: WorkOutcome }> {
    const total = items.reduce((sum, item) => sum + itemLength(item), 0);
    if (total === 0) throw new VideoLlamaError('INVALID_ARGUMENT', 'The prompt is empty');
    const size = this.context.size;
    if (total > size) {
      throw new VideoLlamaError('CONTEXT_OVERFLOW',
        `The prompt needs ${total} tokens but the context holds ${size} (raise contextSize, or start a new chat)`,
        { needed: total, contextSize: size });
    }
    let reused = 0;
    const outcome = await this.context.scheduler.run({
      seq: this.id,
      what,
      signal,
      prepare: () => {
        // The last position is always evaluated again: its logits are what the caller wants.
        reused = Math.min(this.record.commonPrefix(items), total - 1);
        this.truncate(reused);
        return runsFrom(items, reused);
      },
      generation: generation && {
        start: () => this.context.native.startGeneration(this.id, generation.options),
        onPromptDone: generation.onPromptDone,
        onPiece: generation.onPiece,
      },
      recordDecoded: (chunks) => this.recordDecoded(chunks),
    });
    return { evaluation: { items: total, reused, evaluated: total - reused }, outcome };
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
    await this.queue;
    await this.clear().catch(() => undefined);
    this.context.release(this.id);
  }

  /** `await using sequence = context.getSequence()` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Empties the sequence's cells between two steps of the context. Call it inside {@link ContextSequence.serial}. @internal */
  clear(): Promise<void> {
    return this.context.scheduler.betweenSteps(() => this.truncate(0));
  }

  /**
   * Clears the sequence's cells when no job of it is running (they only cache a prompt to reuse
   * then); whether it did. Between steps of the context. @internal
   */
  evictIfIdle(): boolean {
    if (this.jobs > 0) return false;
    this.truncate(0);
    return true;
  }

  /** Drops cached positions >= `keep`. */
  private truncate(keep: number): void {
    this.context.native.truncate(this.id, keep);
    this.record.truncate(keep);
  }

  /** Records the leading part of `chunks` the native side reports as decoded (between steps). */
  private recordDecoded(chunks: readonly Chunk[]): void {
    let missing = this.context.native.position(this.id) - this.record.length;
    for (const { run, n } of chunks) {
      if (missing <= 0) break;
      const count = Math.min(missing, n);
      this.record.append(run, count);
      missing -= count;
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
