/**
 * Our bf16 kernels (matrix product and attention, AVX-512 BF16) against ggml's kernels on the same
 * bf16 projector: the same embeddings up to bf16 rounding of activations. Sizes that exercise
 * every edge: 257 tokens per frame (not a whole number of 12-row tiles or 32-key panels), head
 * size 16 (padded to a panel), several frames and clips. f32 projectors never use them.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { tinyProjector, writeRandomProjector } from '../../src/dev/random-projector.js';
import { Projector, type TensorInput } from '../../src/projector.js';
import { tempDir } from '../support/projector-files.js';

const CPU_HAS_BF16 = fs.existsSync('/proc/cpuinfo') && /\bavx512_bf16\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
// Both paths round activations to bf16, at different points (ours also the attention's inputs and weights).
const MIN_COSINE = 0.9995;

/** Per-row cosine similarity, the smallest. */
function minCosine(a: Float32Array, b: Float32Array, width: number): number {
  let min = 1;
  for (let r = 0; r < a.length / width; r++) {
    let dot = 0, na = 0, nb = 0;
    for (let i = r * width; i < (r + 1) * width; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
    }
    min = Math.min(min, dot / Math.sqrt(na * nb));
  }
  return min;
}

/** Deterministic inputs in [-1, 1). */
function input(shape: number[], seed: number): TensorInput {
  let state = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  return { tensor: Float32Array.from({ length: n }, () => 2 * ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 1), shape };
}

async function encodeBoth(projector: Projector): Promise<{ video: Float32Array; audio: Float32Array }> {
  const { imageSize, melBins, targetFrames } = projector.info;
  const video = await projector.encodeVideo(input([3, 3, imageSize, imageSize], 1));
  const audio = await projector.encodeAudio(input([2, 1, melBins, targetFrames], 2));
  return { video: video.data, audio: audio.data };
}

async function loadWithKernels(file: string, kernels: 'own' | 'ggml'): Promise<Projector> {
  const saved = process.env.VIDEO_LLAMA_KERNELS;
  process.env.VIDEO_LLAMA_KERNELS = kernels; // read while the weights are prepared
  try {
    return await Projector.load(file, { threads: 2, gpu: false });
  } finally {
    if (saved === undefined) delete process.env.VIDEO_LLAMA_KERNELS;
    else process.env.VIDEO_LLAMA_KERNELS = saved;
  }
}

describe('own bf16 kernels', () => {
  const dir = tempDir('video-llama-kernels-');
  const hparams = tinyProjector(96);
  const loaded: Projector[] = [];
  afterEach(async () => {
    for (const p of loaded.splice(0)) await p.dispose();
  });

  it.skipIf(!CPU_HAS_BF16)('run every linear layer of a bf16 projector and agree with ggml', async () => {
    const file = path.join(dir, 'bf16.gguf');
    await writeRandomProjector(file, hparams, 'bf16');
    const own = await loadWithKernels(file, 'own');
    const ggml = await loadWithKernels(file, 'ggml');
    loaded.push(own, ggml);
    expect(own.info.ownKernelLayers).toBeGreaterThan(0);
    expect(ggml.info.ownKernelLayers).toBe(0);

    const a = await encodeBoth(own), b = await encodeBoth(ggml);
    const video = minCosine(a.video, b.video, hparams.llmWidth), audio = minCosine(a.audio, b.audio, hparams.llmWidth);
    console.log(`own vs ggml kernels: min cosine video ${video.toFixed(6)}, audio ${audio.toFixed(6)}`);
    expect(video).toBeGreaterThanOrEqual(MIN_COSINE);
    expect(audio).toBeGreaterThanOrEqual(MIN_COSINE);
    // the same call twice gives the same bits (no state leaks between calls)
    expect((await encodeBoth(own)).video).toEqual(a.video);
  });

  it('leave f32 projectors on ggml', async () => {
    const file = path.join(dir, 'f32.gguf');
    await writeRandomProjector(file, hparams, 'f32');
    const projector = await loadWithKernels(file, 'own');
    loaded.push(projector);
    expect(projector.info.ownKernelLayers).toBe(0);
  });
});
