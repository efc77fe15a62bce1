import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Trainer } from '../../src/train/trainer.js';
import { tinyTrainingFiles, trainingExample } from '../support/training.js';

let files: { llm: string; projector: string };
beforeAll(async () => {
  files = await tinyTrainingFiles();
});

describe.each(['video', 'audio'] as const)('the %s branch gradients', (branch) => {
  let trainer: Trainer;
  beforeAll(async () => {
    trainer = await Trainer.create({ ...files, branch });
  });
  afterAll(() => trainer.dispose());

  it('match central differences on every entry of every trainable tensor', async () => {
    const batch = [trainingExample(branch, 1, [50, 51, 52]), trainingExample(branch, 2, [53, 54], 3)];
    const report = await trainer.checkGradients(batch, { step: 1e-2 });
    expect(report.tensors.map((t) => t.name)).toEqual(trainer.tensorNames);
    for (const t of report.tensors) console.log(t.name, t.entries, t.maxAbsError, t.maxAbsGradient);
  });
});
