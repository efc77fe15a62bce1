/**
 * Vision branch against the original PyTorch model, stage by stage: EVA ViT-g + ln_vision, BLIP-2
 * Q-Former, frame positions, video Q-Former, llama_proj; f32 within 1e-4, f16 / q8_0 within
 * stated bounds.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Projector } from '../../src/projector.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { readNpyF32, type NpyArray } from '../support/npy.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { expectStage, F32_TOLERANCE, leadingInput, QUANTIZED_TOLERANCE } from '../support/stages.js';

// Measured on tiny-a: f16 ≈ 2e-3, bf16 ≈ 2e-2, q8_0 ≈ 6e-2 (weights and, on the CPU, activations rounded to 8 bits).
const STAGES = ['vit', 'qformer', 'video_qformer_input', 'video_qformer'] as const;

describeWithFixtures(TINY_A, 'vision parity (tiny-a)', () => {
  let dir: string;
  let projector: Projector;
  let frames: NpyArray<Float32Array>;


  beforeAll(async () => {
    dir = tempDir('video-llama-vision-');
    projector = await Projector.load(await convertFixture(TINY_A, 'f32', dir), { threads: 1 });
    frames = readNpyF32(fixture(TINY_A, 'inputs/frames.npy'));
  });
  afterAll(async () => projector?.dispose());

  it('encodes the fixture video (T=8) like the reference at every stage (f32)', async () => {
    const { embedding, stages } = await projector.encodeWithStages('video', leadingInput(frames, frames.shape[0]!));
    for (const stage of STAGES) expectStage(TINY_A, stage, stages[stage]!.data, F32_TOLERANCE);
    expectStage(TINY_A, 'video_embeds', embedding.data, F32_TOLERANCE);
    // Stage nodes are graph outputs only when read back; the embedding is the same either way.
    expect((await projector.encodeVideo(leadingInput(frames, frames.shape[0]!))).data).toEqual(embedding.data);
    expect(embedding).toMatchObject({ kind: 'video', tokens: projector.info.videoQueries, dim: projector.info.llmWidth });
    expect(stages.vit!.shape).toEqual(readNpyF32(fixture(TINY_A, 'expected/vit.npy')).shape);
  });

  it('encodes frame 0 as an image like the reference (f32)', async () => {
    const image = await projector.encodeImage({ tensor: leadingInput(frames, 1).tensor, shape: frames.shape.slice(1) });
    expect(image).toMatchObject({ kind: 'image', tokens: projector.info.videoQueries, dim: projector.info.llmWidth });
    expectStage(TINY_A, 'image_embeds', image.data, F32_TOLERANCE);
  });

  // The ViT and the BLIP-2 Q-Former work per frame, and frame t's position row depends only on t,
  // so the first T frames of any video give the first T frames' rows of the T=8 reference.
  it.each([1, 3])('runs the per-frame stages of a %i-frame video like the reference', async (t) => {
    const { embedding, stages } = await projector.encodeWithStages('video', leadingInput(frames, t));
    expectStage(TINY_A, 'vit', stages.vit!.data, F32_TOLERANCE, t);
    expectStage(TINY_A, 'qformer', stages.qformer!.data, F32_TOLERANCE, t);
    const [, queries, width] = stages.qformer!.shape as [number, number, number];
    expectStage(TINY_A, 'video_qformer_input', stages.video_qformer_input!.data, F32_TOLERANCE, t * queries);
    expect(stages.video_qformer_input!.shape).toEqual([t * queries, width]);
    expect(embedding.data.length).toBe(projector.info.videoQueries * projector.info.llmWidth);
    if (t === 1) expectStage(TINY_A, 'image_embeds', embedding.data, F32_TOLERANCE);
  });

  it.each(['f16', 'bf16', 'q8_0'] as const)('stays within %s bounds of the reference', async (type) => {
    await using quantized = await Projector.load(await convertFixture(TINY_A, type, dir), { threads: 1 });
    const { embedding, stages } = await quantized.encodeWithStages('video', leadingInput(frames, frames.shape[0]!));
    console.log(`-- ${type}`);
    for (const stage of STAGES) expectStage(TINY_A, stage, stages[stage]!.data, QUANTIZED_TOLERANCE[type]);
    expectStage(TINY_A, 'video_embeds', embedding.data, QUANTIZED_TOLERANCE[type]);
  });
});
