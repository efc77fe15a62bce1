import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Trainer } from '../../src/train/trainer.js';
import { tinyTrainingFiles, trainingExample } from '../support/training.js';

/**
 * Per tensor, max over its entries of |ggml's gradient − central difference (step 1e-2)|. The f32
 * loss (~10) rounds at ~1e-6, i.e. ~1e-4 per difference quotient: the absolute part; measured at
 * most 1.7e-4 on either branch.
 */
const TOLERANCE = { absolute: 3e-4, relative: 1e-2 };

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
    for (const t of report.tensors) {
      console.log(`${t.name}: ${t.entries} entries, max |analytic - numeric| ${t.maxAbsError.toExponential(2)}, max |gradient| ${t.maxAbsGradient.toExponential(2)}`);
      if (/_k\.bias$/.test(t.name)) {
        // A key bias adds the same score to every key of a query: softmax ignores it, exactly.
        expect(t.maxAbsGradient).toBeLessThan(1e-6);
      } else {
        expect(t.maxAbsGradient).toBeGreaterThan(1e-3);
      }
      expect(t.maxAbsError).toBeLessThanOrEqual(TOLERANCE.absolute + TOLERANCE.relative * t.maxAbsGradient);
    }
  });
});
