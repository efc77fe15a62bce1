/**
 * The projector's metadata (docs/projector-format.md, "Metadata"): every size read from the
 * checkpoints and the constants fixed by the original code, under the keys of `gguf/keys.ts`.
 * @internal
 * @module
 */
import { GGUF_KEYS as KEY, GGUF_QFORMERS, ggufName, PROJECTOR_ARCHITECTURE } from '../gguf/keys.js';
import type { GgufValue } from '../gguf/writer.js';
import type { QformerKind } from './checkpoints.js';
import { FIXED, type ProjectorHparams, type QformerHparams } from './hparams.js';

const u32 = (value: number): GgufValue => ({ type: 'u32', value });
const f32 = (value: number): GgufValue => ({ type: 'f32', value });

function qformerMetadata(kind: QformerKind, h: QformerHparams): [string, GgufValue][] {
  const key = (template: string): string => ggufName(template, GGUF_QFORMERS[kind].keyGroup);
  return [
    [key(KEY.QFORMER_WIDTH), u32(h.width)],
    [key(KEY.QFORMER_HEADS), u32(h.heads)],
    [key(KEY.QFORMER_LAYERS), u32(h.layers)],
    [key(KEY.QFORMER_FFN_WIDTH), u32(h.ffnWidth)],
    [key(KEY.QFORMER_QUERIES), u32(h.queries)],
    [key(KEY.QFORMER_CROSS_ATTENTION_FREQ), u32(h.crossAttentionFreq)],
    [key(KEY.QFORMER_ENCODER_WIDTH), u32(h.encoderWidth)],
    [key(KEY.QFORMER_EPS), f32(FIXED.qformerEps)],
  ];
}

/** The projector's metadata (without `general.file_type`, which depends on the output type). */
export function projectorMetadata(h: ProjectorHparams): [string, GgufValue][] {
  const out: [string, GgufValue][] = [
    [KEY.ARCHITECTURE, { type: 'string', value: PROJECTOR_ARCHITECTURE }],
    [KEY.LLM_WIDTH, u32(h.llmWidth)],
    [KEY.HAS_VISION, { type: 'bool', value: h.vision !== undefined }],
    [KEY.HAS_AUDIO, { type: 'bool', value: h.audio !== undefined }],
  ];
  if (h.vision) {
    const { vit, qformer, videoQformer, maxFrames } = h.vision;
    out.push(
      [KEY.VISION_IMAGE_SIZE, u32(vit.imageSize)],
      [KEY.VISION_PATCH_SIZE, u32(vit.patchSize)],
      [KEY.VISION_WIDTH, u32(vit.width)],
      [KEY.VISION_DEPTH, u32(vit.depth)],
      [KEY.VISION_HEADS, u32(vit.heads)],
      [KEY.VISION_MLP_WIDTH, u32(vit.mlpWidth)],
      [KEY.VISION_EPS, f32(FIXED.vitEps)],
      [KEY.VISION_LN_VISION_EPS, f32(FIXED.lnVisionEps)],
      [KEY.VISION_IMAGE_MEAN, { type: 'array', elementType: 'f32', value: FIXED.imageMean }],
      [KEY.VISION_IMAGE_STD, { type: 'array', elementType: 'f32', value: FIXED.imageStd }],
      [KEY.VIDEO_MAX_FRAMES, u32(maxFrames)],
      ...qformerMetadata('image', qformer),
      ...qformerMetadata('video', videoQformer),
    );
  }
  if (h.audio) {
    const { imagebind: ib, audioQformer, maxClips } = h.audio;
    out.push(
      [KEY.AUDIO_SAMPLE_RATE, u32(FIXED.sampleRate)],
      [KEY.AUDIO_MEL_BINS, u32(FIXED.melBins)],
      [KEY.AUDIO_TARGET_FRAMES, u32(FIXED.targetFrames)],
      [KEY.AUDIO_CLIP_SECONDS, f32(FIXED.clipSeconds)],
      [KEY.AUDIO_FBANK_MEAN, f32(FIXED.fbankMean)],
      [KEY.AUDIO_FBANK_STD, f32(FIXED.fbankStd)],
      [KEY.AUDIO_MAX_CLIPS, u32(maxClips)],
      [KEY.IMAGEBIND_WIDTH, u32(ib.width)],
      [KEY.IMAGEBIND_DEPTH, u32(ib.depth)],
      [KEY.IMAGEBIND_HEADS, u32(ib.heads)],
      [KEY.IMAGEBIND_MLP_WIDTH, u32(ib.mlpWidth)],
      [KEY.IMAGEBIND_OUT_WIDTH, u32(ib.outWidth)],
      [KEY.IMAGEBIND_PATCH_SIZE, u32(ib.patchSize)],
      [KEY.IMAGEBIND_PATCH_STRIDE, u32(ib.patchStride)],
      [KEY.IMAGEBIND_STEM_EPS, f32(FIXED.imagebindStemEps)],
      [KEY.IMAGEBIND_EPS, f32(FIXED.imagebindEps)],
      [KEY.IMAGEBIND_LOGIT_SCALE, f32(ib.logitScale)],
      ...qformerMetadata('audio', audioQformer),
    );
  }
  return out;
}
