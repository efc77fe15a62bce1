/**
 * Our kernels against ggml's on the same projector, on every instruction set of ours this CPU has
 * (VIDEO_LLAMA_CPU_ISA caps it, so an AVX-512 machine also runs the AVX2 kernels, with and without
 * AVX-VNNI): bf16 and f16 (AVX-512 BF16: bf16 products and attention; AVX2: 16-bit weights
 * widened to f32, and the AVX2 attention) and q8_0 (8-bit products: AVX-512 VNNI, AVX-VNNI, or AVX2's vpmaddubsw on 7-bit
 * weights) give the same embeddings as ggml up to the rounding of weights and activations, and
 * stay close to the f32 projector with the same weights. Sizes that exercise every edge: 257
 * tokens per frame (not a whole number of 4- or 6-row tiles, 8-lane rows or 32-key panels), 230
 * keys in the audio attention, head sizes 16 and 32 (padded to / one panel), 32 and 8 queries
 * (part of a query block), several frames and clips. f32 projectors never use them.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ProjectorWeightType } from '../../src/convert/convert.js';
import type { ProjectorHparams, QformerHparams } from '../../src/convert/hparams.js';
import { tinyProjector, writeRandomProjector } from '../../src/dev/random-projector.js';
import { VideoLlamaError } from '../../src/errors.js';
import { Projector, type TensorInput } from '../../src/projector.js';
import { tempDir } from '../support/projector-files.js';
import { minRowCosine } from '../support/stages.js';

const CPU_FLAGS = new Set((fs.existsSync('/proc/cpuinfo') ? /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '' : '').trim().split(/\s+/));
const has = (...flags: string[]) => flags.every((f) => CPU_FLAGS.has(f));
type IsaLevel = 'avx512' | 'avxvnni' | 'avx2';
/** Our instruction sets this CPU runs (AVX-512 counted where it has both BF16 and VNNI). */
const ISA_LEVELS: IsaLevel[] = [
  ...(has('avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512_bf16', 'avx512_vnni') ? ['avx512' as const] : []),
  ...(has('avx2', 'fma', 'f16c', 'avx_vnni') ? ['avxvnni' as const] : []),
  ...(has('avx2', 'fma', 'f16c') ? ['avx2' as const] : []),
];
type KernelType = 'bf16' | 'f16' | 'q8_0';
// Per-token cosine, own kernels vs ggml's on the same file. bf16 on AVX-512: both round activations
// to bf16, at different points (ours also the attention's inputs). f16 / bf16 on AVX2: ours keeps
// activations in f32 (K and V in f16 inside the attention), ggml rounds them to the weights' type.
// q8_0: ggml quantizes activations per 32 values, ours per 128 (and requantizes the weights per
// 128, to 7 bits on avx2). Measured (avx512 / avxvnni / avx2): bf16 0.99998 / 0.99999 / 0.99999,
// f16 0.99997 / 1.000000 / 1.000000, q8_0 0.99972 / 0.99974 / 0.99928.
const MIN_COSINE_VS_GGML: Record<KernelType, number> = { bf16: 0.9995, f16: 0.9995, q8_0: 0.999 };
// Per-token cosine, own kernels vs the f32 projector with the same weights before rounding (what
// the weight type itself costs, plus the above). Measured (avx512 / avxvnni / avx2): bf16 0.99997 /
// 0.99999 / 0.99999, f16 0.99997 / 1.000000 / 1.000000, q8_0 0.99971 / 0.99965 / 0.99917 (the
// AVX-512 and AVX-VNNI 8-bit kernels compute the same sums; AVX2's 7-bit weights cost the rest).
const MIN_COSINE_VS_F32: Record<KernelType, number> = { bf16: 0.9995, f16: 0.9995, q8_0: 0.999 };

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

/** Loads `file` with VIDEO_LLAMA_CPU_ISA set (it is read while the weights are prepared). */
async function loadWithIsa(file: string, isa: IsaLevel | 'none'): Promise<Projector> {
  const saved = process.env.VIDEO_LLAMA_CPU_ISA;
  process.env.VIDEO_LLAMA_CPU_ISA = isa;
  try {
    return await Projector.load(file, { threads: 2, gpu: false });
  } finally {
    if (saved === undefined) delete process.env.VIDEO_LLAMA_CPU_ISA;
    else process.env.VIDEO_LLAMA_CPU_ISA = saved;
  }
}

describe('own kernels', () => {
  const dir = tempDir('video-llama-kernels-');
  const loaded: Projector[] = [];
  afterEach(async () => {
    for (const p of loaded.splice(0)) await p.dispose();
  });
  const fileOf = async (type: ProjectorWeightType, sizes: ProjectorHparams, name: string) => {
    const file = path.join(dir, `${name}-${type}.gguf`);
    if (!fs.existsSync(file)) await writeRandomProjector(file, sizes, type);
    return file;
  };
  const load = async (file: string, isa: IsaLevel | 'none') => {
    const projector = await loadWithIsa(file, isa);
    loaded.push(projector);
    return projector;
  };
  // ggml's embeddings of a file, computed once (the baselines of several cases)
  const baselines = new Map<string, Promise<{ video: Float32Array; audio: Float32Array }>>();
  const ggmlEmbeddings = (file: string) => {
    if (!baselines.has(file)) baselines.set(file, loadWithIsa(file, 'none').then(async (p) => {
      try {
        expect(p.info.ownKernelLayers).toBe(0);
        return await encodeBoth(p);
      } finally {
        await p.dispose();
      }
    }));
    return baselines.get(file)!;
  };

  const cases = ISA_LEVELS.flatMap((isa) => (['bf16', 'f16', 'q8_0'] as const).map((type) => ({ isa, type })));
  it('cover at least one instruction set on an x86-64 CPU with AVX2', () => {
    expect(ISA_LEVELS.length > 0 || !has('avx2', 'fma', 'f16c')).toBe(true);
  });

  it.for(cases)('run the linear layers of a $type projector on $isa and agree with ggml and f32', async ({ isa, type }) => {
    const [sizes, name] = type === 'q8_0' ? [int8Sized(), 'int8'] : [tinyProjector(96), 'tiny'];
    const file = await fileOf(type, sizes, name);
    const own = await load(file, isa);
    expect(own.info.ownKernelLayers).toBeGreaterThan(0);

    const a = await encodeBoth(own), b = await ggmlEmbeddings(file), ref = await ggmlEmbeddings(await fileOf('f32', sizes, name));
    const width = sizes.llmWidth;
    const vsGgml = Math.min(minRowCosine(a.video, b.video, width), minRowCosine(a.audio, b.audio, width));
    const vsF32 = Math.min(minRowCosine(a.video, ref.video, width), minRowCosine(a.audio, ref.audio, width));
    console.log(`${type} on ${isa}: min cosine vs ggml ${vsGgml.toFixed(6)}, vs f32 ${vsF32.toFixed(6)}`);
    expect(vsGgml).toBeGreaterThanOrEqual(MIN_COSINE_VS_GGML[type]);
    expect(vsF32).toBeGreaterThanOrEqual(MIN_COSINE_VS_F32[type]);
    // the same call twice gives the same bits (no state leaks between calls)
    expect((await encodeBoth(own)).video).toEqual(a.video);
  });

  it('leave f32 projectors on ggml', async () => {
    const projector = await load(await fileOf('f32', tinyProjector(96), 'tiny'), ISA_LEVELS[0] ?? 'none');
    expect(projector.info.ownKernelLayers).toBe(0);
  });

  it('reject an unknown VIDEO_LLAMA_CPU_ISA', async () => {
    const file = await fileOf('bf16', tinyProjector(96), 'tiny');
    const error = await loadWithIsa(file, 'sse2' as IsaLevel).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(VideoLlamaError);
    expect((error as VideoLlamaError).code).toBe('INVALID_ARGUMENT');
    expect((error as VideoLlamaError).message).toMatch(/VIDEO_LLAMA_CPU_ISA is 'sse2'/);
  });
});
