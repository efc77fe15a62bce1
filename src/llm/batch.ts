/**
 * Continuous batching of the sequences of one context (node-llama-cpp's batch scheduler): every
 * step decodes, in one native `step` (one llama_decode on one libuv worker), each generating
 * sequence's last sampled token plus as much of the waiting prompts as the batch has room for;
 * the native side then samples each generating sequence from its own logits row. A sequence
 * that arrives joins at the next step, a long prompt is spread over several steps beside the
 * others' tokens, and an aborted one drops out of the next step.
 *
 * The KV cells are shared: the scheduler counts them so that a step never asks for more than are
 * free (libllama would then fail the whole step, i.e. every sequence in it). When cells run
 * short, the cells of idle sequences (a chat between turns keeps its prompt as a cache) are
 * cleared first, least recently used first; then a generating sequence that gets no cell ends
 * its reply with `contextFull`, and a prompt that does not fit waits for the running works to
 * end (their cells then become idle), or fails with CONTEXT_OVERFLOW when nothing else runs.
 * Only the work that does not fit is affected.
 * @internal
 * @module
 */
import { addon } from '../bindings/addon.js';
import type { AbortFlag } from '../bindings/abort.js';
import type { AddonContext, AddonSampled, AddonStepItem, NativeStopReason } from '../bindings/context.js';
import { fromNative } from '../bindings/errors.js';
import { abortedError, throwIfAborted, VideoLlamaError } from '../errors.js';
import { itemLength, runData, type PromptRun } from './prompt-record.js';

/** `n` positions of a run, decoded in one step. */
export interface Chunk {
  readonly run: PromptRun;
  readonly n: number;
}

/** Work of one sequence: a prompt to evaluate, then, with `generation`, a reply to sample. */
export interface SequenceWork {
  readonly seq: number;
  /** Names the work in an ABORTED error. */
  readonly what: string;
  readonly signal?: AbortSignal;
  /** Runs between steps, before the work's first step (the sequence is idle then); returns the prompt runs to evaluate. */
  prepare(): PromptRun[];
  readonly generation?: {
    /** The sampler of the reply is set up: called between steps, after `prepare`. */
    start(): void;
    /** The prompt's last chunk has been decoded (and the first token sampled). */
    onPromptDone(): void;
    onPiece(bytes: Uint8Array): void;
  };
  /** Records what a step put into the sequence's cells (after a failure, what the cells say). */
  recordDecoded(chunks: readonly Chunk[]): void;
}

/** How a work ended. */
export interface WorkOutcome {
  /** Tokens sampled (a final EOS included); 0 without generation. */
  sampled: number;
  /** Why the generation ended; undefined without generation. */
  stopReason?: Exclude<NativeStopReason, 'aborted'>;
}

interface Work {
  readonly spec: SequenceWork;
  runs: PromptRun[];
  /** Token to decode in the next step; -1 for none. */
  next: number;
  sampled: number;
  flag: AbortFlag;
  /** Removes the work's abort listeners. */
  detach(): void;
  settled: boolean;
  /** The native sampler of the work is set up and must be ended. */
  generating: boolean;
  resolve(outcome: WorkOutcome): void;
  reject(error: VideoLlamaError): void;
}

interface Entry {
  work: Work;
  chunk: Chunk;
  /** Logits of the chunk's last position: the last chunk of a prompt, or a generated token. */
  logits: boolean;
  /** The last chunk of the work's prompt. */
  promptEnd: boolean;
}

/** A chunk's positions as the addon decodes them: token ids, or whole embedding rows. */
function chunkData({ run, n }: Chunk): Int32Array | Float32Array {
  const data = runData(run);
  return data.subarray(0, (n * data.length) / (itemLength(run.item) - run.from));
}

/** Positions of the work's prompt not decoded yet. */
function promptLeft(work: Work): number {
  return work.runs.reduce((n, run) => n + itemLength(run.item) - run.from, 0);
}

/** A native flag that `signal` sets, and a function that stops listening. */
function flagOf(signal: AbortSignal, onAbort: () => void = () => {}): { flag: AbortFlag; detach(): void } {
  const flag = new (addon().AbortFlag)();
  const listener = (): void => {
    flag.abort();
    onAbort();
  };
  signal.addEventListener('abort', listener, { once: true });
  return { flag, detach: () => signal.removeEventListener('abort', listener) };
}

/** The KV cells of a context, as the scheduler shares them out. */
export interface CellPool {
  /** Cells of the context. */
  readonly size: number;
  /** Sequences of the context (ids 0 .. sequences - 1). */
  readonly sequences: number;
  /**
   * Clears the cells of sequence `seq` (between steps), its record with them, unless a job of
   * the sequence is running (its caller may still read them); whether it did.
   */
  evict(seq: number): boolean;
}

/** The step scheduler of one context. */
export class BatchScheduler {
  private readonly active: Work[] = [];
  private readonly tasks: (() => void)[] = [];
  private looping = false;
  private loopDone: Promise<void> = Promise.resolve();
  /** Stops a step that serves several sequences: only the context's closing does. */
  private readonly closingFlag: AbortFlag;
  /** Set when the last plan was empty for want of cells: the next empty one fails the waiting prompts. */
  private waited = false;
  /** Steps run so far, and the step each sequence last took part in (for least-recently-used eviction). */
  private steps = 0;
  private readonly lastStep = new Map<number, number>();

  constructor(
    private readonly native: AddonContext,
    /** Positions per step (the context's batch size). */
    private readonly batchSize: number,
    private readonly closing: AbortSignal,
    private readonly cells: CellPool,
  ) {
    this.closingFlag = flagOf(closing).flag;
  }

  /**
   * Runs `work` from the next step on. Rejects with ABORTED as soon as its signal (or the
   * context's closing) aborts — the rest of a step already running still lands in its cells —
   * and with the native error of a step that failed.
   */
  run(spec: SequenceWork): Promise<WorkOutcome> {
    throwIfAborted(spec.signal, spec.what);
    throwIfAborted(this.closing, spec.what);
    return new Promise((resolve, reject) => {
      const stop = spec.signal ? AbortSignal.any([spec.signal, this.closing]) : this.closing;
      const { flag, detach } = flagOf(stop, () => {
        this.settle(work, abortedError(spec.what, spec.signal));
        this.kick();
      });
      const work: Work = { spec, runs: [], next: -1, sampled: 0, flag, detach, settled: false, generating: false, resolve, reject };
      this.tasks.push(() => this.start(work));
      this.kick();
    });
  }

  /** Runs `task` between two steps (on the next turn of the event loop when none is running). */
  betweenSteps<T>(task: () => T): Promise<T> {
    return new Promise((resolve, reject) => {
      this.tasks.push(() => {
        try {
          resolve(task());
        } catch (error) {
          reject(fromNative(error));
        }
      });
      this.kick();
    });
  }

  /** Resolves once no step runs and none is due. */
  idle(): Promise<void> {
    return this.loopDone;
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    // Start on the next turn of the event loop: chats sent together (their run() calls come a
    // few microtasks apart) then share the first step instead of the first one starting alone.
    await new Promise((resolve) => setImmediate(resolve));
    for (;;) {
      // Settled works leave before new ones start: a new work may be on the same sequence.
      for (const work of this.active.filter((w) => w.settled)) this.remove(work);
      this.tasks.splice(0).forEach((task) => task());
      if (this.active.length === 0) {
        // Cleared in the same tick as the check, so a later run() starts a new loop.
        this.looping = false;
        return;
      }
      const { entries: plan, blocked } = this.plan();
      if (plan.length === 0) {
        if (blocked.length > 0 && !this.waited) {
          // A work that just ended may still be finishing its job: its cells become idle then.
          this.waited = true;
          await new Promise((resolve) => setImmediate(resolve));
        } else {
          for (const work of blocked) this.settle(work, this.noRoom(work));
        }
        continue;
      }
      this.waited = false;
      this.steps++;
      const works = new Set(plan.map((e) => e.work));
      for (const work of works) this.lastStep.set(work.spec.seq, this.steps);
      // A step of one sequence stops mid-batch on its abort; a shared step only on closing.
      const flag = works.size === 1 ? plan[0]!.work.flag : this.closingFlag;
      const items: AddonStepItem[] = plan.map((e) => ({ seq: e.work.spec.seq, part: chunkData(e.chunk), logits: e.logits }));
      let sampled: AddonSampled[];
      try {
        ({ sampled } = await this.native.step(items, { abort: flag }));
      } catch (error) {
        this.fail(works, fromNative(error));
        continue;
      }
      this.finishStep(plan, sampled);
    }
  }

  /** Sets up a waiting work between steps. */
  private start(work: Work): void {
    if (work.settled) return;
    try {
      work.runs = work.spec.prepare();
      if (work.spec.generation) {
        work.spec.generation.start();
        work.generating = true;
      }
      this.active.push(work);
    } catch (error) {
      this.settle(work, fromNative(error));
      if (work.generating) this.native.endGeneration(work.spec.seq);
    }
  }

  /**
   * The next step: every generating sequence's token, then prompt chunks in arrival order while
   * the batch has room, each only where the KV cells have room (see the module's comment).
   */
  private plan(): { entries: Entry[]; blocked: Work[] } {
    const entries: Entry[] = [];
    let room = this.batchSize;
    let free = this.freeCells();
    for (const work of this.active) {
      if (work.settled || work.next < 0) continue;
      if (free < 1) free += this.evictIdle(1 - free);
      if (free < 1) {
        // Its last sampled token has no cell: the reply ends there, as at the end of the context.
        this.settle(work, { sampled: work.sampled, stopReason: 'contextFull' });
        continue;
      }
      entries.push({ work, chunk: { run: { item: { type: 'tokens', tokens: Int32Array.of(work.next) }, from: 0 }, n: 1 }, logits: true, promptEnd: false });
      work.next = -1;
      room--;
      free--;
    }
    const blocked: Work[] = [];
    for (const work of this.active) {
      if (work.settled || work.runs.length === 0) continue;
      // A prompt starts once all of it fits in the free cells; then its chunks take them.
      const needed = promptLeft(work);
      if (needed > free) free += this.evictIdle(needed - free);
      if (needed > free) {
        blocked.push(work);
        continue;
      }
      while (room > 0 && work.runs.length > 0) {
        const run = work.runs[0]!;
        const left = itemLength(run.item) - run.from;
        const n = Math.min(left, room);
        if (n === left) work.runs.shift();
        else work.runs[0] = { item: run.item, from: run.from + n };
        const promptEnd = work.runs.length === 0;
        entries.push({ work, chunk: { run, n }, logits: promptEnd, promptEnd });
        room -= n;
      }
      free -= needed;
    }
    // Blocked prompts wait while a step runs (the cells of works that end become idle).
    return { entries, blocked };
  }

  /** Cells not held by any sequence. */
  private freeCells(): number {
    let held = 0;
    for (let seq = 0; seq < this.cells.sequences; seq++) held += this.native.position(seq);
    return this.cells.size - held;
  }

  /** Clears idle sequences, least recently used first, until `wanted` cells are free or none is left; returns the cells freed. */
  private evictIdle(wanted: number): number {
    const busy = new Set(this.active.map((w) => w.spec.seq));
    const idle = Array.from({ length: this.cells.sequences }, (_, seq) => seq)
      .filter((seq) => !busy.has(seq) && this.native.position(seq) > 0)
      .sort((a, b) => (this.lastStep.get(a) ?? 0) - (this.lastStep.get(b) ?? 0));
    let freed = 0;
    for (const seq of idle) {
      if (freed >= wanted) break;
      const held = this.native.position(seq);
      if (this.cells.evict(seq)) freed += held;
    }
    return freed;
  }

  /** CONTEXT_OVERFLOW of a prompt that the cells cannot hold beside the other sequences. */
  private noRoom(work: Work): VideoLlamaError {
    const needed = promptLeft(work);
    const held = this.native.position(work.spec.seq);
    const others = this.cells.size - this.freeCells() - held;
    return new VideoLlamaError('CONTEXT_OVERFLOW',
      `${work.spec.what} needs ${needed} more KV cells but only ${this.cells.size - held - others} of the context's ${this.cells.size} are free: ` +
      `other sequences hold ${others} (dispose or reset their chats, or raise contextSize)`,
      { needed: held + needed, contextSize: this.cells.size, heldByOthers: others });
  }

  private finishStep(plan: readonly Entry[], sampled: readonly AddonSampled[]): void {
    const chunks = new Map<Work, Chunk[]>();
    for (const { work, chunk } of plan) chunks.set(work, [...(chunks.get(work) ?? []), chunk]);
    for (const [work, decoded] of chunks) {
      // Aborted works too: the cells hold what the step decoded.
      work.spec.recordDecoded(decoded);
      if (work.settled || !plan.some((e) => e.work === work && e.promptEnd)) continue;
      if (work.spec.generation) work.spec.generation.onPromptDone();
      else this.settle(work, { sampled: 0 });
    }
    for (const s of sampled) {
      const work = this.active.find((w) => w.spec.seq === s.seq && !w.settled);
      if (!work) continue;
      work.sampled = s.sampled;
      if (s.piece.length > 0) work.spec.generation!.onPiece(s.piece);
      if (s.stopReason === null) work.next = s.token;
      else this.settle(work, { sampled: s.sampled, stopReason: s.stopReason as WorkOutcome['stopReason'] });
    }
  }

  private fail(works: ReadonlySet<Work>, error: VideoLlamaError): void {
    for (const work of works) this.settle(work, error);
  }

  private settle(work: Work, result: WorkOutcome | VideoLlamaError): void {
    if (work.settled) return;
    work.settled = true;
    work.detach();
    if (result instanceof Error) work.reject(result);
    else work.resolve(result);
  }

  /** Takes a settled work out (between steps): its sampler ends, its record follows its cells. */
  private remove(work: Work): void {
    this.active.splice(this.active.indexOf(work), 1);
    if (work.generating) this.native.endGeneration(work.spec.seq);
    work.spec.recordDecoded([]);
  }
}
