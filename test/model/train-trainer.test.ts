import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { IGNORE_LABEL } from '../../src/train/example.js';
import { learningRate, STAGE_CONFIGS } from '../../src/train/schedule.js';
import { stepExamples, Trainer, type TrainOptions } from '../../src/train/trainer.js';
import { tempDir } from '../support/projector-files.js';
import { tinyTrainingFiles, trainingExample } from '../support/training.js';

describe('the original\'s schedule and data order', () => {
  it('warms up linearly in epoch 0, then follows a cosine per epoch (LAVIS linear_warmup_cosine_lr)', () => {
    const r = { ...STAGE_CONFIGS.video.stage2, stepsPerEpoch: 10, warmupSteps: 4, epochs: 3 };
    expect(learningRate(0, r)).toBe(r.warmupLr);
    expect(learningRate(2, r)).toBeCloseTo(r.warmupLr + (r.initLr - r.warmupLr) / 2, 12);
    expect(learningRate(4, r)).toBe(r.initLr);
    expect(learningRate(9, r)).toBe(r.initLr);
    expect(learningRate(10, r)).toBeCloseTo((r.initLr - r.minLr) * 0.75 + r.minLr, 12);  // cos(π/3) = 1/2
    expect(learningRate(29, r)).toBeCloseTo((r.initLr - r.minLr) * 0.25 + r.minLr, 12);
    const { video, audio } = STAGE_CONFIGS;
    expect([video.stage1.initLr, video.stage1.batchSize, video.stage2.initLr, video.stage2.batchSize]).toEqual([1e-4, 32, 3e-5, 4]);
    expect([video.stage2.warmupSteps, audio.stage2.warmupSteps, audio.stage1.stepsPerEpoch]).toEqual([1000, 400, 5000]);
  });

  it('visits every example once per epoch, in a seeded order that changes every epoch', () => {
    const items = Array.from({ length: 7 }, (_, i) => i);
    const epoch = (e: number, seed: number): number[] => stepExamples(items, e, { batchSize: 7, seed });
    for (const e of [0, 1, 2]) expect([...epoch(e, 5)].sort()).toEqual(items);
    expect(epoch(0, 5)).toEqual(epoch(0, 5));
    expect(epoch(0, 5)).not.toEqual(epoch(1, 5));
    expect(epoch(0, 5)).not.toEqual(epoch(0, 6));
    // Batches straddle epochs: steps of 3 cover the stream in order.
    expect([0, 1, 2, 3].flatMap((s) => stepExamples(items, s, { batchSize: 3, seed: 5 })).slice(0, 12)).toEqual([...epoch(0, 5), ...epoch(1, 5)].slice(0, 12));
  });
});

describe('the branch trainer', () => {
  let files: { llm: string; projector: string };
  const dir = tempDir('vl-trainer-');
  beforeAll(async () => {
    files = await tinyTrainingFiles();
  });

  /** A short run with a high learning rate and a warm-up inside it. */
  const RUN: TrainOptions = { epochs: 1, stepsPerEpoch: 6, batchSize: 2, initLr: 1e-2, warmupLr: 1e-3, warmupSteps: 3, seed: 7, dropout: 0.1 };

  it.each(['video', 'audio'] as const)('%s: AdamW steps lower the loss of their examples', async (branch) => {
    const trainer = await Trainer.create({ ...files, branch });
    try {
      const examples = [trainingExample(branch, 1, [50, 51]), trainingExample(branch, 2, [52, 53], 3)];
      const before = await trainer.loss(examples);
      const result = await trainer.train(examples, { ...RUN, batchSize: 2, dropout: 0 });
      expect(result.steps).toBe(6);
      expect(result.losses[0]).toBeCloseTo(before, 5);  // a step reports the loss before its update (no dropout here)
      expect(await trainer.loss(examples)).toBeLessThan(before * 0.95);
      expect(trainer.steps).toBe(6);
    } finally {
      await trainer.dispose();
    }
  });

  it('takes the original\'s batch loss: the mean over every labelled position of the batch', async () => {
    const trainer = await Trainer.create({ ...files, branch: 'video' });
    try {
      const a = trainingExample('video', 1, [50, 51, 52]);  // 3 labelled positions
      const b = trainingExample('video', 2, [53], 3);       // 1
      const [both, alone, other] = [await trainer.loss([a, b]), await trainer.loss([a]), await trainer.loss([b])];
      expect(both).toBeCloseTo((3 * alone + other) / 4, 5);
      expect(Math.abs(alone - other)).toBeGreaterThan(1e-3);  // not trivially equal to the plain mean
    } finally {
      await trainer.dispose();
    }
  });

  it('drops out Q-Former activations in training steps only, with seeded masks', async () => {
    const examples = [trainingExample('audio', 1, [50, 51])];
    const firstStepLoss = async (options: TrainOptions): Promise<number> => {
      const trainer = await Trainer.create({ ...files, branch: 'audio' });
      try {
        return (await trainer.train(examples, { ...RUN, batchSize: 1, steps: 1, ...options })).losses[0]!;
      } finally {
        await trainer.dispose();
      }
    };
    const [plain, dropped, again, otherSeed] = await Promise.all([
      firstStepLoss({ dropout: 0 }), firstStepLoss({ dropout: 0.1 }), firstStepLoss({ dropout: 0.1 }), firstStepLoss({ dropout: 0.1, seed: 8 }),
    ]);
    expect(Math.abs(dropped - plain)).toBeGreaterThan(1e-4);
    expect(again).toBe(dropped);
    expect(Math.abs(otherSeed - dropped)).toBeGreaterThan(1e-6);
  });

  it('resumes from a checkpoint to the same bits as an uninterrupted run (dropout on)', async () => {
    const examples = [1, 2, 3].map((seed) => trainingExample('video', seed, [50 + seed, 60]));
    const straight = await Trainer.create({ ...files, branch: 'video' });
    const straightLosses = (await straight.train(examples, RUN)).losses;
    const expected = await straight.tensors();
    await straight.dispose();

    const checkpoint = path.join(dir, 'half.ckpt.gguf');
    const first = await Trainer.create({ ...files, branch: 'video' });
    const firstLosses = (await first.train(examples, { ...RUN, steps: 3 })).losses;
    await first.save(checkpoint);
    await first.dispose();
    const resumed = await Trainer.resume(checkpoint, { ...files, branch: 'video' });
    expect(resumed.steps).toBe(3);
    const secondLosses = (await resumed.train(examples)).losses;  // the checkpoint's recipe and data order
    const actual = await resumed.tensors();
    await resumed.dispose();

    expect([...firstLosses, ...secondLosses]).toEqual(straightLosses);

    // An aborted run keeps the steps it finished, whole: going on gives the same run again.
    const aborted = await Trainer.create({ ...files, branch: 'video' });
    const controller = new AbortController();
    const seen: number[] = [];
    await expect(aborted.train(examples, {
      ...RUN, signal: controller.signal, onProgress: (p) => { seen.push(p.loss); if (p.step === 2) controller.abort(); },
    })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(aborted.steps).toBe(2);
    const rest = (await aborted.train(examples)).losses;
    await aborted.dispose();
    expect([...seen, ...rest]).toEqual(straightLosses);
    expect(actual.map((t) => t.name)).toEqual(expected.map((t) => t.name));
    expect(actual.some((t) => t.name.endsWith('.adam_v'))).toBe(true);
    for (let i = 0; i < expected.length; i++) expect(actual[i]!.values).toEqual(expected[i]!.values);
  });

  it('rejects bad examples and checkpoints with typed errors', async () => {
    const trainer = await Trainer.create({ ...files, branch: 'audio' });
    try {
      const good = trainingExample('audio', 1, [50]);
      await expect(trainer.loss([trainingExample('video', 1, [50])])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(trainer.loss([{ ...good, units: good.units + 1 }])).rejects.toMatchObject({ code: 'DIMENSION_MISMATCH' });
      await expect(trainer.loss([{ ...good, units: trainer.maxUnits + 1 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(trainer.loss([{ ...good, labels: new Int32Array(good.tokens.length).fill(IGNORE_LABEL) }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(trainer.loss([])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(trainer.train([good], { batchSize: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(trainer.train([good], { dropout: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(trainer.save(path.join(dir, 'x.gguf'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });  // nothing trained yet
      await expect(Trainer.resume(path.join(dir, 'missing.gguf'), { ...files, branch: 'audio' })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
      await expect(Trainer.resume(files.projector, { ...files, branch: 'audio' })).rejects.toMatchObject({ code: 'INVALID_MODEL' });
      const controller = new AbortController();
      controller.abort();
      await expect(trainer.train([good], { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
      await expect(Trainer.create({ ...files, branch: 'speech' as 'audio' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      await trainer.dispose();
    }
  });

});
