/**
 * Our kernels against ggml's on the same projector: bf16 (matrix product and attention, AVX-512
 * BF16) and q8_0 (8-bit product, AVX-512 VNNI) give the same embeddings up to the rounding of
 * activations. Sizes that exercise every edge: 257 tokens per frame (not a whole number of 12-row
 * tiles or 32-key panels), head sizes 16 and 32 (padded to / one panel), several frames and clips.
 * f32 projectors never use them.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ProjectorHparams, QformerHparams } from '../../src/convert/hparams.js';
import { tinyProjector, writeRandomProjector } from '../../src/dev/random-projector.js';
import { Projector, type TensorInput } from '../../src/projector.js';
import { tempDir } from '../support/projector-files.js';

const CPU_FLAGS = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
const CPU_HAS_BF16 = /\bavx512_bf16\b/.test(CPU_FLAGS);
const CPU_HAS_VNNI = /\bavx512_vnni\b/.test(CPU_FLAGS) && CPU_HAS_BF16;
// bf16: both paths round activations to bf16, at different points (ours also the attention's
// inputs). q8_0: ggml quantizes activations per 32 values, ours per 128 (and requantizes the
// weights per 128), so the two differ by about twice q8_0's own error. Measured: bf16 ≈ 0.99998,
// q8_0 ≈ 0.9998.
const MIN_COSINE = { bf16: 0.9995, q8_0: 0.999 } as const;

/** tinyProjector with 128-wide layers: the 8-bit kernel needs inputs in blocks of 128. */
function int8Sized(): ProjectorHparams {
  const base = tinyProjector(128);
  const qf = (q: QformerHparams, encoderWidth: number): QformerHparams => ({ ...q, width: 128, ffnWidth: 256, heads: 4, encoderWidth });
  return {
    ...base,
    vision: {
      ...base.vision!,
      vit: { ...base.vision!.vit, width: 128, mlpWidth: 256 },
      qformer: qf(base.vision!.qformer, 128),
      videoQformer: qf(base.vision!.videoQformer, 128),
    },
    audio: {
      ...base.audio!,
      imagebind: { ...base.audio!.imagebind, width: 128, mlpWidth: 256, outWidth: 128 },
      audioQformer: qf(base.audio!.audioQformer, 128),
    },
  };
}

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

describe('own kernels', () => {
  const dir = tempDir('video-llama-kernels-');
  const hparams = tinyProjector(96);
  const loaded: Projector[] = [];
  afterEach(async () => {
    for (const p of loaded.splice(0)) await p.dispose();
  });

  it.for([
    { type: 'bf16', hparams, supported: CPU_HAS_BF16 },
    { type: 'q8_0', hparams: int8Sized(), supported: CPU_HAS_VNNI },
  ] as const)('run the linear layers of a $type projector and agree with ggml', async ({ type, hparams: sizes, supported }, { skip }) => {
    if (!supported) skip(); // the CPU lacks the instructions: ggml runs everything (covered by the parity tests)
    const file = path.join(dir, `${type}.gguf`);
    await writeRandomProjector(file, sizes, type);
    const own = await loadWithKernels(file, 'own');
    const ggml = await loadWithKernels(file, 'ggml');
    loaded.push(own, ggml);
    expect(own.info.ownKernelLayers).toBeGreaterThan(0);
    expect(ggml.info.ownKernelLayers).toBe(0);

    const a = await encodeBoth(own), b = await encodeBoth(ggml);
    const video = minCosine(a.video, b.video, sizes.llmWidth), audio = minCosine(a.audio, b.audio, sizes.llmWidth);
    console.log(`${type}: own vs ggml kernels: min cosine video ${video.toFixed(6)}, audio ${audio.toFixed(6)}`);
    expect(video).toBeGreaterThanOrEqual(MIN_COSINE[type]);
    expect(audio).toBeGreaterThanOrEqual(MIN_COSINE[type]);
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
