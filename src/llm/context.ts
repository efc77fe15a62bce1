/**
 * A libllama context (KV cache) with a record of what it holds, so that a new prompt only
 * evaluates what differs from what is already cached.
 * @internal
 * @module
 */
import { abortedError, throwIfAborted, VideoLlamaError } from '../errors.js';
import {
  callNative,
  callNativeSync,
  llmBinding,
  type AddonContext,
  type AddonGenerateOptions,
  type AddonGenerateResult,
} from './binding.js';
import type { LlmModel } from './model.js';
import { itemLength, PositionRecord, runData, runsFrom, type PromptItem, type PromptRun } from './prompt-record.js';

export type { PromptItem } from './prompt-record.js';

/** What an evaluation did with the positions of a prompt. */
export interface EvaluationStats {
  /** Positions in the prompt. */
  items: number;
  /** Leading positions already in the KV cache, not evaluated again. */
  reused: number;
  /** Positions evaluated now. */
  evaluated: number;
}

/** Options of {@link LlmContext.create}. */
export interface LlmContextOptions {
  contextSize: number;
  threads: number;
  batchSize?: number;
}

/** Calls `onAbort` when `signal` aborts, until the returned function is called. */
function onAbort(signal: AbortSignal | undefined, onAbort: () => void): () => void {
  if (!signal) return () => {};
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/**
 * One sequence in a libllama context. Jobs (evaluate, generate) must run inside
 * {@link LlmContext.exclusive}, which queues them, so that a turn's evaluate and generate are
 * not interleaved with another chat's.
 */
export class LlmContext {
  private readonly record = new PositionRecord();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(
    private readonly native: AddonContext,
    /** Positions the context holds. */
    readonly size: number,
  ) {}

  /** Creates the context (allocating its KV cache) on a worker thread. */
  static async create(model: LlmModel, options: LlmContextOptions): Promise<LlmContext> {
    const native = callNativeSync(() => new (llmBinding().AddonContext)(model.native, options));
    await callNative(() => native.init());
    return new LlmContext(native, native.contextSize());
  }

  /** Positions now in the KV cache. */
  get cachedPositions(): number {
    return this.record.length;
  }

  /** Runs `job` once every job queued before it has finished. */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      this.throwIfDisposed();
      return job();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Makes the KV cache hold exactly `items`, evaluating only what follows the longest prefix
   * already cached; afterwards {@link logits} and {@link generate} see the last position.
   * Throws CONTEXT_OVERFLOW when the prompt does not fit, ABORTED when `signal` aborts.
   */
  async evaluate(items: readonly PromptItem[], signal?: AbortSignal): Promise<EvaluationStats> {
    this.throwIfDisposed();
    const total = items.reduce((sum, item) => sum + itemLength(item), 0);
    if (total === 0) throw new VideoLlamaError('INVALID_ARGUMENT', 'The prompt is empty');
    if (total > this.size) {
      throw new VideoLlamaError('CONTEXT_OVERFLOW',
        `The prompt needs ${total} tokens but the context holds ${this.size} (raise contextSize, or start a new chat)`,
        { needed: total, contextSize: this.size });
    }
    throwIfAborted(signal, 'Prompt evaluation');
    // The last position is always evaluated again: its logits are what the caller wants.
    const reused = Math.min(this.record.commonPrefix(items), total - 1);
    callNativeSync(() => this.native.truncate(reused));
    this.record.truncate(reused);
    const runs = runsFrom(items, reused);
    const stopListening = onAbort(signal, () => this.native.abort());
    try {
      const { completed } = await callNative(() => this.native.evaluate(runs.map(runData)));
      if (!completed) throw abortedError('Prompt evaluation', signal);
    } finally {
      stopListening();
      this.recordEvaluated(runs);
    }
    return { items: total, reused, evaluated: total - reused };
  }

  /**
   * Samples a continuation of the evaluated prompt; `onPiece` gets each token's bytes as it
   * is produced. An abort through `signal` takes effect within one token and ends the
   * generation with stopReason `'aborted'` (the caller decides whether that is an error).
   */
  async generate(options: AddonGenerateOptions, onPiece?: (bytes: Uint8Array) => void, signal?: AbortSignal): Promise<AddonGenerateResult> {
    this.throwIfDisposed();
    if (signal?.aborted) {
      return { tokens: new Int32Array(0), text: new Uint8Array(0), sampled: 0, stopReason: 'aborted' };
    }
    const stopListening = onAbort(signal, () => this.native.abort());
    try {
      const result = await callNative(() => this.native.generate(options, onPiece));
      this.record.append({ item: { type: 'tokens', tokens: result.tokens }, from: 0 });
      return result;
    } finally {
      stopListening();
      this.syncRecord();
    }
  }

  /** Next-token logits after the last evaluated position ([vocabularySize]). */
  logits(): Float32Array {
    this.throwIfDisposed();
    const logits = callNativeSync(() => this.native.logits());
    if (!logits) throw new VideoLlamaError('INVALID_ARGUMENT', 'No logits: evaluate a prompt first');
    return logits;
  }

  /** Stops the running job (if any) and frees the KV cache once it has returned. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.native.abort();
    await this.queue;
    this.native.dispose();
  }

  /** Records the leading part of `runs` the native side reports as evaluated. */
  private recordEvaluated(runs: readonly PromptRun[]): void {
    let missing = this.native.position() - this.record.length;
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
    const position = this.native.position();
    if (this.record.length > position) this.record.truncate(position);
  }

  private throwIfDisposed(): void {
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'The model has been disposed');
  }
}
