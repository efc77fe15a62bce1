/**
 * The unfreeze options (issue 13): a trainer that also trains a branch's encoder (EVA ViT with its
 * patch embedding, or ImageBind audio with its conv stem) and/or the BLIP-2 Q-Former, on the same
 * builders as inference in training mode (differentiable LayerNorm, GELU, L2 norm; no CONCAT).
 * Every entry of every trainable tensor is differenced through the whole loss; resume is bit-equal;
 * the export loads and encodes to the trainer's soft prompt.
 */
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { Projector } from '../../src/index.js';
import type { UnfreezePart } from '../../src/train/example.js';
import { Trainer, type TrainOptions } from '../../src/train/trainer.js';
import { maxAbsDiff } from '../support/npy.js';
import { tempDir } from '../support/projector-files.js';
import { tinyTrainingFiles, TRAIN_SIZES, trainingExample } from '../support/training.js';

/** As train-branch-gradients.test.ts: the f32 loss's rounding (absolute) plus 1 % of the tensor's largest gradient. */
const TOLERANCE = { absolute: 3e-4, relative: 1e-2 };

const CASES: [branch: 'video' | 'audio', unfreeze: UnfreezePart[], prefixes: string[]][] = [
  ['video', ['encoder', 'qformer'], ['v.', 'qf.']],
  ['audio', ['encoder'], ['a.']],
];

let files: { llm: string; projector: string };
beforeAll(async () => {
  files = await tinyTrainingFiles();
});

describe.each(CASES)('the %s branch with %j unfrozen', (branch, unfreeze, prefixes) => {
  it('differentiates every entry of every trainable tensor (central differences)', async () => {
    const trainer = await Trainer.create({ ...files, branch, unfreeze });
    try {
      expect(trainer.input).toBe('media');
      for (const prefix of prefixes) expect(trainer.tensorNames.some((n) => n.startsWith(prefix))).toBe(true);
      const batch = [trainingExample(branch, 1, [50, 51, 52], 2, 'media'), trainingExample(branch, 2, [53, 54], 3, 'media')];
      const report = await trainer.checkGradients(batch, { step: 1e-2 });
      expect(report.tensors.map((t) => t.name)).toEqual(trainer.tensorNames);
      let worst = 0;
      for (const t of report.tensors) {
        worst = Math.max(worst, t.maxAbsError / (TOLERANCE.absolute + TOLERANCE.relative * t.maxAbsGradient));
        if (/_k\.bias$/.test(t.name)) {
          expect(t.maxAbsGradient).toBeLessThan(1e-6);  // softmax ignores a per-query constant
        } else {
          expect(t.maxAbsGradient, t.name).toBeGreaterThan(1e-4);
        }
        expect(t.maxAbsError, t.name).toBeLessThanOrEqual(TOLERANCE.absolute + TOLERANCE.relative * t.maxAbsGradient);
      }
      console.log(`${branch} [${unfreeze.join()}]: ${report.tensors.length} tensors, ${report.tensors.reduce((a, t) => a + t.entries, 0)} entries, worst error / tolerance ${worst.toFixed(2)}`);
    } finally {
      await trainer.dispose();
    }
  });

  it('resumes to the same bits, and exports a projector whose inference graph gives its soft prompt', async () => {
    const dir = tempDir('vl-train-enc-');
    const run: TrainOptions = { epochs: 1, stepsPerEpoch: 4, batchSize: 2, initLr: 1e-2, warmupSteps: 0, seed: 3, dropout: 0.1 };
    const examples = [1, 2, 3].map((seed) => trainingExample(branch, seed, [50 + seed, 60], 2, 'media'));
    const straight = await Trainer.create({ ...files, branch, unfreeze });
    const straightLosses = (await straight.train(examples, run)).losses;
    const expected = await straight.tensors();
    await straight.dispose();

    const checkpoint = path.join(dir, 'half.ckpt.gguf');
    const first = await Trainer.create({ ...files, branch, unfreeze });
    const firstLosses = (await first.train(examples, { ...run, steps: 2 })).losses;
    await first.save(checkpoint);
    await first.dispose();
    await expect(Trainer.resume(checkpoint, { ...files, branch })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const resumed = await Trainer.resume(checkpoint, { ...files, branch, unfreeze });
    try {
      const secondLosses = (await resumed.train(examples)).losses;
      expect([...firstLosses, ...secondLosses]).toEqual(straightLosses);
      const actual = await resumed.tensors();
      expect(actual.map((t) => t.name)).toEqual(expected.map((t) => t.name));
      for (let i = 0; i < expected.length; i++) expect(actual[i]!.values).toEqual(expected[i]!.values);

      const out = path.join(dir, 'trained.gguf');
      await resumed.exportProjector(out);
      await using original = await Projector.load(files.projector, { threads: 1 });
      await using trained = await Projector.load(out, { threads: 1 });
      const example = examples[0]!;
      const media = example.features as Float32Array;
      const { vit, imagebind } = TRAIN_SIZES;
      const shape = branch === 'video' ? [2, 3, vit.imageSize, vit.imageSize] : [2, 1, imagebind.melBins, imagebind.targetFrames];
      const encode = (p: Projector) => (branch === 'video' ? p.encodeVideo({ tensor: media, shape }) : p.encodeAudio({ tensor: media, shape }));
      const [before, after] = [await encode(original), await encode(trained)];
      expect(maxAbsDiff(after.data, before.data)).toBeGreaterThan(1e-3);
      const softPrompt = await resumed.softPrompt({ features: media, units: 2 });
      const diff = maxAbsDiff(after.data, softPrompt);
      console.log(`${branch}: exported projector's inference graph vs the trainer's soft prompt: maxdiff ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-5);
    } finally {
      await resumed.dispose();
    }
  });
});

describe('unfreeze options', () => {
  it('refuse a BLIP-2 Q-Former for the audio branch, unknown parts, and examples of the other input', async () => {
    await expect(Trainer.create({ ...files, branch: 'audio', unfreeze: ['qformer'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(Trainer.create({ ...files, branch: 'video', unfreeze: ['llm' as UnfreezePart] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const frozen = await Trainer.create({ ...files, branch: 'video' });
    const unfrozen = await Trainer.create({ ...files, branch: 'video', unfreeze: ['qformer'] });
    try {
      expect(frozen.input).toBe('features');
      expect(unfrozen.tensorNames.some((n) => n.startsWith('v.'))).toBe(false);  // the ViT stays frozen
      await expect(frozen.loss([trainingExample('video', 1, [50], 2, 'media')])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(unfrozen.loss([trainingExample('video', 1, [50])])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      // media of the wrong size
      const short = { ...trainingExample('video', 1, [50], 2, 'media'), units: 3 };
      await expect(unfrozen.loss([short])).rejects.toMatchObject({ code: 'DIMENSION_MISMATCH' });
      // media read per step from a loader
      const example = trainingExample('video', 1, [50], 2, 'media');
      const direct = await unfrozen.loss([example]);
      expect(await unfrozen.loss([{ ...example, features: async () => example.features as Float32Array }])).toBe(direct);
    } finally {
      await frozen.dispose();
      await unfrozen.dispose();
    }
  });
});
