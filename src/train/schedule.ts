/**
 * The original's optimisation recipe: AdamW with LAVIS's `linear_warmup_cosine_lr` schedule, and
 * the hyper-parameters of Video-LLaMA's train configs (train_configs/*branch_stage{1,2}_*.yaml).
 * @module
 */
import type { TrainingBranch } from './example.js';

/** AdamW and learning-rate schedule hyper-parameters. */
export interface OptimizerSchedule {
  /** Peak learning rate (`init_lr`), reached at the end of the warm-up. */
  initLr: number;
  /** Learning rate of the cosine's last epoch end (`min_lr`). */
  minLr: number;
  /** Learning rate of the first warm-up step (`warmup_lr`). */
  warmupLr: number;
  /** Steps of the linear warm-up, counted in the first epoch only (`warmup_steps`). */
  warmupSteps: number;
  /** AdamW's decoupled weight decay of the tensors with two or more dimensions (`weight_decay`). */
  weightDecay: number;
  /** AdamW's β₁; the original keeps PyTorch's 0.9. */
  beta1: number;
  /** AdamW's β₂ (`beta2`, default 0.999). */
  beta2: number;
  /** AdamW's ε; PyTorch's 1e-8. */
  eps: number;
}

/** A stage's whole configuration: the schedule, and how many steps of how many examples. */
export interface StageConfig extends OptimizerSchedule {
  /** `max_epoch`. */
  epochs: number;
  /** Optimizer steps per epoch (`iters_per_epoch`). */
  stepsPerEpoch: number;
  /** Examples per optimizer step (`batch_size_train` on one GPU). */
  batchSize: number;
}

/** The original's two training stages: 1, pre-training on captions; 2, instruction tuning. */
export type TrainingStage = 'stage1' | 'stage2';

const ADAMW = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, warmupLr: 1e-6 } as const;
const STAGE1 = { ...ADAMW, initLr: 1e-4, minLr: 8e-5, epochs: 5, batchSize: 32 } as const;
const STAGE2 = { ...ADAMW, initLr: 3e-5, minLr: 1e-5, epochs: 3, stepsPerEpoch: 1000, batchSize: 4 } as const;

/**
 * The original's run settings of each branch and stage (train_configs/visionbranch_stage{1,2}_*.yaml
 * and audiobranch_stage{1,2}_*.yaml): only the warm-up and epoch lengths differ between branches.
 */
export const STAGE_CONFIGS: Readonly<Record<TrainingBranch, Readonly<Record<TrainingStage, Readonly<StageConfig>>>>> = Object.freeze({
  video: Object.freeze({
    stage1: Object.freeze({ ...STAGE1, warmupSteps: 2500, stepsPerEpoch: 2500 }),
    stage2: Object.freeze({ ...STAGE2, warmupSteps: 1000 }),
  }),
  audio: Object.freeze({
    stage1: Object.freeze({ ...STAGE1, warmupSteps: 5000, stepsPerEpoch: 5000 }),
    stage2: Object.freeze({ ...STAGE2, warmupSteps: 400 }),
  }),
});

/**
 * The learning rate of optimizer step `step` (0-based) as LAVIS's LinearWarmupCosineLRScheduler
 * sets it: in epoch 0, linear from `warmupLr` to `initLr` over `warmupSteps` steps (then held);
 * from epoch 1 on, one value per epoch on a cosine from `initLr` (epoch 0) to `minLr` (epoch `epochs`).
 */
export function learningRate(step: number, config: Pick<StageConfig, 'initLr' | 'minLr' | 'warmupLr' | 'warmupSteps' | 'epochs' | 'stepsPerEpoch'>): number {
  const epoch = Math.floor(step / config.stepsPerEpoch);
  if (epoch === 0) {
    const rising = config.warmupLr + (config.initLr - config.warmupLr) * step / Math.max(config.warmupSteps, 1);
    return Math.min(config.initLr, rising);
  }
  return (config.initLr - config.minLr) * 0.5 * (1 + Math.cos(Math.PI * epoch / config.epochs)) + config.minLr;
}
