/**
 * The tensor table of docs/projector-format.md ("Tensors"): which checkpoint tensor becomes which
 * GGUF tensor, with its ggml shape and storage class. Names come from the one table in
 * `gguf/keys.ts`; sizes from {@link ProjectorHparams}.
 * @internal
 * @module
 */
import { GGUF_QFORMERS, GGUF_TENSOR_NAMES as TN, ggufName } from '../gguf/keys.js';
import { QFORMER_LAYOUTS, type CheckpointRole, type QformerKind } from './checkpoints.js';
import type { ImagebindHparams, ProjectorHparams, QformerHparams, VitHparams } from './hparams.js';

/** How a tensor is stored: big matrices take the file's type; conv kernels f32 or f16; the rest f32. */
export type TensorStorage = 'matrix' | 'conv' | 'f32';

/** One GGUF tensor and where it comes from. */
export interface TensorSpec {
  /** GGUF tensor name. */
  readonly name: string;
  /** The file that normally holds it (named in MISSING_TENSOR errors). */
  readonly home: CheckpointRole;
  /** Its key in that file. */
  readonly key: string;
  /** ggml order. */
  readonly shape: readonly number[];
  /** Leading size-1 PyTorch dims dropped in the GGUF (`cls_token [1, 1, D]` → `[D]`). */
  readonly leadingOnes: number;
  readonly storage: TensorStorage;
}

/** The PyTorch shape a spec expects in the checkpoint. */
export function torchShape(spec: TensorSpec): number[] {
  return [...new Array<number>(spec.leadingOnes).fill(1), ...[...spec.shape].reverse()];
}

function spec(name: string, home: CheckpointRole, key: string, shape: readonly number[], storage: TensorStorage, leadingOnes = 0): TensorSpec {
  return { name, home, key, shape, leadingOnes, storage };
}

/**
 * A Linear layer: `weight [out, in]` (ggml `[in, out]`, the file's type) and `bias [out]` (f32).
 * `name` is a template whose last `{}` is the suffix; `parts` fill the others.
 */
function linear(name: string, parts: readonly (string | number)[], home: CheckpointRole, key: string, inWidth: number, outWidth: number, bias = true): TensorSpec[] {
  const weight = spec(ggufName(name, ...parts, 'weight'), home, `${key}.weight`, [inWidth, outWidth], 'matrix');
  return bias ? [weight, spec(ggufName(name, ...parts, 'bias'), home, `${key}.bias`, [outWidth], 'f32')] : [weight];
}

/** A LayerNorm's `weight` and `bias`, both `[width]` f32; `name` as for {@link linear}. */
function norm(name: string, parts: readonly (string | number)[], home: CheckpointRole, key: string, width: number): TensorSpec[] {
  return ['weight', 'bias'].map((suffix) => spec(ggufName(name, ...parts, suffix), home, `${key}.${suffix}`, [width], 'f32'));
}

function vitTensors(h: VitHparams): TensorSpec[] {
  const { width: D, mlpWidth: F, patchSize: P } = h;
  const home = 'evaVit';
  const out = [
    spec(ggufName(TN.VIT_PATCH_EMBD, 'weight'), home, 'patch_embed.proj.weight', [P, P, 3, D], 'conv'),
    spec(ggufName(TN.VIT_PATCH_EMBD, 'bias'), home, 'patch_embed.proj.bias', [D], 'f32'),
    spec(TN.VIT_CLS_TOKEN, home, 'cls_token', [D], 'f32', 2),
    spec(TN.VIT_POS_EMBD, home, 'pos_embed', [D, h.patches + 1], 'f32', 1),
  ];
  for (let i = 0; i < h.depth; i++) {
    const b = `blocks.${i}.`;
    out.push(
      ...norm(TN.VIT_LN1, [i], home, `${b}norm1`, D),
      ...linear(TN.VIT_ATTN_QKV, [i], home, `${b}attn.qkv`, D, 3 * D, false),
      spec(ggufName(TN.VIT_ATTN_Q_BIAS, i), home, `${b}attn.q_bias`, [D], 'f32'),
      spec(ggufName(TN.VIT_ATTN_V_BIAS, i), home, `${b}attn.v_bias`, [D], 'f32'),
      ...linear(TN.VIT_ATTN_OUT, [i], home, `${b}attn.proj`, D, D),
      ...norm(TN.VIT_LN2, [i], home, `${b}norm2`, D),
      ...linear(TN.VIT_FFN_UP, [i], home, `${b}mlp.fc1`, D, F),
      ...linear(TN.VIT_FFN_DOWN, [i], home, `${b}mlp.fc2`, F, D),
    );
  }
  return out;
}

/** The self- and cross-attention blocks: GGUF templates and the BERT module each mirrors. */
const BERT_ATTENTION = {
  self: { module: 'attention', q: TN.QFORMER_SELF_Q, k: TN.QFORMER_SELF_K, v: TN.QFORMER_SELF_V, out: TN.QFORMER_SELF_OUT, ln: TN.QFORMER_SELF_LN },
  cross: { module: 'crossattention', q: TN.QFORMER_CROSS_Q, k: TN.QFORMER_CROSS_K, v: TN.QFORMER_CROSS_V, out: TN.QFORMER_CROSS_OUT, ln: TN.QFORMER_CROSS_LN },
} as const;

function qformerTensors(kind: QformerKind, h: QformerHparams): TensorSpec[] {
  const { home, bert, queryTokens } = QFORMER_LAYOUTS[kind];
  const X = GGUF_QFORMERS[kind].tensorPrefix;
  const { width: H, ffnWidth: I, encoderWidth: Enc } = h;
  const out = [spec(ggufName(TN.QFORMER_QUERY_TOKENS, X), home, queryTokens, [H, h.queries], 'f32', 1), ...norm(TN.QFORMER_EMB_LN, [X], home, `${bert}embeddings.LayerNorm`, H)];
  // BertAttention: self.{query,key,value}, output.{dense,LayerNorm}; keys and values come from `kvWidth`.
  const attention = (i: number, which: keyof typeof BERT_ATTENTION, kvWidth: number): TensorSpec[] => {
    const t = BERT_ATTENTION[which];
    const m = `${bert}encoder.layer.${i}.${t.module}.`;
    return [
      ...linear(t.q, [X, i], home, `${m}self.query`, H, H),
      ...linear(t.k, [X, i], home, `${m}self.key`, kvWidth, H),
      ...linear(t.v, [X, i], home, `${m}self.value`, kvWidth, H),
      ...linear(t.out, [X, i], home, `${m}output.dense`, H, H),
      ...norm(t.ln, [X, i], home, `${m}output.LayerNorm`, H),
    ];
  };
  for (let i = 0; i < h.layers; i++) {
    const l = `${bert}encoder.layer.${i}.`;
    out.push(...attention(i, 'self', H));
    if (i % h.crossAttentionFreq === 0) out.push(...attention(i, 'cross', Enc));
    out.push(
      ...linear(TN.QFORMER_FFN_UP, [X, i], home, `${l}intermediate_query.dense`, H, I),
      ...linear(TN.QFORMER_FFN_DOWN, [X, i], home, `${l}output_query.dense`, I, H),
      ...norm(TN.QFORMER_FFN_LN, [X, i], home, `${l}output_query.LayerNorm`, H),
    );
  }
  return out;
}

function imagebindTensors(h: ImagebindHparams): TensorSpec[] {
  const { width: Da, mlpWidth: F, outWidth: Do, patchSize: K } = h;
  const home = 'imagebind';
  const pre = 'modality_preprocessors.audio.';
  const out = [
    spec(ggufName(TN.AUDIO_PATCH_EMBD, 'weight'), home, `${pre}rgbt_stem.proj.weight`, [K, K, 1, Da], 'conv'),
    ...norm(TN.AUDIO_PATCH_LN, [], home, `${pre}rgbt_stem.norm_layer`, Da),
    spec(TN.AUDIO_CLS_TOKEN, home, `${pre}cls_token`, [Da], 'f32', 2),
    spec(TN.AUDIO_POS_EMBD, home, `${pre}pos_embedding_helper.pos_embed`, [Da, 1 + h.patches], 'f32', 1),
  ];
  for (let i = 0; i < h.depth; i++) {
    const b = `modality_trunks.audio.blocks.${i}.`;
    out.push(
      ...norm(TN.AUDIO_LN1, [i], home, `${b}norm_1`, Da),
      spec(ggufName(TN.AUDIO_ATTN_QKV, i, 'weight'), home, `${b}attn.in_proj_weight`, [Da, 3 * Da], 'matrix'),
      spec(ggufName(TN.AUDIO_ATTN_QKV, i, 'bias'), home, `${b}attn.in_proj_bias`, [3 * Da], 'f32'),
      spec(ggufName(TN.AUDIO_ATTN_BIAS_K, i), home, `${b}attn.bias_k`, [Da], 'f32', 2),
      spec(ggufName(TN.AUDIO_ATTN_BIAS_V, i), home, `${b}attn.bias_v`, [Da], 'f32', 2),
      ...linear(TN.AUDIO_ATTN_OUT, [i], home, `${b}attn.out_proj`, Da, Da),
      ...norm(TN.AUDIO_LN2, [i], home, `${b}norm_2`, Da),
      ...linear(TN.AUDIO_FFN_UP, [i], home, `${b}mlp.fc1`, Da, F),
      ...linear(TN.AUDIO_FFN_DOWN, [i], home, `${b}mlp.fc2`, F, Da),
    );
  }
  out.push(...norm(TN.AUDIO_HEAD_LN, [], home, 'modality_heads.audio.0', Da), ...linear(TN.AUDIO_HEAD_PROJ, [], home, 'modality_heads.audio.2', Da, Do, false));
  return out;
}

/** Every tensor of the projector, in file order. */
export function projectorTensors(h: ProjectorHparams): TensorSpec[] {
  const out: TensorSpec[] = [];
  if (h.vision) {
    const { vit, qformer, videoQformer, maxFrames } = h.vision;
    out.push(
      ...vitTensors(vit),
      ...norm(TN.VIT_LN_VISION, [], 'blip2', 'ln_vision', vit.width),
      ...qformerTensors('image', { ...qformer, encoderWidth: vit.width }),
      ...qformerTensors('video', { ...videoQformer, encoderWidth: qformer.width }),
      spec(TN.VIDEO_FRAME_POS_EMBD, 'videoBranch', 'video_frame_position_embedding.weight', [qformer.width, maxFrames], 'f32'),
      ...linear(TN.VIDEO_PROJ, [], 'videoBranch', 'llama_proj', videoQformer.width, h.llmWidth),
    );
  }
  if (h.audio) {
    const { imagebind, audioQformer, maxClips } = h.audio;
    out.push(
      ...imagebindTensors(imagebind),
      ...qformerTensors('audio', { ...audioQformer, encoderWidth: imagebind.outWidth }),
      spec(TN.AUDIO_CLIP_POS_EMBD, 'audioBranch', 'audio_position_embedding.weight', [imagebind.outWidth, maxClips], 'f32'),
      ...linear(TN.AUDIO_PROJ, [], 'audioBranch', 'audio_llama_proj', audioQformer.width, h.llmWidth),
    );
  }
  return out;
}
