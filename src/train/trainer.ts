/**
 * The trainer of issue 13: what the paper's stages train — one branch's Q-Former (all its weights
 * and its query tokens), position embedding and LLaMA projection — over examples whose frozen
 * stage is already computed ({@link TrainingExample}), with the encoders and the LLM frozen; or,
 * with {@link TrainerOptions.unfreeze}, also the branch's encoder and/or the BLIP-2 Q-Former, over
 * examples that carry preprocessed media. The graphs, gradients (ggml's backward) and AdamW steps
 * (ggml_opt_step_adamw) run natively on worker threads; see docs/training.md.
 * @module
 */
import { withAbortFlag } from '../bindings/abort.js';
import { addon } from '../bindings/addon.js';
import { callNative } from '../bindings/errors.js';
import type { AddonBranchExample, AddonBranchInfo, AddonBranchTrainer, GradientCheckReport } from '../bindings/train.js';
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { Rng } from '../world/scene.js';
import type { ExampleInput, TrainingBranch, TrainingExample, UnfreezePart } from './example.js';
import { learningRate, STAGE_CONFIGS, type StageConfig, type TrainingStage } from './schedule.js';

/** A trainable tensor's (or AdamW moment's) values, by its GGUF name. */
export interface NamedTensor {
  /** e.g. `vqf.blk.0.self_q.weight`, or `vqf.blk.0.self_q.weight.adam_m` for its first moment. */
  name: string;
  /** The values, ggml order (the innermost dimension first). */
  values: Float32Array;
}

/** Options of {@link Trainer.create}. */
export interface TrainerOptions {
  /** The frozen LLM (a LLaMA GGUF, f32/f16 weights). */
  llm: string;
  /** The projector GGUF whose branch is trained (and which {@link Trainer.exportProjector} copies). */
  projector: string;
  /** The branch to train. */
  branch: TrainingBranch;
  /** CPU threads of each step; default 1. */
  threads?: number;
  /**
   * Parts trained beyond the paper's head (default none, the paper's stages): `'encoder'` (EVA ViT
   * with its patch and position embeddings, cls token and BLIP-2's `ln_vision`; or ImageBind audio,
   * stem to head) and/or `'qformer'` (the BLIP-2 Q-Former, video branch). With either, examples
   * carry preprocessed media ({@link ExampleInput} `'media'`) and the whole branch runs in each step.
   */
  unfreeze?: readonly UnfreezePart[];
}

/** Progress of {@link Trainer.train}, after every optimizer step. */
export interface TrainProgress {
  /** Optimizer steps done, counting those before a resume. */
  step: number;
  /** Steps of the whole run (`epochs × stepsPerEpoch`). */
  totalSteps: number;
  /** 0-based epoch of the step just done. */
  epoch: number;
  /** The step batch's loss (before its update): the mean over its labelled positions. */
  loss: number;
  /** The step's learning rate. */
  learningRate: number;
  /** Examples per second over this call's steps so far. */
  samplesPerSecond: number;
  /** Seconds left at that pace. */
  etaSeconds: number;
}

/**
 * The run configuration: the original's settings of the trainer's branch at `stage`
 * ({@link STAGE_CONFIGS}) unless given, and the data order's seed.
 * Saved in checkpoints; a resumed trainer continues with the saved configuration.
 */
export interface TrainConfig extends StageConfig {
  /** Seed of the data order (a new permutation of the examples every epoch); default 42 (the original's). */
  seed: number;
  /** The stage whose settings are the defaults; default `'stage2'`. */
  stage: TrainingStage;
  /**
   * Dropout probability of the Q-Former during training steps (hidden states and attention
   * probabilities, where BERT has it); default 0.1, the original's (`bert-base-uncased`'s config).
   * Its masks come from `seed` and the step, so a resumed run is bit-equal.
   */
  dropout: number;
}

/** Options of {@link Trainer.train}. */
export interface TrainOptions extends Partial<TrainConfig> {
  /** Stop after this many steps of this call (e.g. to checkpoint half-way); default: until the run's end. */
  steps?: number;
  /** Called after every step. */
  onProgress?: (progress: TrainProgress) => void;
  /** Cancels the run (rejects with ABORTED; the steps done so far stay done). */
  signal?: AbortSignal;
}

/** What {@link Trainer.train} did. */
export interface TrainResult {
  /** Steps done by this call. */
  steps: number;
  /** The loss of each of them. */
  losses: number[];
}

/** The JSON a checkpoint keeps beside the tensors. */
interface SavedState {
  config: TrainConfig;
  unfreeze?: UnfreezePart[];
}

/**
 * One branch's trainer. Steps run one at a time on a worker thread; the event loop stays free.
 *
 * @example
 * ```ts
 * const trainer = await Trainer.create({ llm: 'llama.gguf', projector: 'projector.gguf', branch: 'video' });
 * await trainer.train(examples, { epochs: 1, stepsPerEpoch: 100, onProgress: (p) => console.log(p.loss) });
 * await trainer.save('run.ckpt.gguf');
 * await trainer.exportProjector('trained.gguf');
 * await trainer.dispose();
 * ```
 */
export class Trainer {
  private config: TrainConfig | undefined;
  private stepsDone = 0;
  private running = false;

  private constructor(
    private readonly native: AddonBranchTrainer,
    private readonly info: AddonBranchInfo,
    /** The branch it trains. */
    readonly branch: TrainingBranch,
    private readonly projector: string,
    private readonly threads: number,
    /** What it trains beyond the paper's head, sorted. */
    readonly unfreeze: readonly UnfreezePart[],
  ) {}

  /** Reads the branch's trainable tensors from the projector (f32 copies) and the frozen LLM. */
  static async create(options: TrainerOptions): Promise<Trainer> {
    for (const name of ['llm', 'projector'] as const) {
      if (typeof options?.[name] !== 'string' || options[name] === '') throw invalidArgument(name, 'a path', options?.[name]);
    }
    if (options.branch !== 'video' && options.branch !== 'audio') throw invalidArgument('branch', "'video' or 'audio'", options.branch);
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw invalidArgument('threads', 'a positive integer', threads);
    const unfreeze = checkUnfreeze(options.unfreeze ?? [], options.branch);
    const native = new (addon().AddonBranchTrainer)();
    const parts = { encoder: unfreeze.includes('encoder'), qformer: unfreeze.includes('qformer') };
    const info = await callNative(() => native.load(options.llm, options.projector, options.branch, parts));
    return new Trainer(native, info, options.branch, options.projector, threads, unfreeze);
  }

  /** A trainer in the state `checkpoint` saved ({@link Trainer.save}), for the same LLM and projector. */
  static async resume(checkpoint: string, options: TrainerOptions): Promise<Trainer> {
    const trainer = await Trainer.create(options);
    try {
      const restored = await callNative(() => trainer.native.restore(checkpoint));
      const state = JSON.parse(restored.state) as SavedState;
      const saved = state.unfreeze ?? [];
      if (saved.join() !== trainer.unfreeze.join()) {
        throw new VideoLlamaError('INVALID_ARGUMENT', `${checkpoint} was saved with unfreeze [${saved.join(', ')}], not [${trainer.unfreeze.join(', ')}]`,
          { checkpoint, saved, requested: trainer.unfreeze });
      }
      trainer.stepsDone = restored.steps;
      trainer.config = state.config;
      return trainer;
    } catch (error) {
      await trainer.dispose();
      throw error;
    }
  }

  /** Soft-prompt rows of the branch (its Q-Former's query tokens). */
  get queries(): number { return this.info.queries; }
  /** What examples must carry: frozen features, or media when something beyond the head is trained. */
  get input(): ExampleInput { return this.info.media ? 'media' : 'features'; }
  /** Rows per unit — features: the BLIP-2 Q-Former's queries (video) or 1 (audio); media: 3 × image size (video) or mel bins (audio). */
  get unitRows(): number { return this.info.unitRows; }
  /** Width of a row — features: their width; media: the image size (video) or fbank frames (audio). */
  get featureWidth(): number { return this.info.featureWidth; }
  /** Most frames or clips an example may have. */
  get maxUnits(): number { return this.info.maxUnits; }
  /** The trainable tensors' GGUF names. */
  get tensorNames(): readonly string[] { return this.info.tensors; }
  /** Optimizer steps done (including those before a resume). */
  get steps(): number { return this.stepsDone; }

  /** The loss of `examples` as one batch, the mean over all their labelled positions (no update). Rejects with INVALID_ARGUMENT / DIMENSION_MISMATCH on a bad example. */
  async loss(examples: readonly TrainingExample[], options: { signal?: AbortSignal } = {}): Promise<number> {
    const batch = await this.batch(examples);
    return withAbortFlag('Training loss', options.signal, (abort) => this.native.loss(batch, this.threads, { abort }));
  }

  /**
   * Optimizer steps over `examples` until the run's end (`epochs × stepsPerEpoch` steps) or
   * `options.steps`: each step takes the next `batchSize` examples of a seeded per-epoch
   * permutation, takes the original's batch loss (the mean over all their labelled positions; the
   * gradient accumulates over the examples), and makes one AdamW step at the
   * schedule's learning rate ({@link learningRate}).
   */
  async train(examples: readonly TrainingExample[], options: TrainOptions = {}): Promise<TrainResult> {
    if (this.running) throw new VideoLlamaError('INVALID_ARGUMENT', 'This trainer is already training: one train() at a time');
    this.running = true;
    try {
      return await this.run(examples, options);
    } finally {
      this.running = false;
    }
  }

  private async run(examples: readonly TrainingExample[], options: TrainOptions): Promise<TrainResult> {
    const { steps, onProgress, signal, ...overrides } = options;
    const config = this.resolveConfig(overrides);
    examples.forEach((e, i) => this.check(e, i));  // every example once (lazy values are read per step)
    const totalSteps = config.epochs * config.stepsPerEpoch;
    const last = steps === undefined ? totalSteps : Math.min(totalSteps, this.stepsDone + checkCount('steps', steps));
    const losses: number[] = [];
    const started = performance.now();
    while (this.stepsDone < last) {
      const step = this.stepsDone;
      const lr = learningRate(step, config);
      const batch = await this.batch(stepExamples(examples, step, config));
      const adamw = { lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps, weightDecay: config.weightDecay };
      const dropout = { p: config.dropout, seed: (Math.imul(config.seed, 0x85ebca6b) ^ step) >>> 0 };
      const loss = await withAbortFlag('Training', signal, (abort) => this.native.step(batch, adamw, dropout, this.threads, { abort }));
      this.stepsDone++;
      losses.push(loss);
      const seconds = (performance.now() - started) / 1000;
      const samplesPerSecond = losses.length * config.batchSize / seconds;
      onProgress?.({
        step: this.stepsDone, totalSteps, epoch: Math.floor(step / config.stepsPerEpoch), loss, learningRate: lr, samplesPerSecond,
        etaSeconds: (last - this.stepsDone) * config.batchSize / samplesPerSecond,
      });
    }
    return { steps: losses.length, losses };
  }

  /**
   * Saves the trainable tensors, AdamW's moments, the step count and the config (whose seed fixes
   * the data order) to a GGUF, atomically. {@link Trainer.resume} continues exactly where this stopped.
   */
  async save(file: string): Promise<void> {
    if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'a path', file);
    if (!this.config) throw new VideoLlamaError('INVALID_ARGUMENT', 'Nothing to save: the trainer has not trained yet');
    const state: SavedState = { config: this.config, unfreeze: [...this.unfreeze] };
    await callNative(() => this.native.save(file, JSON.stringify(state)));
  }

  /** Writes a copy of the trainer's projector with the trained tensors (f32) in place: `Projector.load` reads it unchanged. */
  async exportProjector(file: string): Promise<void> {
    if (typeof file !== 'string' || file === '') throw invalidArgument('file', 'a path', file);
    await callNative(() => this.native.exportProjector(this.projector, file));
  }

  /**
   * What the branch (as trained so far) makes of one example's input (features or media, as
   * {@link Trainer.input} says): the soft prompt that replaces the media positions,
   * `queries × embeddingWidth` values (row-major), by the training graph.
   */
  async softPrompt(input: Pick<TrainingExample, 'features' | 'units'>): Promise<Float32Array> {
    if (!(input?.features instanceof Float32Array)) throw invalidArgument('features', 'a Float32Array', input?.features);
    if (!Number.isInteger(input.units) || input.units < 0) throw invalidArgument('units', 'a non-negative integer', input.units);
    const example = { features: input.features, units: input.units, tokens: new Int32Array(0), mediaOffset: 0, labels: new Int32Array(0) };
    return callNative(() => this.native.softPrompt(example, this.threads));
  }

  /** The trainable tensors' values, then AdamW's moments (`<name>.adam_m`, `<name>.adam_v`). */
  async tensors(): Promise<NamedTensor[]> {
    return callNative(() => this.native.tensors());
  }

  /**
   * Compares ggml's gradient of every entry of every trainable tensor with a central difference
   * (step `step`, default 1e-2) of the loss of `examples`. Costs two losses per entry: for tiny models.
   */
  async checkGradients(examples: readonly TrainingExample[], options: { step?: number } = {}): Promise<GradientCheckReport> {
    const batch = await this.batch(examples);
    return callNative(() => this.native.checkGradients(batch, options.step ?? 1e-2, this.threads));
  }

  /** Frees the tensors once the running step (if any) is over. */
  async dispose(): Promise<void> {
    await callNative(() => this.native.dispose());
  }

  private resolveConfig(overrides: Partial<TrainConfig>): TrainConfig {
    const stage = overrides.stage ?? this.config?.stage ?? 'stage2';
    if (stage !== 'stage1' && stage !== 'stage2') throw invalidArgument('stage', "'stage1' or 'stage2'", stage);
    const config: TrainConfig = { ...STAGE_CONFIGS[this.branch][stage], seed: 42, dropout: 0.1, ...this.config, ...definedOnly(overrides), stage };
    for (const key of ['epochs', 'stepsPerEpoch', 'batchSize'] as const) checkCount(key, config[key]);
    for (const key of ['initLr', 'minLr', 'warmupLr', 'warmupSteps', 'weightDecay', 'beta1', 'beta2', 'eps'] as const) {
      if (!Number.isFinite(config[key]) || config[key] < 0) throw invalidArgument(key, 'a finite number ≥ 0', config[key]);
    }
    if (!(config.dropout >= 0 && config.dropout < 1)) throw invalidArgument('dropout', 'a probability in [0, 1)', config.dropout);
    if (!Number.isInteger(config.seed) || config.seed < 0) throw invalidArgument('seed', 'a non-negative integer', config.seed);
    this.config = config;
    return config;
  }

  /** The examples as the addon takes them, lazy values read (checked first). */
  private async batch(examples: readonly TrainingExample[]): Promise<AddonBranchExample[]> {
    if (!Array.isArray(examples) || examples.length === 0) throw invalidArgument('examples', 'a non-empty array of TrainingExample', examples);
    examples.forEach((e, i) => this.check(e, i));
    return Promise.all(examples.map(async (e, i) => {
      const features = typeof e.features === 'function' ? await e.features() : e.features;
      if (!(features instanceof Float32Array)) throw invalidArgument(`examples[${i}].features`, 'a Float32Array (or a loader of one)', features);
      return { features, units: e.units, tokens: e.tokens, mediaOffset: e.mediaOffset, labels: e.labels };
    }));
  }

  private check(e: TrainingExample, i: number): void {
    if (e?.branch !== this.branch) throw invalidArgument(`examples[${i}].branch`, `'${this.branch}' (the trainer's branch)`, e?.branch);
    if ((e.input ?? 'features') !== this.input) throw invalidArgument(`examples[${i}].input`, `'${this.input}' (what this trainer reads)`, e.input ?? 'features');
    if (!(e.features instanceof Float32Array) && typeof e.features !== 'function') {
      throw invalidArgument(`examples[${i}].features`, 'a Float32Array or a loader of one', e.features);
    }
    for (const name of ['tokens', 'labels'] as const) {
      if (!(e[name] instanceof Int32Array)) throw invalidArgument(`examples[${i}].${name}`, 'an Int32Array', e[name]);
    }
    for (const name of ['units', 'mediaOffset'] as const) {
      if (!Number.isInteger(e[name]) || e[name] < 0) throw invalidArgument(`examples[${i}].${name}`, 'a non-negative integer', e[name]);
    }
  }
}

/** The parts to unfreeze, checked, without repeats, sorted (as checkpoints record them). */
function checkUnfreeze(parts: readonly UnfreezePart[], branch: TrainingBranch): UnfreezePart[] {
  if (!Array.isArray(parts)) throw invalidArgument('unfreeze', "an array of 'encoder' | 'qformer'", parts);
  for (const part of parts) {
    if (part !== 'encoder' && part !== 'qformer') throw invalidArgument('unfreeze', "an array of 'encoder' | 'qformer'", part);
    if (part === 'qformer' && branch === 'audio') throw invalidArgument('unfreeze', "'encoder' only for the audio branch (it has no BLIP-2 Q-Former)", part);
  }
  return [...new Set(parts)].sort();
}

function checkCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw invalidArgument(name, 'a positive integer', value);
  return value;
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The examples of optimizer step `step`: positions `step × batchSize …` of an endless stream that
 * visits every example once per epoch, in a new seeded order each epoch (a sampler with shuffling).
 */
export function stepExamples<T>(examples: readonly T[], step: number, config: Pick<TrainConfig, 'batchSize' | 'seed'>): T[] {
  const out: T[] = [];
  let order: number[] = [];
  let orderEpoch = -1;
  for (let position = step * config.batchSize; out.length < config.batchSize; position++) {
    const epoch = Math.floor(position / examples.length);
    if (epoch !== orderEpoch) {
      order = epochOrder(examples.length, config.seed, epoch);
      orderEpoch = epoch;
    }
    out.push(examples[order[position % examples.length]!]!);
  }
  return out;
}

/** A seeded Fisher–Yates permutation of 0..count-1 for one pass over the data. */
function epochOrder(count: number, seed: number, epoch: number): number[] {
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b9)) >>> 0);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
