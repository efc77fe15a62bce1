/**
 * A libllama context: a KV cache of `contextSize` cells shared by `sequences` sequences
 * (node-llama-cpp's `LlamaContext`). Each {@link ContextSequence} is a separate conversation state.
 * @module
 */
import { addon } from '../bindings/addon.js';
import { callNative, callNativeSync } from '../bindings/errors.js';
import type { AddonContext } from '../bindings/context.js';
import { invalidArgument, VideoLlamaError } from '../errors.js';
import type { AddonModel } from '../bindings/model.js';
import { checkThreads } from '../compute-options.js';
import { checkInteger } from './arguments.js';
import { BatchScheduler } from './batch.js';
import { ContextSequence, type SequenceContext, type SequenceModel } from './sequence.js';

/** Options of {@link LlmModel.createContext}; an invalid value rejects with INVALID_ARGUMENT. */
export interface ContextOptions {
  /**
   * KV cells, shared by the sequences (a prompt position takes one cell of its sequence); default
   * the smaller of 2048 and the model's training context. libllama may round it up (to a multiple
   * of 256); see {@link LlmContext.size}.
   */
  contextSize?: number;
  /** Sequences (independent conversations, e.g. one per chat); default 1. */
  sequences?: number;
  /** CPU threads, an integer >= 1; default `os.availableParallelism()`; clamped as {@link VideoLlamaOptions.threads}. */
  threads?: number;
  /**
   * Positions decoded per step (one llama_decode); default 512. Chats generating together share
   * a step (one token each); a longer prompt is spread over several steps beside them.
   */
  batchSize?: number;
}

/** What a context needs of its model ({@link LlmModel}). */
export interface ContextModel extends SequenceModel {
  /** @internal */
  readonly native: AddonModel;
  /** Forgets a disposed context. @internal */
  contextDisposed(context: LlmContext): void;
}

/** Default context size: the original's `max_length` is 2000. */
const DEFAULT_CONTEXT_SIZE = 2048;
const DEFAULT_BATCH_SIZE = 512;

function validateOptions(options: ContextOptions): void {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  checkInteger(options.contextSize, 'options.contextSize', 1);
  checkInteger(options.sequences, 'options.sequences', 1);
  checkInteger(options.batchSize, 'options.batchSize', 1);
}

/**
 * A context of a {@link LlmModel}, made by {@link LlmModel.createContext}. Hand out its sequences
 * with {@link LlmContext.getSequence}; a chat lives on one. The sequences work together
 * (continuous batching): while several chats generate, their next tokens are decoded in one
 * batch, a chat that arrives joins at the next step, and a long prompt is evaluated in chunks
 * between the others' tokens. {@link LlmContext.dispose} stops the running work and frees the
 * KV cache.
 *
 * @example
 * ```ts
 * const context = await model.createContext({ contextSize: 4096, sequences: 2 });
 * const a = new Chat(context.getSequence());
 * const b = new Chat(context.getSequence());
 * const [ra, rb] = await Promise.all([a.send('Hi!'), b.send('Hello!')]); // decoded together
 * ```
 */
export class LlmContext implements SequenceContext, AsyncDisposable {
  /** KV cells (positions of all its sequences together); `options.contextSize`, possibly rounded up. */
  readonly size: number;
  private readonly free: number[];
  private readonly closing = new AbortController();
  /** Runs the work of the sequences, step by step. @internal */
  readonly scheduler: BatchScheduler;
  private disposed = false;

  private constructor(
    /** The model the context belongs to (an {@link LlmModel}). */
    readonly model: ContextModel,
    /** @internal */ readonly native: AddonContext,
    /** Sequences the context holds. */
    readonly sequences: number,
    batchSize: number,
  ) {
    this.size = native.contextSize();
    this.scheduler = new BatchScheduler(native, batchSize, this.closing.signal);
    this.free = Array.from({ length: sequences }, (_, i) => i);
  }

  /** Creates the context (allocating its KV cache) on a worker thread. @internal */
  static async create(model: ContextModel, defaults: { trainContextSize: number; threads: number }, options: ContextOptions): Promise<LlmContext> {
    validateOptions(options);
    const sequences = options.sequences ?? 1;
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const native = callNativeSync(() => new (addon().AddonContext)(model.native, {
      contextSize: options.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, defaults.trainContextSize),
      sequences,
      threads: checkThreads(options.threads, 'options.threads') ?? defaults.threads,
      batchSize,
    }));
    await callNative(() => native.init());
    return new LlmContext(model, native, sequences, batchSize);
  }

  /** Sequences not handed out now. */
  get freeSequences(): number {
    return this.free.length;
  }

  /**
   * Hands out a free sequence (empty); dispose it (or the chat on it) to give it back. Throws
   * NO_FREE_SEQUENCE when all `sequences` are in use, DISPOSED after {@link LlmContext.dispose}.
   *
   * @example
   * ```ts
   * const sequence = context.getSequence();
   * const logits = await sequence.nextTokenLogits([model.tokenize('The capital of France is')]);
   * await sequence.dispose();
   * ```
   */
  getSequence(): ContextSequence {
    this.throwIfDisposed();
    const id = this.free.shift();
    if (id === undefined) {
      throw new VideoLlamaError('NO_FREE_SEQUENCE',
        `All ${this.sequences} sequences of the context are in use: dispose a chat or sequence, or create the context with more sequences`,
        { sequences: this.sequences });
    }
    return new ContextSequence(this, id);
  }

  /** Takes back a disposed sequence (its cells already cleared). @internal */
  release(id: number): void {
    if (!this.disposed) this.free.push(id);
  }

  /** Stops the running work (its promises reject with ABORTED) and frees the KV cache once the step has returned. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.closing.abort();
    await this.scheduler.idle();
    this.native.dispose();
    this.model.contextDisposed(this);
  }

  /** `await using context = await model.createContext()` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Throws DISPOSED after {@link LlmContext.dispose}. @internal */
  throwIfDisposed(): void {
    if (this.disposed) throw new VideoLlamaError('DISPOSED', 'The context has been disposed');
  }
}
