/**
 * The projector GGUF's names, in one table (docs/projector-format.md): every metadata key and
 * every tensor-name template the converter writes and the native loader reads, in the manner of
 * llama.cpp's `clip-impl.h` (`KEY_*`, `TN_*`).
 *
 * Templates hold `{}` placeholders, filled in order by {@link ggufName}: a block or layer index,
 * a Q-Former's key group or tensor prefix ({@link GGUF_QFORMERS}), and, for a layer whose
 * parameters are a `weight` and a `bias`, the suffix (`weight` | `bias`) — the native loader
 * builds the same names as `prefix + ".weight"`.
 * @internal
 * @module
 */

/** Metadata keys, by record name. `{}` in a Q-Former key is its key group (`qformer`, …). */
export const GGUF_KEYS = {
  ARCHITECTURE: 'general.architecture',
  FILE_TYPE: 'general.file_type',
  LLM_WIDTH: 'vl.llm_width',
  HAS_VISION: 'vl.has_vision',
  HAS_AUDIO: 'vl.has_audio',

  VISION_IMAGE_SIZE: 'vl.vision.image_size',
  VISION_PATCH_SIZE: 'vl.vision.patch_size',
  VISION_WIDTH: 'vl.vision.width',
  VISION_DEPTH: 'vl.vision.depth',
  VISION_HEADS: 'vl.vision.heads',
  VISION_MLP_WIDTH: 'vl.vision.mlp_width',
  VISION_EPS: 'vl.vision.eps',
  VISION_LN_VISION_EPS: 'vl.vision.ln_vision_eps',
  VISION_IMAGE_MEAN: 'vl.vision.image_mean',
  VISION_IMAGE_STD: 'vl.vision.image_std',
  VIDEO_MAX_FRAMES: 'vl.video.max_frames',

  QFORMER_WIDTH: 'vl.{}.width',
  QFORMER_HEADS: 'vl.{}.heads',
  QFORMER_LAYERS: 'vl.{}.layers',
  QFORMER_FFN_WIDTH: 'vl.{}.ffn_width',
  QFORMER_QUERIES: 'vl.{}.queries',
  QFORMER_CROSS_ATTENTION_FREQ: 'vl.{}.cross_attention_freq',
  QFORMER_ENCODER_WIDTH: 'vl.{}.encoder_width',
  QFORMER_EPS: 'vl.{}.eps',

  AUDIO_SAMPLE_RATE: 'vl.audio.sample_rate',
  AUDIO_MEL_BINS: 'vl.audio.mel_bins',
  AUDIO_TARGET_FRAMES: 'vl.audio.target_frames',
  AUDIO_CLIP_SECONDS: 'vl.audio.clip_seconds',
  AUDIO_FBANK_MEAN: 'vl.audio.fbank_mean',
  AUDIO_FBANK_STD: 'vl.audio.fbank_std',
  AUDIO_MAX_CLIPS: 'vl.audio.max_clips',

  IMAGEBIND_WIDTH: 'vl.imagebind.width',
  IMAGEBIND_DEPTH: 'vl.imagebind.depth',
  IMAGEBIND_HEADS: 'vl.imagebind.heads',
  IMAGEBIND_MLP_WIDTH: 'vl.imagebind.mlp_width',
  IMAGEBIND_OUT_WIDTH: 'vl.imagebind.out_width',
  IMAGEBIND_PATCH_SIZE: 'vl.imagebind.patch_size',
  IMAGEBIND_PATCH_STRIDE: 'vl.imagebind.patch_stride',
  IMAGEBIND_STEM_EPS: 'vl.imagebind.stem_eps',
  IMAGEBIND_EPS: 'vl.imagebind.eps',
  IMAGEBIND_LOGIT_SCALE: 'vl.imagebind.logit_scale',
} as const;

/**
 * Tensor-name templates, by record name. In a Q-Former template the first `{}` is its tensor
 * prefix (`qf`, …); a trailing `.{}` is `weight` or `bias`.
 */
export const GGUF_TENSOR_NAMES = {
  // EVA ViT-g (eva_vit.py VisionTransformer) and BLIP-2's ln_vision.
  VIT_PATCH_EMBD: 'v.patch_embd.{}',
  VIT_CLS_TOKEN: 'v.cls_token',
  VIT_POS_EMBD: 'v.pos_embd',
  VIT_LN1: 'v.blk.{}.ln1.{}',
  VIT_ATTN_QKV: 'v.blk.{}.attn_qkv.{}',
  VIT_ATTN_Q_BIAS: 'v.blk.{}.attn_q.bias',
  VIT_ATTN_V_BIAS: 'v.blk.{}.attn_v.bias',
  VIT_ATTN_OUT: 'v.blk.{}.attn_out.{}',
  VIT_LN2: 'v.blk.{}.ln2.{}',
  VIT_FFN_UP: 'v.blk.{}.ffn_up.{}',
  VIT_FFN_DOWN: 'v.blk.{}.ffn_down.{}',
  VIT_LN_VISION: 'v.ln_vision.{}',

  // The three BLIP-2-style Q-Formers (Qformer.py BertModel, query tokens only).
  QFORMER_QUERY_TOKENS: '{}.query_tokens',
  QFORMER_EMB_LN: '{}.emb_ln.{}',
  QFORMER_SELF_Q: '{}.blk.{}.self_q.{}',
  QFORMER_SELF_K: '{}.blk.{}.self_k.{}',
  QFORMER_SELF_V: '{}.blk.{}.self_v.{}',
  QFORMER_SELF_OUT: '{}.blk.{}.self_out.{}',
  QFORMER_SELF_LN: '{}.blk.{}.self_ln.{}',
  QFORMER_CROSS_Q: '{}.blk.{}.cross_q.{}',
  QFORMER_CROSS_K: '{}.blk.{}.cross_k.{}',
  QFORMER_CROSS_V: '{}.blk.{}.cross_v.{}',
  QFORMER_CROSS_OUT: '{}.blk.{}.cross_out.{}',
  QFORMER_CROSS_LN: '{}.blk.{}.cross_ln.{}',
  QFORMER_FFN_UP: '{}.blk.{}.ffn_up.{}',
  QFORMER_FFN_DOWN: '{}.blk.{}.ffn_down.{}',
  QFORMER_FFN_LN: '{}.blk.{}.ffn_ln.{}',

  // Video-LLaMA's video head.
  VIDEO_FRAME_POS_EMBD: 'vid.frame_pos_embd',
  VIDEO_PROJ: 'vid.proj.{}',

  // ImageBind's audio encoder (imagebind_model.py: stem, trunk, head).
  AUDIO_PATCH_EMBD: 'a.patch_embd.{}',
  AUDIO_PATCH_LN: 'a.patch_ln.{}',
  AUDIO_CLS_TOKEN: 'a.cls_token',
  AUDIO_POS_EMBD: 'a.pos_embd',
  AUDIO_LN1: 'a.blk.{}.ln1.{}',
  AUDIO_ATTN_QKV: 'a.blk.{}.attn_qkv.{}',
  AUDIO_ATTN_BIAS_K: 'a.blk.{}.attn_bias_k',
  AUDIO_ATTN_BIAS_V: 'a.blk.{}.attn_bias_v',
  AUDIO_ATTN_OUT: 'a.blk.{}.attn_out.{}',
  AUDIO_LN2: 'a.blk.{}.ln2.{}',
  AUDIO_FFN_UP: 'a.blk.{}.ffn_up.{}',
  AUDIO_FFN_DOWN: 'a.blk.{}.ffn_down.{}',
  AUDIO_HEAD_LN: 'a.head_ln.{}',
  AUDIO_HEAD_PROJ: 'a.head_proj.{}',

  // Video-LLaMA's audio head.
  AUDIO_CLIP_POS_EMBD: 'aud.pos_embd',
  AUDIO_PROJ: 'aud.proj.{}',
} as const;

/** The three Q-Formers: metadata key group and tensor prefix (the `{}` of their keys and templates). */
export const GGUF_QFORMERS = {
  /** BLIP-2's image Q-Former. */
  image: { keyGroup: 'qformer', tensorPrefix: 'qf' },
  /** Video-LLaMA's video Q-Former over the frames. */
  video: { keyGroup: 'video_qformer', tensorPrefix: 'vqf' },
  /** Video-LLaMA's audio Q-Former over the clips. */
  audio: { keyGroup: 'audio_qformer', tensorPrefix: 'aqf' },
} as const;

/** `general.architecture` of a projector GGUF. */
export const PROJECTOR_ARCHITECTURE = 'video-llama-projector';

/**
 * Fills a key or tensor-name template's `{}` placeholders in order.
 *
 * @example
 * ```ts
 * ggufName(GGUF_TENSOR_NAMES.QFORMER_SELF_Q, 'vqf', 1, 'bias'); // 'vqf.blk.1.self_q.bias'
 * ```
 */
export function ggufName(template: string, ...parts: readonly (string | number)[]): string {
  const pieces = template.split('{}');
  if (pieces.length !== parts.length + 1) throw new Error(`GGUF name template '${template}' takes ${pieces.length - 1} parts, got ${parts.length}`);
  return pieces.reduce((name, piece, i) => name + String(parts[i - 1]) + piece);
}
