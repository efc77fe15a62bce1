/**
 * The training graphs against the original PyTorch model: from the original's own frozen-stage
 * outputs (BLIP-2 Q-Former per frame; ImageBind audio embeddings), the trainable branch heads —
 * built by the shared builders in training mode, with the differentiable LayerNorm and GELU —
 * give the original's video_embeds / audio_embeds; with the encoders (and the BLIP-2 Q-Former)
 * unfrozen, the whole branch from the original's frames / fbank gives the inference graph's output
 * and the original's. And a trainer of an f16 projector exports a projector that Projector.load reads.
 */
import path from 'node:path';

import { beforeAll, expect, it } from 'vitest';

import { Projector } from '../../src/index.js';
import { IGNORE_LABEL } from '../../src/train/example.js';
import { Trainer } from '../../src/train/trainer.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { maxAbsDiff, readNpyF32 } from '../support/npy.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { F32_TOLERANCE } from '../support/stages.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';

const expected = (name: string) => readNpyF32(fixture(TINY_A, `expected/${name}.npy`));

describeWithFixtures(TINY_A, 'the trainable branch heads (tiny-a)', () => {
  const dir = tempDir('vl-train-parity-');
  let llm: string;
  let projector: string;
  beforeAll(async () => {
    llm = await tinyLlamaFile();  // width 96, tiny-a's llama_proj output
    projector = await convertFixture(TINY_A, 'f32', dir);
  });

  it.each([
    ['video', 'qformer', 'video_embeds'],
    ['audio', 'audio_imagebind', 'audio_embeds'],
  ] as const)('%s: the original\'s %s gives its %s (<= 1e-4)', async (branch, input, output) => {
    const trainer = await Trainer.create({ llm, projector, branch });
    try {
      const features = expected(input);
      const softPrompt = await trainer.softPrompt({ features: features.data, units: features.shape[0]! });
      const reference = expected(output);
      expect(softPrompt.length).toBe(reference.data.length);
      const diff = maxAbsDiff(softPrompt, reference.data);
      console.log(`training graph ${branch} head vs the original's ${output}: maxdiff ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(F32_TOLERANCE);
    } finally {
      await trainer.dispose();
    }
  });

  it.each([
    ['video', ['encoder', 'qformer'], 'video_embeds', 'inputs/frames.npy'],
    ['audio', ['encoder'], 'audio_embeds', 'inputs/fbank.npy'],
  ] as const)('%s with %j unfrozen: the whole branch in training mode gives the inference graph\'s output (<= 1e-5) and the original\'s %s', async (branch, unfreeze, output, input) => {
    const trainer = await Trainer.create({ llm, projector, branch, unfreeze: [...unfreeze] });
    await using inference = await Projector.load(projector, { threads: 1 });
    try {
      const media = readNpyF32(fixture(TINY_A, input));
      const softPrompt = await trainer.softPrompt({ features: media.data, units: media.shape[0]! });
      const tensor = { tensor: media.data, shape: media.shape };
      const encoded = branch === 'video' ? await inference.encodeVideo(tensor) : await inference.encodeAudio(tensor);
      const [vsInference, vsOriginal] = [maxAbsDiff(softPrompt, encoded.data), maxAbsDiff(softPrompt, expected(output).data)];
      console.log(`training graph, whole ${branch} branch: vs the inference graph ${vsInference.toExponential(2)}, vs the original's ${output} ${vsOriginal.toExponential(2)}`);
      expect(vsInference).toBeLessThanOrEqual(1e-5);
      expect(vsOriginal).toBeLessThanOrEqual(F32_TOLERANCE);
    } finally {
      await trainer.dispose();
    }
  });

  it('exports a trained f16 projector that Projector.load reads, its frozen part unchanged', async () => {
    const f16 = await convertFixture(TINY_A, 'f16', dir);
    const trainer = await Trainer.create({ llm, projector: f16, branch: 'audio' });
    try {
      const clips = expected('audio_imagebind');
      const tokens = Int32Array.of(1, 40, ...new Array<number>(trainer.queries).fill(0), 41, 50, 51);
      const labels = new Int32Array(tokens.length).fill(IGNORE_LABEL);
      labels.set([50, 51], tokens.length - 2);
      const example = { branch: 'audio' as const, features: clips.data.subarray(0, 2 * clips.shape[1]!), units: 2, tokens, mediaOffset: 2, labels };
      await trainer.train([example], { epochs: 1, stepsPerEpoch: 2, batchSize: 1, initLr: 1e-3, warmupSteps: 0 });
      const out = path.join(dir, 'trained-f16.gguf');
      await trainer.exportProjector(out);

      await using original = await Projector.load(f16, { threads: 1 });
      await using trained = await Projector.load(out, { threads: 1 });
      const fbank = readNpyF32(fixture(TINY_A, 'inputs/fbank.npy'));
      const input = { tensor: fbank.data.subarray(0, (2 * fbank.data.length) / fbank.shape[0]!), shape: [2, ...fbank.shape.slice(1)] };
      const [before, after] = [await original.encodeWithStages('audio', input), await trained.encodeWithStages('audio', input)];
      // ImageBind is not trained: the same bits; the trained head moved the embedding.
      expect(after.stages.audio_imagebind!.data).toEqual(before.stages.audio_imagebind!.data);
      expect(maxAbsDiff(after.embedding.data, before.embedding.data)).toBeGreaterThan(1e-3);
      // The exported (f32) head in the inference graph gives the trainer's soft prompt of those features.
      const softPrompt = await trainer.softPrompt({ features: after.stages.audio_imagebind!.data, units: 2 });
      expect(maxAbsDiff(after.embedding.data, softPrompt)).toBeLessThan(1e-5);
    } finally {
      await trainer.dispose();
    }
  });
});
