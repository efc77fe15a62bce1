/**
 * Tiny training setups for test/model/train-*.test.ts: a synthetic projector at gradient-check
 * sizes beside a tiny LLaMA of the same width, and seeded examples of either branch.
 */
import path from 'node:path';

import { normalSource, randomMatrix } from '../../src/dev/random.js';
import { type ExampleInput, IGNORE_LABEL, type TrainingBranch, type TrainingExample } from '../../src/train/example.js';
import { tempDir } from './projector-files.js';
import { TINY_SIZES, writeSyntheticProjector, type SyntheticSizes } from './synthetic-projector.js';
import { tinyLlamaFile } from './tiny-llama.js';

/** LLM width of the tiny training setups. */
export const TRAIN_LLM_WIDTH = 16;

/**
 * Every trainable tensor small (Q-Former width 8, one layer, two queries; encoders 8 wide, one
 * block, 8×8 frames in 4×4 patches, 7×10 fbank in 6 patches) so that each entry can be differenced.
 */
export const TRAIN_SIZES: SyntheticSizes = {
  ...TINY_SIZES,
  llm: TRAIN_LLM_WIDTH,
  vit: { imageSize: 8, patch: 4, width: 8, depth: 1, heads: 2, mlp: 12 },
  qformer: { width: 8, heads: 2, ffn: 12, layers: 1, queries: 3, crossFreq: 1 },
  video: { layers: 1, queries: 2, maxFrames: 3 },
  audio: { layers: 1, queries: 2, maxClips: 3 },
  imagebind: { width: 8, depth: 1, heads: 2, mlp: 12, out: 6, patch: 4, stride: 3, melBins: 7, targetFrames: 10 },
};

/** A tiny LLaMA (one block, width {@link TRAIN_LLM_WIDTH}) and a synthetic projector of {@link TRAIN_SIZES}. */
export async function tinyTrainingFiles(): Promise<{ llm: string; projector: string }> {
  const projector = path.join(tempDir('vl-train-'), 'projector.gguf');
  await writeSyntheticProjector(projector, TRAIN_SIZES, 3);
  const llm = await tinyLlamaFile({ embeddingWidth: TRAIN_LLM_WIDTH, layers: 1, heads: 2, feedForwardWidth: 32 });
  return { llm, projector };
}

/**
 * A seeded example (frozen features, or with `input` `'media'` random frames / fbank): 2 text tokens, the branch's 2 media positions, then `answer` tokens, all
 * labelled (the original's targets: the answer only).
 */
export function trainingExample(branch: TrainingBranch, seed: number, answer: number[], units = 2, input: ExampleInput = 'features'): TrainingExample {
  const { qformer, imagebind, vit } = TRAIN_SIZES;
  const rowValues = input === 'media'
    ? (branch === 'video' ? 3 * vit.imageSize ** 2 : imagebind.melBins * imagebind.targetFrames)
    : (branch === 'video' ? qformer.queries * qformer.width : imagebind.out);
  const queries = branch === 'video' ? TRAIN_SIZES.video.queries : TRAIN_SIZES.audio.queries;
  const tokens = Int32Array.of(1, 40, ...new Array<number>(queries).fill(0), 41, ...answer);
  const labels = new Int32Array(tokens.length).fill(IGNORE_LABEL);
  for (let i = tokens.length - answer.length; i < tokens.length; i++) labels[i] = tokens[i]!;
  return { branch, input, features: randomMatrix(normalSource(seed), units * rowValues, 1), units, tokens, mediaOffset: 2, labels };
}
