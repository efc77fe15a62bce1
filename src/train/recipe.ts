/**
 * Training recipes: the JSON file `video-llama train <recipe.json>` runs, checked against a JSON
 * schema (ajv) before anything loads. Paths are relative to the recipe's folder.
 *
 * ```json
 * {
 *   "stage": "stage2",
 *   "manifests": ["../data/train/stage2.jsonl"],
 *   "llm": "../models/llm.gguf",
 *   "projector": "../runs/stage1/projector.gguf",
 *   "output": "../runs/stage2/projector.gguf",
 *   "checkpointDir": "../runs/stage2",
 *   "seed": 42,
 *   "hyper": { "epochs": 3, "stepsPerEpoch": 1000, "batchSize": 4, "initLr": 3e-5 }
 * }
 * ```
 *
 * The demo model's language model has a recipe of its own, `pretrainLlm`'s options with `out`
 * relative to the recipe: `{ "stage": "llm", "options": { "out": "../runs/llm", "steps": 4000 } }`
 * (training/demo-llm.json).
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { Ajv, type ErrorObject, type JSONSchemaType } from 'ajv';

import type { TemplateName } from '../chat/templates.js';
import { invalidArgument, VideoLlamaError } from '../errors.js';
import type { TrainingBranch, UnfreezePart } from './example.js';
import type { PretrainLlmOptions } from './llm-pretrain.js';
import type { BadEntryPolicy } from './manifest.js';
import type { StageConfig, TrainingStage } from './schedule.js';
import type { Stage2Format, VicunaMasking } from './template.js';

/** A training recipe, as read from its file (paths resolved against the recipe's folder). */
export interface Recipe {
  /** The paper's stage: `stage1` (captions) or `stage2` (instructions); it picks the manifests' kind and the default settings. */
  stage: TrainingStage;
  /** JSONL manifests (see src/train/manifest.ts): captions for stage 1, conversations for stage 2. */
  manifests: string[];
  /** The frozen LLM GGUF (f32 or f16 weights). */
  llm: string;
  /** The projector GGUF whose branches are trained. */
  projector: string;
  /** Where the trained projector GGUF is written. */
  output: string;
  /** Checkpoints, the frozen-feature cache and per-branch results; a rerun resumes from here. */
  checkpointDir: string;
  /** Seed of the data order; default 42 (the original's). */
  seed?: number;
  /** Branches to train, in order; default every branch the projector has. */
  branches?: TrainingBranch[];
  /**
   * Parts trained beyond the paper's head (default none): `"encoder"` (EVA ViT / ImageBind audio)
   * and `"qformer"` (the BLIP-2 Q-Former; the video branch only: the audio branch takes the rest).
   * The examples then carry preprocessed media (cached as f16 beside the features) instead of
   * frozen features. The demo's encoders are pre-trained this way (docs/training.md).
   */
  unfreeze?: UnfreezePart[];
  /** Stage 2's template; default as the chat picks it for the LLM. */
  template?: TemplateName;
  /** Stage 2's prompt: `'original'` (the original's instruction data, default) or `'chat'` (the chat's prompt at inference). */
  format?: Stage2Format;
  /** Stage 2's Vicuna masking in the `'original'` format; default `'aligned'`. */
  masking?: VicunaMasking;
  /** Frames per video; default 8. */
  frames?: number;
  /** Clips per sound; default 8. */
  clips?: number;
  /** Bad manifest entries: `'skip'` (reported) or `'fail'`; default `'fail'`. */
  onBadEntry?: BadEntryPolicy;
  /** Longest prompt in positions; default the LLM's training context. */
  contextSize?: number;
  /** CPU threads; default 1. */
  threads?: number;
  /** Optimizer steps between checkpoints; default 100. */
  checkpointEvery?: number;
  /** The optimizer and schedule; unset values are the original's for the branch and stage (`STAGE_CONFIGS`). */
  hyper?: Partial<StageConfig>;
}

const positiveInteger = { type: 'integer', minimum: 1 } as const;
const nonNegative = { type: 'number', minimum: 0 } as const;
const path_ = { type: 'string', minLength: 1 } as const;

/** The recipe's JSON schema. */
export const RECIPE_SCHEMA: JSONSchemaType<Recipe> = {
  type: 'object',
  additionalProperties: false,
  required: ['stage', 'manifests', 'llm', 'projector', 'output', 'checkpointDir'],
  properties: {
    stage: { type: 'string', enum: ['stage1', 'stage2'] },
    manifests: { type: 'array', items: path_, minItems: 1 },
    llm: path_,
    projector: path_,
    output: path_,
    checkpointDir: path_,
    seed: { type: 'integer', minimum: 0, nullable: true },
    branches: { type: 'array', items: { type: 'string', enum: ['video', 'audio'] }, minItems: 1, uniqueItems: true, nullable: true },
    unfreeze: { type: 'array', items: { type: 'string', enum: ['encoder', 'qformer'] }, uniqueItems: true, nullable: true },
    template: { type: 'string', enum: ['llama2', 'vicuna'], nullable: true },
    format: { type: 'string', enum: ['original', 'chat'], nullable: true },
    masking: { type: 'string', enum: ['aligned', 'original'], nullable: true },
    frames: { ...positiveInteger, nullable: true },
    clips: { ...positiveInteger, nullable: true },
    onBadEntry: { type: 'string', enum: ['skip', 'fail'], nullable: true },
    contextSize: { ...positiveInteger, nullable: true },
    threads: { ...positiveInteger, nullable: true },
    checkpointEvery: { ...positiveInteger, nullable: true },
    hyper: {
      type: 'object',
      nullable: true,
      additionalProperties: false,
      required: [],
      properties: {
        epochs: { ...positiveInteger, nullable: true },
        stepsPerEpoch: { ...positiveInteger, nullable: true },
        batchSize: { ...positiveInteger, nullable: true },
        warmupSteps: { type: 'integer', minimum: 0, nullable: true },
        initLr: { ...nonNegative, nullable: true },
        minLr: { ...nonNegative, nullable: true },
        warmupLr: { ...nonNegative, nullable: true },
        weightDecay: { ...nonNegative, nullable: true },
        beta1: { type: 'number', minimum: 0, exclusiveMaximum: 1, nullable: true },
        beta2: { type: 'number', minimum: 0, exclusiveMaximum: 1, nullable: true },
        eps: { type: 'number', exclusiveMinimum: 0, nullable: true },
      },
    },
  },
};

/**
 * A recipe of the LLM's pretraining on our own LLaMA graph (docs/training.md, "Pretraining the demo
 * LLM"): {@link PretrainLlmOptions}, which `pretrainLlm` checks itself, with `out` resolved against
 * the recipe's folder.
 */
export interface LlmRecipe {
  stage: 'llm';
  /** What the recipe is for, for people. */
  description?: string;
  options: PretrainLlmOptions;
}

/** The outer shape of an {@link LlmRecipe}; its options are pretrainLlm's to check. */
const LLM_RECIPE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['stage', 'options'],
  properties: {
    stage: { const: 'llm' },
    description: { type: 'string' },
    options: { type: 'object', required: ['out', 'steps'], properties: { out: path_ } },
  },
} as const;

const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile(RECIPE_SCHEMA);
const validateLlm = ajv.compile<LlmRecipe>(LLM_RECIPE_SCHEMA);

/** ajv's errors as one line each: `/hyper/batchSize must be >= 1`. */
function describeErrors(errors: readonly ErrorObject[]): string[] {
  return errors.map((e) => {
    const where = e.instancePath || '(the recipe)';
    if (e.keyword === 'additionalProperties') return `${where} has an unknown field "${String(e.params.additionalProperty)}"`;
    if (e.keyword === 'enum') return `${where} must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    return `${where} ${e.message ?? 'is invalid'}`;
  });
}

/**
 * Checks a recipe object against {@link RECIPE_SCHEMA} and resolves its paths against `baseDir`.
 * Throws INVALID_ARGUMENT listing every fault (`details.errors`).
 */
export function parseRecipe(value: unknown, baseDir: string): Recipe {
  if (!validate(value)) throw recipeErrors(validate.errors);
  const at = (file: string) => path.resolve(baseDir, file);
  return {
    ...value, manifests: value.manifests.map(at), llm: at(value.llm), projector: at(value.projector), output: at(value.output), checkpointDir: at(value.checkpointDir),
  };
}

function recipeErrors(found: readonly ErrorObject[] | null | undefined): VideoLlamaError {
  const errors = describeErrors(found ?? []);
  return new VideoLlamaError('INVALID_ARGUMENT', `invalid training recipe:\n  ${errors.join('\n  ')}`, { errors });
}

/** Checks an {@link LlmRecipe} and resolves `options.out` against `baseDir`. Throws INVALID_ARGUMENT listing every fault. */
export function parseLlmRecipe(value: unknown, baseDir: string): LlmRecipe {
  if (!validateLlm(value)) throw recipeErrors(validateLlm.errors);
  return { ...value, options: { ...value.options, out: path.resolve(baseDir, value.options.out) } };
}

/** True when a parsed recipe file is an {@link LlmRecipe} (its `stage` is `"llm"`). */
function isLlmRecipe(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { stage?: unknown }).stage === 'llm';
}

/** Reads and checks a recipe file: a branch {@link Recipe}, or an {@link LlmRecipe} when its `stage` is `"llm"`. Rejects with FILE_NOT_FOUND, or INVALID_ARGUMENT for bad JSON or a recipe the schema refuses. */
export async function loadRecipe(file: string): Promise<Recipe | LlmRecipe> {
  if (typeof file !== 'string' || file === '') throw invalidArgument('recipe', 'a recipe file path', file);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new VideoLlamaError('FILE_NOT_FOUND', `the recipe ${file} cannot be read: ${(error as Error).message}`, { file }, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `the recipe ${file} is not JSON: ${(error as Error).message}`, { file }, { cause: error });
  }
  const baseDir = path.dirname(path.resolve(file));
  return isLlmRecipe(value) ? parseLlmRecipe(value, baseDir) : parseRecipe(value, baseDir);
}
