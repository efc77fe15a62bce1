/**
 * Runs a training {@link Recipe}: manifests → frozen features (cached) → examples → one
 * {@link Trainer} per branch, checkpointed every `checkpointEvery` steps, resumable: a rerun after an
 * interruption continues from the last checkpoint (the trainer's data order and schedule depend
 * only on the step and the seed). Branches train one after the other; each one's result is a
 * projector file that the next starts from, so the output holds every trained branch.
 *
 * `<checkpointDir>/features/`          the frozen-feature cache (and media, for a recipe that unfreezes)
 * `<checkpointDir>/<branch>.ckpt.gguf` the branch's trainer state (tensors, AdamW moments, step)
 * `<checkpointDir>/<branch>.gguf`      the projector once the branch is done
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { defaultTemplateName } from '../chat/templates.js';
import { VideoLlamaError } from '../errors.js';
import { LlmModel } from '../llm/model.js';
import { Projector } from '../projector.js';
import type { ExampleInput, TrainingBranch, TrainingExample, UnfreezePart } from './example.js';
import { buildExamples } from './examples.js';
import { FeatureCache } from './features.js';
import { type BadEntry, BadEntries, readManifest } from './manifest.js';
import type { Recipe } from './recipe.js';
import { STAGE_CONFIGS } from './schedule.js';
import { modelTokenizer } from './template.js';
import { Trainer, type TrainProgress } from './trainer.js';

/** Entries turned into examples so far. */
export interface ExamplesEvent {
  /** Event kind. */
  type: 'examples';
  /** Entries done. */
  done: number;
  /** Entries in all. */
  total: number;
}

/** A bad entry was skipped. */
export interface BadEntryEvent {
  /** Event kind. */
  type: 'bad-entry';
  /** The entry. */
  entry: BadEntry;
}

/** A branch starts training, or resumes. */
export interface BranchEvent {
  /** Event kind. */
  type: 'branch';
  /** The branch. */
  branch: TrainingBranch;
  /** Its examples. */
  examples: number;
  /** Steps done before (a resumed checkpoint's), else 0. */
  resumedAt: number;
}

/** An optimizer step was done. */
export interface StepEvent {
  /** Event kind. */
  type: 'step';
  /** The branch. */
  branch: TrainingBranch;
  /** The trainer's progress: step, loss, samples/s, ETA. */
  progress: TrainProgress;
}

/** A checkpoint was written. */
export interface CheckpointEvent {
  /** Event kind. */
  type: 'checkpoint';
  /** The branch. */
  branch: TrainingBranch;
  /** Steps done. */
  step: number;
  /** The checkpoint file. */
  file: string;
}

/** What {@link runRecipe} reports while it runs. */
export type RecipeEvent = ExamplesEvent | BadEntryEvent | BranchEvent | StepEvent | CheckpointEvent;

/** Options of {@link runRecipe}. */
export interface RunRecipeOptions {
  /** Stops the run after the current step (a checkpoint is written first); rejects with ABORTED. */
  signal?: AbortSignal;
  /** Called with every {@link RecipeEvent}. */
  onEvent?: (event: RecipeEvent) => void;
}

/** What {@link runRecipe} did. */
export interface RunRecipeResult {
  /** The trained projector (`recipe.output`). */
  output: string;
  /** Examples per branch trained. */
  examples: Partial<Record<TrainingBranch, number>>;
  /** Bad entries skipped. */
  badEntries: BadEntry[];
}

const DEFAULT_CHECKPOINT_EVERY = 100;

/**
 * Trains what `recipe` says and writes `recipe.output`. Rejects with INVALID_MANIFEST (a bad entry
 * under `'fail'`), INVALID_ARGUMENT (no examples for a branch), ABORTED (after checkpointing), and
 * the errors of loading, decoding and training.
 */
export async function runRecipe(recipe: Recipe, options: RunRecipeOptions = {}): Promise<RunRecipeResult> {
  const { onEvent } = options;
  await fs.mkdir(recipe.checkpointDir, { recursive: true });
  const bad = new BadEntries(recipe.onBadEntry ?? 'fail', (entry) => onEvent?.({ type: 'bad-entry', entry }));
  const examples = await prepareExamples(recipe, bad, options);
  const counts: Partial<Record<TrainingBranch, number>> = {};
  let projector = recipe.projector;
  for (const branch of recipe.branches ?? (['video', 'audio'] as const).filter((b) => examples.has(b))) {
    const own = examples.get(branch) ?? [];
    if (own.length === 0) throw new VideoLlamaError('INVALID_ARGUMENT', `the manifests give no ${branch} example to train on`, { branch });
    counts[branch] = own.length;
    projector = await trainBranch(recipe, branch, projector, own, options);
  }
  await fs.mkdir(path.dirname(recipe.output), { recursive: true });
  await fs.copyFile(projector, recipe.output);
  return { output: recipe.output, examples: counts, badEntries: bad.list };
}

/** Every manifest's examples, by branch; the LLM and the projector are freed afterwards. */
async function prepareExamples(recipe: Recipe, bad: BadEntries, { signal, onEvent }: RunRecipeOptions): Promise<Map<TrainingBranch, TrainingExample[]>> {
  const stage = recipe.stage === 'stage1' ? 1 : 2;
  const entries = (await Promise.all(recipe.manifests.map((file) => readManifest(file, { stage, badEntries: bad })))).flat();
  const model = await LlmModel.load(recipe.llm);
  const projector = await Projector.load(recipe.projector, { threads: recipe.threads ?? 1 }).catch(async (error: unknown) => {
    await model.dispose();
    throw error;
  });
  try {
    const examples = await buildExamples({
      stage, entries, tokenizer: modelTokenizer(model), projector,
      template: recipe.template ?? defaultTemplateName(model.chatTemplate), masking: recipe.masking, format: recipe.format,
      cache: new FeatureCache(path.join(recipe.checkpointDir, 'features')),
      contextSize: recipe.contextSize ?? model.trainContextSize,
      badEntries: bad, branches: recipe.branches, frames: recipe.frames, clips: recipe.clips, signal,
      input: { video: inputOf(recipe, 'video'), audio: inputOf(recipe, 'audio') },
      onProgress: (done, total) => onEvent?.({ type: 'examples', done, total }),
    });
    const byBranch = new Map<TrainingBranch, TrainingExample[]>();
    for (const example of examples) byBranch.set(example.branch, [...(byBranch.get(example.branch) ?? []), example]);
    return byBranch;
  } finally {
    await projector.dispose();
    await model.dispose();
  }
}

/**
 * Trains one branch from `projector` (resuming its checkpoint when there is one) and returns the
 * projector file with the branch trained; a branch already done is not trained again.
 */
async function trainBranch(recipe: Recipe, branch: TrainingBranch, projector: string, examples: TrainingExample[],
  { signal, onEvent }: RunRecipeOptions): Promise<string> {
  const done = path.join(recipe.checkpointDir, `${branch}.gguf`);
  if (await exists(done)) return done;
  const checkpoint = path.join(recipe.checkpointDir, `${branch}.ckpt.gguf`);
  const trainerOptions = { llm: recipe.llm, projector, branch, threads: recipe.threads ?? 1, unfreeze: unfreezeOf(recipe, branch) };
  const trainer = (await exists(checkpoint)) ? await Trainer.resume(checkpoint, trainerOptions) : await Trainer.create(trainerOptions);
  try {
    onEvent?.({ type: 'branch', branch, examples: examples.length, resumedAt: trainer.steps });
    const config = { ...STAGE_CONFIGS[branch][recipe.stage], ...recipe.hyper, stage: recipe.stage, seed: recipe.seed ?? 42 };
    const total = config.epochs * config.stepsPerEpoch;
    while (trainer.steps < total) {
      const before = trainer.steps;
      try {
        await trainer.train(examples, {
          ...config, steps: recipe.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY, signal,
          onProgress: (progress) => onEvent?.({ type: 'step', branch, progress }),
        });
      } finally {
        if (trainer.steps > before) {
          await trainer.save(checkpoint);
          onEvent?.({ type: 'checkpoint', branch, step: trainer.steps, file: checkpoint });
        }
      }
    }
    // Export under a temporary name: the finished file's presence means "branch done".
    await trainer.exportProjector(`${done}.partial`);
    await fs.rename(`${done}.partial`, done);
    return done;
  } finally {
    await trainer.dispose();
  }
}

/** What the recipe unfreezes in `branch`: the audio branch has no BLIP-2 Q-Former, it trains the rest. */
function unfreezeOf(recipe: Recipe, branch: TrainingBranch): UnfreezePart[] {
  return (recipe.unfreeze ?? []).filter((part) => branch === 'video' || part !== 'qformer');
}

/** Media when the branch trains more than its head, else frozen features. */
function inputOf(recipe: Recipe, branch: TrainingBranch): ExampleInput {
  return unfreezeOf(recipe, branch).length > 0 ? 'media' : 'features';
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(() => true, () => false);
}
