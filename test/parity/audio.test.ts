/**
 * Audio branch against the original PyTorch model, stage by stage: ImageBind audio (stem, trunk
 * with bias_k/bias_v, head, L2 normalisation × logit scale), clip positions, audio Q-Former,
 * audio_llama_proj; f32 within 1e-4.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Projector } from '../../src/projector.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { readNpyF32, type NpyArray } from '../support/npy.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { expectStage, F32_TOLERANCE, leadingInput, QUANTIZED_TOLERANCE } from '../support/stages.js';

// Measured on tiny-a: f16 ≈ 5e-3, bf16 ≈ 5e-2 (audio_imagebind, ×20 logit scale), q8_0 ≈ 6e-2.
const STAGES = ['audio_imagebind_feature', 'audio_imagebind', 'audio_qformer_input', 'audio_qformer'] as const;

describeWithFixtures(TINY_A, 'audio parity (tiny-a)', () => {
  let dir: string;
  let projector: Projector;
  let fbank: NpyArray<Float32Array>;


  beforeAll(async () => {
    dir = tempDir('video-llama-audio-');
    projector = await Projector.load(await convertFixture(TINY_A, 'f32', dir), { threads: 1 });
    fbank = readNpyF32(fixture(TINY_A, 'inputs/fbank.npy'));
  });
  afterAll(async () => projector?.dispose());

  it('encodes the fixture clips (M=8) like the reference at every stage (f32)', async () => {
    const { embedding, stages } = await projector.encodeWithStages('audio', leadingInput(fbank, fbank.shape[0]!));
    for (const stage of STAGES) expectStage(TINY_A, stage, stages[stage]!.data, F32_TOLERANCE);
    expectStage(TINY_A, 'audio_embeds', embedding.data, F32_TOLERANCE);
    // Stage nodes are graph outputs only when read back; the embedding is the same either way.
    expect((await projector.encodeAudio(leadingInput(fbank, fbank.shape[0]!))).data).toEqual(embedding.data);
    expect(embedding).toMatchObject({ kind: 'audio', tokens: projector.info.audioQueries, dim: projector.info.llmWidth });
  });

  // ImageBind encodes each clip on its own and clip m's position row depends only on m, so the
  // first M clips give the first M rows of the M=8 reference up to the audio Q-Former's input.
  it.each([1, 2, 3, 4, 5, 6, 7])('runs the per-clip stages of %i clip(s) like the reference', async (m) => {
    const { embedding, stages } = await projector.encodeWithStages('audio', leadingInput(fbank, m));
    for (const stage of STAGES.slice(0, 3)) expectStage(TINY_A, stage, stages[stage]!.data, F32_TOLERANCE, m);
    expect(stages.audio_qformer_input!.shape).toEqual([m, stages.audio_imagebind!.shape[1]]);
    expect(embedding.data.length).toBe(projector.info.audioQueries * projector.info.llmWidth);
    expect(embedding.data.every(Number.isFinite)).toBe(true);
  });

  it.each(['f16', 'bf16', 'q8_0'] as const)('stays within %s bounds of the reference', async (type) => {
    await using quantized = await Projector.load(await convertFixture(TINY_A, type, dir), { threads: 1 });
    const { embedding, stages } = await quantized.encodeWithStages('audio', leadingInput(fbank, fbank.shape[0]!));
    console.log(`-- ${type}`);
    for (const stage of STAGES) expectStage(TINY_A, stage, stages[stage]!.data, QUANTIZED_TOLERANCE[type]);
    expectStage(TINY_A, 'audio_embeds', embedding.data, QUANTIZED_TOLERANCE[type]);
  });
});
