/**
 * The encoder graphs at sizes unlike the fixtures' (a projector written from the format
 * document with random weights): output shapes follow the file, frames and clips are encoded
 * independently of each other, and the parts that need no reference (frame / clip position rows,
 * L2 normalisation × logit scale) hold exactly.
 */
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Projector } from '../../src/projector.js';
import { maxAbsDiff } from '../support/npy.js';
import { tempDir } from '../support/projector-files.js';
import { writeSyntheticProjector, type SyntheticSizes } from '../support/synthetic-projector.js';

const SIZES: SyntheticSizes = {
  llm: 40,
  vit: { imageSize: 70, patch: 16, width: 32, depth: 3, heads: 2, mlp: 72 }, // 70/16 → a 4×4 grid, the rest cut off
  qformer: { width: 48, heads: 3, ffn: 80, layers: 3, queries: 6, crossFreq: 2 },
  video: { layers: 1, queries: 5, maxFrames: 7 },
  audio: { layers: 3, queries: 4, maxClips: 5 },
  imagebind: { width: 24, depth: 2, heads: 3, mlp: 56, out: 20, patch: 16, stride: 10, melBins: 48, targetFrames: 60 },
};
const TOLERANCE = 1e-5;

/** Deterministic inputs in [-1, 1). */
function randomTensor(n: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: n }, () => 2 * ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 1);
}

/** Row `row` of a C-order [rows, width] array. */
const rowOf = (data: Float32Array, width: number, row: number): Float32Array => data.subarray(row * width, (row + 1) * width);

describe('projector at other sizes', () => {
  let projector: Projector;
  let weights: Map<string, Float32Array>;

  beforeAll(async () => {
    const file = path.join(tempDir('video-llama-sizes-'), 'synthetic.gguf');
    weights = await writeSyntheticProjector(file, SIZES);
    projector = await Projector.load(file, { threads: 1 });
  });
  afterAll(async () => projector?.dispose());

  it('reads every size from the file', () => {
    expect(projector.info).toMatchObject({
      llmWidth: SIZES.llm, imageSize: SIZES.vit.imageSize, videoQueries: SIZES.video.queries, maxFrames: SIZES.video.maxFrames,
      audioQueries: SIZES.audio.queries, maxClips: SIZES.audio.maxClips, melBins: SIZES.imagebind.melBins, targetFrames: SIZES.imagebind.targetFrames,
    });
  });

  it('encodes video frames independently, then adds frame t\'s position row to all its queries', async () => {
    const { imageSize: s } = projector.info;
    const frameSize = 3 * s * s;
    const t = SIZES.video.maxFrames;
    const frames = randomTensor(t * frameSize, 3);
    const all = await projector.encodeWithStages('video', { tensor: frames, shape: [t, 3, s, s] });
    const { width: h, queries } = SIZES.qformer;
    const tokens = Math.floor(SIZES.vit.imageSize / SIZES.vit.patch) ** 2 + 1;
    expect(all.stages.vit!.shape).toEqual([t, tokens, SIZES.vit.width]);
    expect(all.stages.qformer!.shape).toEqual([t, queries, h]);
    expect(all.stages.video_qformer_input!.shape).toEqual([t * queries, h]);
    expect(all.stages.video_qformer!.shape).toEqual([SIZES.video.queries, h]);
    expect(all.embedding).toMatchObject({ tokens: SIZES.video.queries, dim: SIZES.llm });
    expect(all.embedding.data.every(Number.isFinite)).toBe(true);

    // Frames 2..4 alone: the same ViT and Q-Former rows as in the 7-frame batch.
    const some = await projector.encodeWithStages('video', { tensor: frames.subarray(2 * frameSize, 5 * frameSize), shape: [3, 3, s, s] });
    /** Frames [first, first + count) of a per-frame stage of the 7-frame run. */
    const framesOf = (data: Float32Array, first: number, count: number): Float32Array =>
      data.subarray((first * data.length) / t, ((first + count) * data.length) / t);
    const vitDiff = maxAbsDiff(some.stages.vit!.data, framesOf(all.stages.vit!.data, 2, 3));
    const qformerDiff = maxAbsDiff(some.stages.qformer!.data, framesOf(all.stages.qformer!.data, 2, 3));
    console.log(`frames 2..4 alone vs in the batch: vit maxdiff ${vitDiff.toExponential(2)}, qformer maxdiff ${qformerDiff.toExponential(2)}`);
    expect(vitDiff).toBeLessThanOrEqual(TOLERANCE);
    expect(qformerDiff).toBeLessThanOrEqual(TOLERANCE);

    // video_qformer_input[t, q] - qformer[t, q] = frame_pos_embd row t, for every query q.
    const positions = weights.get('vid.frame_pos_embd')!;
    let positionDiff = 0;
    for (let frame = 0; frame < t; frame++) {
      for (let q = 0; q < queries; q++) {
        const row = frame * queries + q;
        const added = rowOf(all.stages.video_qformer_input!.data, h, row).map((v, i) => v - all.stages.qformer!.data[row * h + i]!);
        positionDiff = Math.max(positionDiff, maxAbsDiff(added, rowOf(positions, h, frame)));
      }
    }
    expect(positionDiff).toBeLessThanOrEqual(TOLERANCE);
  });

  it('encodes audio clips independently, L2-normalised × logit scale, plus clip m\'s position row', async () => {
    const { melBins, targetFrames, maxClips: m } = projector.info;
    const clipSize = melBins * targetFrames;
    const fbank = randomTensor(m * clipSize, 5);
    const all = await projector.encodeWithStages('audio', { tensor: fbank, shape: [m, 1, melBins, targetFrames] });
    const out = SIZES.imagebind.out;
    expect(all.stages.audio_imagebind_feature!.shape).toEqual([m, SIZES.imagebind.width]);
    expect(all.stages.audio_imagebind!.shape).toEqual([m, out]);
    expect(all.stages.audio_qformer!.shape).toEqual([SIZES.audio.queries, SIZES.qformer.width]);
    expect(all.embedding).toMatchObject({ kind: 'audio', tokens: SIZES.audio.queries, dim: SIZES.llm });

    const positions = weights.get('aud.pos_embd')!;
    for (let clip = 0; clip < m; clip++) {
      const embedding = rowOf(all.stages.audio_imagebind!.data, out, clip);
      expect(Math.hypot(...embedding)).toBeCloseTo(20, 4);
      const added = rowOf(all.stages.audio_qformer_input!.data, out, clip).map((v, i) => v - embedding[i]!);
      expect(maxAbsDiff(added, rowOf(positions, out, clip))).toBeLessThanOrEqual(TOLERANCE);
    }

    const last = await projector.encodeWithStages('audio', { tensor: fbank.subarray((m - 1) * clipSize), shape: [1, 1, melBins, targetFrames] });
    const alone = maxAbsDiff(last.stages.audio_imagebind!.data, rowOf(all.stages.audio_imagebind!.data, out, m - 1));
    console.log(`last clip alone vs in the batch: audio_imagebind maxdiff ${alone.toExponential(2)}`);
    expect(alone).toBeLessThanOrEqual(TOLERANCE);
  });
});
