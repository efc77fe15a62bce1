/**
 * A random-weight projector GGUF at any sizes — the release's, for benchmarks, or tiny ones,
 * for the demo — with exactly the tensors and metadata the converter writes
 * (docs/projector-format.md). Initialisation follows the usual PyTorch scales, so activations
 * stay in a realistic range; the outputs mean nothing.
 * @internal
 * @module
 */
import { FILE_TYPES, outputType, type ProjectorWeightType } from '../convert/convert.js';
import type { ProjectorHparams, QformerHparams } from '../convert/hparams.js';
import { projectorMetadata } from '../convert/metadata.js';
import { projectorTensors, type TensorSpec } from '../convert/tensor-map.js';
import { quantizeRows } from '../gguf/quantize.js';
import { GgufWriter } from '../gguf/writer.js';
import { cachedFile, normalSource, randomMatrix } from './random.js';

const qformer = (width: number, layers: number, queries: number, crossAttentionFreq: number, encoderWidth: number, heads: number): QformerHparams => ({
  width, heads, layers, ffnWidth: 4 * width, queries, crossAttentionFreq, encoderWidth,
});

/** Video-LLaMA's real sizes (EVA ViT-g, BLIP-2 Q-Former, ImageBind-huge audio) for a 7B LLM. */
export const RELEASE_PROJECTOR: ProjectorHparams = {
  llmWidth: 4096,
  vision: {
    vit: { imageSize: 224, patchSize: 14, width: 1408, depth: 39, heads: 16, mlpWidth: 6144, patches: 256 },
    qformer: qformer(768, 12, 32, 2, 1408, 12),
    videoQformer: qformer(768, 2, 32, 1, 768, 12),
    maxFrames: 32,
  },
  audio: {
    imagebind: { width: 768, depth: 12, heads: 12, mlpWidth: 3072, outWidth: 1024, patchSize: 16, patchStride: 10, patches: 228, logitScale: 20 },
    audioQformer: qformer(768, 2, 8, 1, 1024, 12),
    maxClips: 8,
  },
};

/** Small sizes that keep the whole pipeline fast, for a given LLM width. */
export function tinyProjector(llmWidth: number): ProjectorHparams {
  return {
    llmWidth,
    vision: {
      vit: { imageSize: 224, patchSize: 14, width: 64, depth: 2, heads: 4, mlpWidth: 256, patches: 256 },
      qformer: qformer(64, 2, 32, 2, 64, 4),
      videoQformer: qformer(64, 2, 32, 1, 64, 4),
      maxFrames: 32,
    },
    audio: {
      imagebind: { width: 64, depth: 2, heads: 4, mlpWidth: 256, outWidth: 64, patchSize: 16, patchStride: 10, patches: 228, logitScale: 20 },
      audioQformer: qformer(64, 2, 8, 1, 64, 4),
      maxClips: 8,
    },
  };
}

/**
 * The demo model's projector sizes (issue 13): the release's topology scaled down to what two
 * CPU cores can pre-train in hours and what fits the 25 MB demo package beside its LLM. Frames are
 * 112² (8×8 patches of 14 px) instead of 224², the encoders 96 wide and 4 deep; the query counts
 * (32 video, 8 audio) and the audio front end (128-bin fbank, 228 patches) are the release's.
 */
export function demoProjector(llmWidth = 256): ProjectorHparams {
  return {
    llmWidth,
    vision: {
      vit: { imageSize: 112, patchSize: 14, width: 96, depth: 4, heads: 4, mlpWidth: 384, patches: 64 },
      qformer: qformer(64, 2, 32, 2, 96, 4),
      videoQformer: qformer(64, 2, 32, 1, 64, 4),
      maxFrames: 32,
    },
    audio: {
      imagebind: { width: 96, depth: 4, heads: 4, mlpWidth: 384, outWidth: 96, patchSize: 16, patchStride: 10, patches: 228, logitScale: 20 },
      audioQformer: qformer(64, 2, 8, 1, 96, 4),
      maxClips: 8,
    },
  };
}

/** The PyTorch-style initial values of one tensor, chosen by its role. */
function randomValues(spec: TensorSpec, normal: () => number): Float32Array {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const name = spec.name;
  if (name.endsWith('.bias')) return randomMatrix(normal, count, 0.1);
  if (/(^|[._])(ln\d?|ln_vision|emb_ln|self_ln|cross_ln|ffn_ln|patch_ln|head_ln)\.weight$/.test(name)) return randomMatrix(normal, count, 0.1, 1);
  if (spec.storage === 'matrix') return randomMatrix(normal, count, 1 / Math.sqrt(spec.shape[0]!));
  if (spec.storage === 'conv') return randomMatrix(normal, count, 1 / Math.sqrt(spec.shape.slice(0, 3).reduce((a, b) => a * b, 1)));
  if (name === 'vid.frame_pos_embd' || name === 'aud.pos_embd') return randomMatrix(normal, count, 1); // nn.Embedding
  return randomMatrix(normal, count, 0.5); // cls tokens, positional embeddings, query tokens, bias_k/v
}

/** Writes a random projector with `hparams` and big matrices of `type`. */
export async function writeRandomProjector(file: string, hparams: ProjectorHparams, type: ProjectorWeightType = 'f32', seed = 1): Promise<void> {
  const normal = normalSource(seed);
  const writer = new GgufWriter();
  for (const [key, value] of projectorMetadata(hparams)) writer.set(key, value);
  writer.set('general.file_type', { type: 'u32', value: FILE_TYPES[type] });
  writer.set('general.name', { type: 'string', value: 'random-weight projector (outputs are meaningless)' });
  for (const spec of projectorTensors(hparams)) {
    const stored = outputType(spec, type);
    writer.addTensor(spec.name, spec.shape, stored, () => quantizeRows(randomValues(spec, normal), spec.shape[0]!, stored));
  }
  await writer.write(file);
}

/** {@link writeRandomProjector} into `cacheDir`, once per distinct set of arguments. */
export function cachedRandomProjector(cacheDir: string, hparams: ProjectorHparams, type: ProjectorWeightType = 'f32', seed = 1): Promise<string> {
  return cachedFile(cacheDir, `random-projector-${type}`, { v: 1, hparams, type, seed }, (file) => writeRandomProjector(file, hparams, type, seed));
}
