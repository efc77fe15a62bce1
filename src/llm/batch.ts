/**
 * Continuous batching of the sequences of one context (node-llama-cpp's batch scheduler): every
 * step decodes, in one native `step` (one llama_decode on one libuv worker), each generating
 * sequence's last sampled token plus as much of the waiting prompts as the batch has room for;
 * the native side then samples each generating sequence from its own logits row. A sequence
 * that arrives joins at the next step, a long prompt is spread over several steps beside the
 * others' tokens, and an aborted one drops out of the next step.
 * @internal
 * @module
 */
import { addon } from '../bindings/addon.js';
import type { AbortFlag } from '../bindings/abort.js';
import type { AddonContext, AddonSampled, AddonStepItem, NativeStopReason } from '../bindings/context.js';
import { fromNative } from '../bindings/errors.js';
import { abortedError, throwIfAborted, type VideoLlamaError } from '../errors.js';
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

/** The step scheduler of one context. */
export class BatchScheduler {
  private readonly active: Work[] = [];
  private readonly tasks: (() => void)[] = [];
  private looping = false;
  private loopDone: Promise<void> = Promise.resolve();
  /** Stops a step that serves several sequences: only the context's closing does. */
  private readonly closingFlag: AbortFlag;

  constructor(
    private readonly native: AddonContext,
    /** Positions per step (the context's batch size). */
    private readonly batchSize: number,
    private readonly closing: AbortSignal,
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

  /** Runs `task` once no step is running (at once when none is). */
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
    for (;;) {
      // Settled works leave before new ones start: a new work may be on the same sequence.
      for (const work of this.active.filter((w) => w.settled)) this.remove(work);
      this.tasks.splice(0).forEach((task) => task());
      if (this.active.length === 0) {
        // Cleared in the same tick as the check, so a later run() starts a new loop.
        this.looping = false;
        return;
      }
      const plan = this.plan();
      const works = new Set(plan.map((e) => e.work));
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

  /** The next step: every generating sequence's token, then prompt chunks in arrival order while there is room. */
  private plan(): Entry[] {
    const entries: Entry[] = [];
    let room = this.batchSize;
    for (const work of this.active) {
      if (work.next < 0) continue;
      entries.push({ work, chunk: { run: { item: { type: 'tokens', tokens: Int32Array.of(work.next) }, from: 0 }, n: 1 }, logits: true, promptEnd: false });
      work.next = -1;
      room--;
    }
    for (const work of this.active) {
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
    }
    return entries;
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
