/**
 * Writes a projector GGUF straight from docs/projector-format.md, at any sizes, with random f32
 * weights: to run the graphs at sizes unlike the fixtures'. Returns the tensor values so tests
 * can check the parts that need no reference (position rows, normalisation).
 */
import { GgufWriter, f32Bytes } from '../../src/gguf/writer.js';

/** Every size of a synthetic projector. */
export interface SyntheticSizes {
  llm: number;
  vit: { imageSize: number; patch: number; width: number; depth: number; heads: number; mlp: number };
  /** Shared by the three Q-Formers: width, heads, FFN width. */
  qformer: { width: number; heads: number; ffn: number; layers: number; queries: number; crossFreq: number };
  video: { layers: number; queries: number; maxFrames: number };
  audio: { layers: number; queries: number; maxClips: number };
  imagebind: { width: number; depth: number; heads: number; mlp: number; out: number; patch: number; stride: number; melBins: number; targetFrames: number };
}

/** Sizes of a projector small enough to load and encode in milliseconds (tests of loading, not of numbers). */
export const TINY_SIZES: SyntheticSizes = {
  llm: 16,
  vit: { imageSize: 32, patch: 16, width: 16, depth: 1, heads: 2, mlp: 32 },
  qformer: { width: 16, heads: 2, ffn: 32, layers: 1, queries: 4, crossFreq: 1 },
  video: { layers: 1, queries: 3, maxFrames: 2 },
  audio: { layers: 1, queries: 2, maxClips: 1 },
  imagebind: { width: 16, depth: 1, heads: 2, mlp: 32, out: 16, patch: 16, stride: 10, melBins: 32, targetFrames: 36 },
};

/** A deterministic generator of values in [-0.5, 0.5). */
function random(seed: number): () => number {
  let state = seed;
  return () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
}

/** Writes the file; returns name → values (ggml order). */
export async function writeSyntheticProjector(file: string, s: SyntheticSizes, seed = 1): Promise<Map<string, Float32Array>> {
  const next = random(seed);
  const writer = new GgufWriter();
  const values = new Map<string, Float32Array>();
  const tensor = (name: string, shape: number[], scale = 1, offset = 0): void => {
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * next());
    values.set(name, data);
    writer.addTensor(name, shape, 'f32', () => f32Bytes(data));
  };
  // Linear weights scaled by 1/sqrt(fan_in) keep activations of order 1 through the layers.
  const linear = (name: string, inW: number, outW: number, bias = true): void => {
    tensor(`${name}.weight`, [inW, outW], 2 / Math.sqrt(inW));
    if (bias) tensor(`${name}.bias`, [outW], 0.2);
  };
  const norm = (name: string, n: number): void => {
    tensor(`${name}.weight`, [n], 0.2, 1);
    tensor(`${name}.bias`, [n], 0.2);
  };
  const u32 = (key: string, value: number): void => void writer.set(key, { type: 'u32', value });
  const f32 = (key: string, value: number): void => void writer.set(key, { type: 'f32', value });

  writer.set('general.architecture', { type: 'string', value: 'video-llama-projector' });
  u32('general.file_type', 0);
  u32('vl.llm_width', s.llm);
  writer.set('vl.has_vision', { type: 'bool', value: true });
  writer.set('vl.has_audio', { type: 'bool', value: true });

  const { vit, qformer: q, imagebind: ib } = s;
  for (const [key, value] of Object.entries({ image_size: vit.imageSize, patch_size: vit.patch, width: vit.width, depth: vit.depth, heads: vit.heads, mlp_width: vit.mlp })) u32(`vl.vision.${key}`, value);
  f32('vl.vision.eps', 1e-6);
  f32('vl.vision.ln_vision_eps', 1e-5);
  writer.set('vl.vision.image_mean', { type: 'array', elementType: 'f32', value: [0.5, 0.5, 0.5] });
  writer.set('vl.vision.image_std', { type: 'array', elementType: 'f32', value: [0.25, 0.25, 0.25] });
  u32('vl.video.max_frames', s.video.maxFrames);
  for (const [key, value] of Object.entries({ sample_rate: 16000, mel_bins: ib.melBins, target_frames: ib.targetFrames, max_clips: s.audio.maxClips })) u32(`vl.audio.${key}`, value);
  f32('vl.audio.clip_seconds', 2);
  f32('vl.audio.fbank_mean', -4.268);
  f32('vl.audio.fbank_std', 9.138);
  for (const [key, value] of Object.entries({ width: ib.width, depth: ib.depth, heads: ib.heads, mlp_width: ib.mlp, out_width: ib.out, patch_size: ib.patch, patch_stride: ib.stride })) u32(`vl.imagebind.${key}`, value);
  f32('vl.imagebind.stem_eps', 1e-5);
  f32('vl.imagebind.eps', 1e-6);
  f32('vl.imagebind.logit_scale', 20);

  const qformers = [
    { key: 'qformer', prefix: 'qf', layers: q.layers, queries: q.queries, freq: q.crossFreq, encoder: vit.width },
    { key: 'video_qformer', prefix: 'vqf', layers: s.video.layers, queries: s.video.queries, freq: 1, encoder: q.width },
    { key: 'audio_qformer', prefix: 'aqf', layers: s.audio.layers, queries: s.audio.queries, freq: 1, encoder: ib.out },
  ];
  for (const { key, layers, queries, freq, encoder } of qformers) {
    for (const [k, value] of Object.entries({ width: q.width, heads: q.heads, layers, ffn_width: q.ffn, queries, cross_attention_freq: freq, encoder_width: encoder })) u32(`vl.${key}.${k}`, value);
    f32(`vl.${key}.eps`, 1e-12);
  }

  const grid = Math.floor(vit.imageSize / vit.patch);
  tensor('v.patch_embd.weight', [vit.patch, vit.patch, 3, vit.width], 2 / Math.sqrt(3 * vit.patch ** 2));
  tensor('v.patch_embd.bias', [vit.width], 0.2);
  tensor('v.cls_token', [vit.width]);
  tensor('v.pos_embd', [vit.width, grid * grid + 1]);
  for (let i = 0; i < vit.depth; i++) {
    const b = `v.blk.${i}`;
    norm(`${b}.ln1`, vit.width);
    tensor(`${b}.attn_qkv.weight`, [vit.width, 3 * vit.width], 2 / Math.sqrt(vit.width));
    tensor(`${b}.attn_q.bias`, [vit.width], 0.2);
    tensor(`${b}.attn_v.bias`, [vit.width], 0.2);
    linear(`${b}.attn_out`, vit.width, vit.width);
    norm(`${b}.ln2`, vit.width);
    linear(`${b}.ffn_up`, vit.width, vit.mlp);
    linear(`${b}.ffn_down`, vit.mlp, vit.width);
  }
  norm('v.ln_vision', vit.width);

  for (const { prefix, layers, queries, freq, encoder } of qformers) {
    tensor(`${prefix}.query_tokens`, [q.width, queries]);
    norm(`${prefix}.emb_ln`, q.width);
    for (let i = 0; i < layers; i++) {
      const b = `${prefix}.blk.${i}`;
      const attention = (kind: string, kvWidth: number): void => {
        linear(`${b}.${kind}_q`, q.width, q.width);
        linear(`${b}.${kind}_k`, kvWidth, q.width);
        linear(`${b}.${kind}_v`, kvWidth, q.width);
        linear(`${b}.${kind}_out`, q.width, q.width);
        norm(`${b}.${kind}_ln`, q.width);
      };
      attention('self', q.width);
      if (i % freq === 0) attention('cross', encoder);
      linear(`${b}.ffn_up`, q.width, q.ffn);
      linear(`${b}.ffn_down`, q.ffn, q.width);
      norm(`${b}.ffn_ln`, q.width);
    }
  }
  tensor('vid.frame_pos_embd', [q.width, s.video.maxFrames]);
  linear('vid.proj', q.width, s.llm);

  const patches = (Math.floor((ib.melBins - ib.patch) / ib.stride) + 1) * (Math.floor((ib.targetFrames - ib.patch) / ib.stride) + 1);
  tensor('a.patch_embd.weight', [ib.patch, ib.patch, 1, ib.width], 2 / ib.patch);
  norm('a.patch_ln', ib.width);
  tensor('a.cls_token', [ib.width]);
  tensor('a.pos_embd', [ib.width, 1 + patches]);
  for (let i = 0; i < ib.depth; i++) {
    const b = `a.blk.${i}`;
    norm(`${b}.ln1`, ib.width);
    linear(`${b}.attn_qkv`, ib.width, 3 * ib.width);
    tensor(`${b}.attn_bias_k`, [ib.width]);
    tensor(`${b}.attn_bias_v`, [ib.width]);
    linear(`${b}.attn_out`, ib.width, ib.width);
    norm(`${b}.ln2`, ib.width);
    linear(`${b}.ffn_up`, ib.width, ib.mlp);
    linear(`${b}.ffn_down`, ib.mlp, ib.width);
  }
  norm('a.head_ln', ib.width);
  linear('a.head_proj', ib.width, ib.out, false);
  tensor('aud.pos_embd', [ib.out, s.audio.maxClips]);
  linear('aud.proj', q.width, s.llm);

  await writer.write(file);
  return values;
}
