/**
 * Pretraining the demo model's language model: a small LLaMA (src/dev/tiny-llama.ts's writer with a
 * vocabulary of the corpus's pieces) trained from random weights, every weight trainable, on our own
 * LLaMA graph (native/core/train/llama_trainer.h: ggml's backward, AdamW with its moments
 * checkpointed) on the world's language in the chat template (src/train/llm-corpus.ts), with
 * checkpoints, bit-exact resume and abort. See docs/training.md, "Pretraining the demo LLM".
 * @module
 */
import { availableParallelism } from 'node:os';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { withAbortFlag } from '../bindings/abort.js';
import { addon } from '../bindings/addon.js';
import { callNative } from '../bindings/errors.js';
import type { AddonLlamaTrainer } from '../bindings/llama-trainer.js';
import { LlmModel } from '../llm/model.js';
import { writeTinyLlama } from '../dev/tiny-llama.js';
import { invalidArgument, validateSignal, VideoLlamaError } from '../errors.js';
import { Rng } from '../world/index.js';
import { corpusPieces, LLAMA2_CHAT_TEMPLATE, worldDocuments, worldPieces } from './llm-corpus.js';

/** The shape of the LLaMA to train. */
export interface LlmTopology {
  /** `n_embd`. */
  embeddingWidth: number;
  /** Transformer blocks. */
  layers: number;
  /** Attention heads (must divide `embeddingWidth`). */
  heads: number;
  /** Key/value heads (grouped-query attention when fewer than `heads`); default `heads`. */
  kvHeads?: number;
  /** Hidden width of the SwiGLU feed-forward. */
  feedForwardWidth: number;
}

/**
 * The text to train on: the world's `train` split (two documents per scene: its caption asked
 * for, and its question/answer conversation), or documents of your own (each a text the tokenizer
 * reads with `<s>`/`</s>` as control tokens; a `<s>` is put before each).
 */
export type PretrainCorpus =
  | {
      /** The world's text. */
      world: {
        /** The world's seed; default 1. */
        seed?: number;
        /** Scenes of the `train` split; default 5,000. */
        samples?: number;
      };
    }
  | {
      /** Texts of your own. */
      documents: string[];
    };

/**
 * Options of {@link pretrainLlm}. Plain JSON (a recipe file holds them); the signal and the
 * progress callback are the second argument.
 */
export interface PretrainLlmOptions {
  /** Folder of the checkpoints, `state.json` and the final `model.gguf` (made if missing). */
  out: string;
  /** Optimizer steps in all, each on `windowsPerStep` windows of `window` tokens (a resumed run counts those done). */
  steps: number;
  /** Seed of the initial weights and of the document order (reshuffled every epoch); default 1. */
  seed?: number;
  /** Default: the world, seed 1, 5,000 scenes. */
  corpus?: PretrainCorpus;
  /** Default {@link DEFAULT_TOPOLOGY}. */
  model?: LlmTopology;
  /** `llama.context_length` of the model written (the longest prompt it is meant for); default 2048. */
  contextLength?: number;
  /** Tokens of a window (the training context), at most `contextLength`; default 256. */
  window?: number;
  /** Consecutive windows of the corpus stream per optimizer step (their mean loss); default 1. */
  windowsPerStep?: number;
  /** Peak AdamW learning rate, reached after the warm-up, then a cosine decay; default 1e-4. */
  learningRate?: number;
  /** Learning rate at the last step; default `learningRate / 10`. */
  minLearningRate?: number;
  /** Steps of linear warm-up; default min(100, steps / 10). */
  warmupSteps?: number;
  /** AdamW's decoupled weight decay; default 0. */
  weightDecay?: number;
  /** Steps between checkpoints; default 200. */
  checkpointEvery?: number;
  /** CPU threads; default all the machine's. Other counts may change the last bits of the losses (ggml sums per-thread partial losses). */
  threads?: number;
  /** Continue from `out/state.json` when it exists (else start over); default true. */
  resume?: boolean;
}

/** What {@link pretrainLlm} reports after each optimizer step. */
export interface PretrainLlmProgress {
  /** Steps done (of the whole run, resumed ones included). */
  step: number;
  /** Steps of the whole run. */
  steps: number;
  /** Mean next-token cross-entropy (nats per token) of the step's window, before its update. */
  loss: number;
  /** The learning rate of the step (warm-up, then cosine decay). */
  learningRate: number;
  /** Tokens per second of this call so far. */
  tokensPerSecond: number;
  /** Seconds left at that speed. */
  etaSeconds: number;
}

/** The signal and progress callback of {@link pretrainLlm}. */
export interface PretrainLlmControl {
  /** Stops between two steps; a checkpoint of the steps done is written, then ABORTED is thrown. */
  signal?: AbortSignal;
  /** Called after each optimizer step. */
  onProgress?: (progress: PretrainLlmProgress) => void;
}

/** The outcome of {@link pretrainLlm}. */
export interface PretrainLlmResult {
  /** The trained model (f32 weights, loads in {@link LlmModel}): `out/model.gguf`. */
  model: string;
  /** Steps done in all. */
  steps: number;
  /** The step this call started from (0 unless resumed). */
  resumedFrom: number;
  /** The loss of every step of the whole run, resumed ones included. */
  losses: number[];
  /** Tokens per second of this call (0 when it had nothing left to do). */
  tokensPerSecond: number;
}

/** The default shape: 3.75 M parameters with the world's vocabulary, 7.5 MB in f16 (docs/training.md says how it was chosen). */
export const DEFAULT_TOPOLOGY: Readonly<LlmTopology> = Object.freeze({ embeddingWidth: 256, layers: 4, heads: 4, feedForwardWidth: 704 });

/** Everything a run is made of but its length and pace: a checkpoint resumes only with the same. */
interface RunSettings {
  seed: number;
  corpus: PretrainCorpus;
  model: LlmTopology;
  contextLength: number;
  window: number;
  windowsPerStep: number;
  learningRate: number;
  minLearningRate: number;
  warmupSteps: number;
  weightDecay: number;
}

/** `out/state.json`: where a run stands. */
interface PretrainState {
  format: typeof STATE_FORMAT;
  version: 1;
  /** Optimizer steps done. */
  step: number;
  /** Tokens of the corpus stream consumed (step × windowsPerStep × window): the next window starts there. */
  dataPosition: number;
  /** The checkpoint holding the weights and AdamW moments after `step` steps, in `out`. */
  model: string;
  /** Total steps the run was asked for (the learning-rate schedule depends on it). */
  steps: number;
  settings: RunSettings;
  losses: number[];
}

const STATE_FORMAT = 'video-llama-llm-pretrain';
const STATE_FILE = 'state.json';
const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

function checkInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw invalidArgument(name, `an integer in [${min}, ${max}]`, value);
  }
  return value as number;
}

function checkPositive(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidArgument(name, 'a positive number', value);
  return value;
}

function checkTopology(model: unknown): LlmTopology {
  if (typeof model !== 'object' || model === null) throw invalidArgument('options.model', 'an object', model);
  const m = model as LlmTopology;
  const embeddingWidth = checkInteger(m.embeddingWidth, 'options.model.embeddingWidth', 8, 8192);
  const heads = checkInteger(m.heads, 'options.model.heads', 1, embeddingWidth);
  const kvHeads = checkInteger(m.kvHeads ?? heads, 'options.model.kvHeads', 1, heads);
  if (embeddingWidth % heads !== 0 || heads % kvHeads !== 0 || (embeddingWidth / heads) % 2 !== 0) {
    throw invalidArgument('options.model', 'heads that divide embeddingWidth into even head sizes, and kvHeads that divide heads', m);
  }
  return {
    embeddingWidth,
    layers: checkInteger(m.layers, 'options.model.layers', 1, 256),
    heads,
    kvHeads,
    feedForwardWidth: checkInteger(m.feedForwardWidth, 'options.model.feedForwardWidth', 1, 65536),
  };
}

function checkCorpus(corpus: unknown): PretrainCorpus {
  if (typeof corpus !== 'object' || corpus === null) throw invalidArgument('options.corpus', 'an object', corpus);
  if ('documents' in corpus) {
    const { documents } = corpus as { documents: unknown };
    if (!Array.isArray(documents) || documents.length === 0 || !documents.every((d) => typeof d === 'string' && d !== '')) {
      throw invalidArgument('options.corpus.documents', 'a non-empty array of non-empty strings', documents);
    }
    return { documents };
  }
  const world = (corpus as { world?: unknown }).world;
  if (typeof world !== 'object' || world === null) throw invalidArgument('options.corpus', '{ world: {...} } or { documents: [...] }', corpus);
  const w = world as { seed?: unknown; samples?: unknown };
  return { world: { seed: checkInteger(w.seed ?? 1, 'options.corpus.world.seed', 0, 0xffffffff), samples: checkInteger(w.samples ?? 5000, 'options.corpus.world.samples', 1) } };
}

/** The options checked, with their defaults. Throws INVALID_ARGUMENT naming the first bad one. */
function resolveOptions(options: PretrainLlmOptions): { settings: RunSettings; out: string; steps: number; checkpointEvery: number; threads: number; resume: boolean } {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  if (typeof options.out !== 'string' || options.out === '') throw invalidArgument('options.out', 'a folder path', options.out);
  const steps = checkInteger(options.steps, 'options.steps', 1);
  const window = checkInteger(options.window ?? 256, 'options.window', 2, 32768);
  const learningRate = checkPositive(options.learningRate ?? 1e-4, 'options.learningRate');
  const minLearningRate = checkPositive(options.minLearningRate ?? learningRate / 10, 'options.minLearningRate');
  const weightDecay = options.weightDecay ?? 0;
  if (typeof weightDecay !== 'number' || !(weightDecay >= 0 && weightDecay < 1)) throw invalidArgument('options.weightDecay', 'a number in [0, 1)', weightDecay);
  if (options.resume !== undefined && typeof options.resume !== 'boolean') throw invalidArgument('options.resume', 'a boolean', options.resume);
  return {
    out: path.resolve(options.out),
    steps,
    checkpointEvery: checkInteger(options.checkpointEvery ?? 200, 'options.checkpointEvery', 1),
    threads: checkInteger(options.threads ?? availableParallelism(), 'options.threads', 1, 1024),
    resume: options.resume ?? true,
    settings: {
      seed: checkInteger(options.seed ?? 1, 'options.seed', 0, 0xffffffff),
      corpus: checkCorpus(options.corpus ?? { world: {} }),
      model: checkTopology(options.model ?? DEFAULT_TOPOLOGY),
      contextLength: checkInteger(options.contextLength ?? 2048, 'options.contextLength', window, 1 << 20),
      window,
      windowsPerStep: checkInteger(options.windowsPerStep ?? 1, 'options.windowsPerStep', 1, 1024),
      learningRate,
      minLearningRate,
      warmupSteps: checkInteger(options.warmupSteps ?? Math.min(100, Math.floor(steps / 10)), 'options.warmupSteps', 0),
      weightDecay,
    },
  };
}

/** Linear warm-up to the peak, then a cosine down to the minimum at the last step. */
export function learningRateAt(step: number, steps: number, s: Pick<RunSettings, 'learningRate' | 'minLearningRate' | 'warmupSteps'>): number {
  if (step < s.warmupSteps) return (s.learningRate * (step + 1)) / s.warmupSteps;
  const progress = steps - 1 > s.warmupSteps ? (step - s.warmupSteps) / (steps - 1 - s.warmupSteps) : 1;
  return s.minLearningRate + 0.5 * (s.learningRate - s.minLearningRate) * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/**
 * The corpus as an endless token stream: every epoch all documents (each `<s>`-prefixed), in an
 * order shuffled from (seed, epoch); a corpus shorter than a window repeats within it. Window k of a run is tokens [k·window, k·window + window]:
 * a function of the step alone, which is what lets a run resume on exactly the data it would have seen.
 */
class CorpusStream {
  readonly epochLength: number;
  private cached = new Map<number, Int32Array>();

  constructor(private readonly documents: readonly Int32Array[], private readonly seed: number) {
    this.epochLength = documents.reduce((sum, d) => sum + d.length, 0);
  }

  private epoch(e: number): Int32Array {
    let tokens = this.cached.get(e);
    if (!tokens) {
      const order = this.documents.map((_, i) => i);
      const rng = new Rng((Math.imul(this.seed, 0x9e3779b1) + e) >>> 0);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      tokens = new Int32Array(this.epochLength);
      let at = 0;
      for (const i of order) {
        tokens.set(this.documents[i]!, at);
        at += this.documents[i]!.length;
      }
      this.cached.delete(e - 2);
      this.cached.set(e, tokens);
    }
    return tokens;
  }

  /** `length` tokens from `position` (crossing into the next epoch as needed). */
  slice(position: number, length: number): Int32Array {
    const out = new Int32Array(length);
    for (let filled = 0; filled < length;) {
      const at = position + filled;
      const epoch = this.epoch(Math.floor(at / this.epochLength));
      const from = at % this.epochLength;
      const n = Math.min(length - filled, this.epochLength - from);
      out.set(epoch.subarray(from, from + n), filled);
      filled += n;
    }
    return out;
  }
}

async function readState(out: string): Promise<PretrainState | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(out, STATE_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const state = JSON.parse(text) as PretrainState;
  if (state.format !== STATE_FORMAT || state.version !== 1) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `${path.join(out, STATE_FILE)} is not a pretraining state this version reads`);
  }
  return state;
}

/** Writes `file` whole or not at all: a temporary file renamed onto it. */
async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

function checkpointName(step: number): string {
  return `checkpoint-${String(step).padStart(7, '0')}.gguf`;
}

/** The documents of a corpus and the pieces its vocabulary needs. */
function corpusText(corpus: PretrainCorpus): { documents: string[]; pieces: () => string[] } {
  if ('documents' in corpus) return { documents: corpus.documents, pieces: () => corpusPieces(corpus.documents) };
  return { documents: worldDocuments(corpus.world.seed!, corpus.world.samples!), pieces: worldPieces };
}

/** Writes the random starting model of a run. */
async function writeInitialModel(file: string, settings: RunSettings, pieces: string[]): Promise<void> {
  const { model } = settings;
  await writeTinyLlama(file, {
    ...model,
    contextLength: settings.contextLength,
    seed: settings.seed,
    pieces,
    chatTemplate: LLAMA2_CHAT_TEMPLATE,
    // Logits near zero at first: the loss starts at about ln(vocabulary size).
    outputStd: 0.5 / Math.sqrt(model.embeddingWidth),
    name: 'video-llama demo LLM',
  });
}

/** The documents as token ids, by the model's own tokenizer (`<s>`/`</s>` read as control tokens). */
async function tokenizeDocuments(modelFile: string, documents: readonly string[]): Promise<Int32Array[]> {
  const model = await LlmModel.load(modelFile);
  try {
    return documents.map((d) => Int32Array.from(model.tokenize(d, { addBos: true, special: true })));
  } finally {
    await model.dispose();
  }
}

/**
 * Pretrains a small LLaMA from random weights, every weight trainable (token embeddings, norms,
 * attention, feed-forward, output layer), on our own LLaMA graph: next-token cross-entropy on
 * every position of windows of the corpus, AdamW with warm-up and cosine decay, on worker threads.
 * Every `checkpointEvery` steps (and on abort) the weights and AdamW moments go to
 * `out/checkpoint-<step>.gguf`, the model to `out/model.gguf`, and `out/state.json` names the
 * checkpoint, each written atomically, so a run killed at any moment resumes from its last
 * checkpoint (`resume`, the default) bit-exactly: the same losses as an uninterrupted run.
 *
 * @example
 * ```ts
 * const result = await pretrainLlm({ out: 'ckpt/demo-llm', steps: 4000 }, {
 *   onProgress: (p) => console.log(p.step, p.loss.toFixed(3), `${p.tokensPerSecond.toFixed(0)} tok/s`),
 * });
 * await using llama = await VideoLlama.load({ llm: result.model });
 * ```
 * @throws VideoLlamaError `INVALID_ARGUMENT` for bad options (or a checkpoint in `out` made with
 * other settings), `ABORTED` when the signal fires, `INVALID_MODEL` for an unreadable checkpoint.
 */
export async function pretrainLlm(options: PretrainLlmOptions, control: PretrainLlmControl = {}): Promise<PretrainLlmResult> {
  const { settings, out, steps, checkpointEvery, threads, resume } = resolveOptions(options);
  validateSignal(control.signal, 'control.signal');
  if (control.onProgress !== undefined && typeof control.onProgress !== 'function') throw invalidArgument('control.onProgress', 'a function', control.onProgress);
  await mkdir(out, { recursive: true });

  const previous = resume ? await readState(out) : undefined;
  if (previous && JSON.stringify(previous.settings) !== JSON.stringify(settings)) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `${out} holds a run with other settings; use another folder or resume: false`, {
      name: 'options', expected: previous.settings,
    });
  }
  const text = corpusText(settings.corpus);
  const initial = path.join(out, 'initial.gguf');
  if (!previous) await writeInitialModel(initial, settings, text.pieces());
  const stream = new CorpusStream(await tokenizeDocuments(initial, text.documents), settings.seed);
  const tokensPerStep = settings.window * settings.windowsPerStep;

  const native: AddonLlamaTrainer = new (addon().AddonLlamaTrainer)();
  try {
    let checkpointFile = previous ? path.join(out, previous.model) : initial;
    const info = await callNative(() => native.load(checkpointFile));
    if (previous && info.steps !== previous.step) {
      throw new VideoLlamaError('INVALID_MODEL', `${checkpointFile} holds ${info.steps} steps, ${path.join(out, STATE_FILE)} says ${previous.step}`);
    }
    if (settings.window > info.contextLength) throw invalidArgument('options.window', `at most the model's context length (${info.contextLength})`, settings.window);
    const losses = previous?.losses.slice(0, previous.step) ?? [];
    const resumedFrom = losses.length;
    let step = resumedFrom;
    let checkpointed = resumedFrom;
    const started = performance.now();
    const model = path.join(out, 'model.gguf');

    const checkpoint = async (): Promise<void> => {
      const name = checkpointName(step);
      await callNative(() => native.saveCheckpoint(path.join(out, name)));
      await callNative(() => native.saveModel(model));
      const state: PretrainState = { format: STATE_FORMAT, version: 1, step, dataPosition: step * tokensPerStep, model: name, steps, settings, losses };
      await writeAtomically(path.join(out, STATE_FILE), `${JSON.stringify(state)}\n`);
      if (checkpointFile !== initial && checkpointFile !== path.join(out, name)) await rm(checkpointFile, { force: true });
      checkpointFile = path.join(out, name);
      checkpointed = step;
    };

    while (step < steps) {
      const chunk = Math.min(checkpointEvery - (step % checkpointEvery), steps - step);
      const stride = settings.window + 1;
      const tokens = new Int32Array(chunk * settings.windowsPerStep * stride);
      const rates = new Float32Array(chunk);
      for (let i = 0; i < chunk; i++) {
        for (let w = 0; w < settings.windowsPerStep; w++) {
          tokens.set(stream.slice((step + i) * tokensPerStep + w * settings.window, stride), (i * settings.windowsPerStep + w) * stride);
        }
        rates[i] = learningRateAt(step + i, steps, settings);
      }
      const onStep = (index: number, loss: number): void => {
        losses.push(loss);
        step += 1;
        const seconds = (performance.now() - started) / 1000;
        const tokensPerSecond = ((step - resumedFrom) * tokensPerStep) / seconds;
        control.onProgress?.({
          step, steps, loss, learningRate: rates[index]!, tokensPerSecond, etaSeconds: ((steps - step) * tokensPerStep) / tokensPerSecond,
        });
      };
      try {
        await withAbortFlag('pretrainLlm', control.signal, (abort) =>
          native.train(tokens, settings.window, settings.windowsPerStep, rates, { ...ADAM, weightDecay: settings.weightDecay }, threads, { abort, onProgress: onStep }));
      } catch (error) {
        // Keep the steps done before an abort (an aborted step leaves the weights as they were).
        if ((error as VideoLlamaError).code === 'ABORTED' && step > checkpointed) await checkpoint();
        throw error;
      }
      await checkpoint();
    }
    if (step === resumedFrom) await callNative(() => native.saveModel(model));
    const seconds = (performance.now() - started) / 1000;
    return { model, steps: step, resumedFrom, losses, tokensPerSecond: step > resumedFrom ? ((step - resumedFrom) * tokensPerStep) / seconds : 0 };
  } finally {
    native.dispose();
  }
}
