/**
 * The converter against the fixture checkpoints: every tensor of docs/projector-format.md with its
 * shape and type, the metadata against config.json, and tensor data against the checkpoints.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readGgufFileInfo } from 'node-llama-cpp';
import { beforeAll, expect, it } from 'vitest';

import { parseCommandArgs } from '../../src/cli/command.js';
import { convertCommand } from '../../src/cli/commands/convert.js';
import { convertCheckpoints, type ConvertOptions, type ProjectorWeightType } from '../../src/convert/convert.js';
import { openPth } from '../../src/convert/pth.js';
import { GGUF_KEYS, GGUF_QFORMERS, GGUF_TENSOR_NAMES, ggufName } from '../../src/gguf/keys.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { maxAbsDiff } from '../support/npy.js';

const ckpt = (name: string): string => fixture(TINY_A, `checkpoints/${name}`);
const VISION = { evaVit: ckpt('eva_vit_g.pth'), blip2: ckpt('blip2_pretrained.pth'), videoBranch: ckpt('VL_finetuned.pth') };
const AUDIO = { imagebind: ckpt('imagebind_huge.pth'), audioBranch: ckpt('AL_finetuned.pth') };

/* eslint-disable @typescript-eslint/no-explicit-any */
type Config = any;

/** GGML type ids (ggml.h). */
const TYPE_ID = { f32: 0, f16: 1, q8_0: 8, bf16: 30 } as const;

interface GgufTensor {
  shape: number[];
  type: number;
  offset: number;
}

async function readGguf(file: string): Promise<{ meta: Record<string, any>; tensors: Map<string, GgufTensor>; bytes: Buffer }> {
  const info = await readGgufFileInfo(file, { readTensorInfo: true });
  const tensors = new Map(info.tensorInfo!.map((t) => [t.name, { shape: t.dimensions.map(Number), type: t.ggmlType as number, offset: Number(t.fileOffset) }]));
  return { meta: info.metadata as Record<string, any>, tensors, bytes: fs.readFileSync(file) };
}

/**
 * The tensor list of docs/projector-format.md, built from config.json's sizes (independently of
 * the converter's own table): name → [ggml shape, storage class].
 */
function documentedTensors(c: Config, branches: { vision: boolean; audio: boolean }): Map<string, [number[], 'matrix' | 'conv' | 'f32']> {
  const out = new Map<string, [number[], 'matrix' | 'conv' | 'f32']>();
  const vec = (name: string, n: number): void => { out.set(name, [[n], 'f32']); };
  const lin = (name: string, inW: number, outW: number, bias = true): void => {
    out.set(`${name}.weight`, [[inW, outW], 'matrix']);
    if (bias) vec(`${name}.bias`, outW);
  };
  const ln = (name: string, n: number): void => { vec(`${name}.weight`, n); vec(`${name}.bias`, n); };
  const qformer = (X: string, q: Config, queries: number, encoder: number): void => {
    const H = q.hidden_size;
    out.set(`${X}.query_tokens`, [[H, queries], 'f32']);
    ln(`${X}.emb_ln`, H);
    for (let i = 0; i < q.num_hidden_layers; i++) {
      const b = `${X}.blk.${i}.`;
      for (const n of ['self_q', 'self_k', 'self_v', 'self_out']) lin(b + n, H, H);
      ln(`${b}self_ln`, H);
      if (q.layers_with_cross_attention.includes(i)) {
        lin(`${b}cross_q`, H, H);
        lin(`${b}cross_k`, encoder, H);
        lin(`${b}cross_v`, encoder, H);
        lin(`${b}cross_out`, H, H);
        ln(`${b}cross_ln`, H);
      }
      lin(`${b}ffn_up`, H, q.intermediate_size);
      lin(`${b}ffn_down`, q.intermediate_size, H);
      ln(`${b}ffn_ln`, H);
    }
  };
  const a = c.architecture;
  const E = a.llm.hidden_size;
  if (branches.vision) {
    const v = a.eva_vit;
    const D = v.embed_dim;
    out.set('v.patch_embd.weight', [[v.patch_size, v.patch_size, 3, D], 'conv']);
    vec('v.patch_embd.bias', D);
    vec('v.cls_token', D);
    out.set('v.pos_embd', [[D, v.tokens], 'f32']);
    for (let i = 0; i < v.depth_built; i++) {
      const b = `v.blk.${i}.`;
      ln(`${b}ln1`, D);
      out.set(`${b}attn_qkv.weight`, [[D, 3 * D], 'matrix']);
      vec(`${b}attn_q.bias`, D);
      vec(`${b}attn_v.bias`, D);
      lin(`${b}attn_out`, D, D);
      ln(`${b}ln2`, D);
      lin(`${b}ffn_up`, D, v.mlp_hidden);
      lin(`${b}ffn_down`, v.mlp_hidden, D);
    }
    ln('v.ln_vision', D);
    qformer('qf', a.qformer, a.qformer.num_query_token, D);
    qformer('vqf', a.video_qformer, a.video_qformer.num_video_query_token, a.qformer.hidden_size);
    out.set('vid.frame_pos_embd', [[a.qformer.hidden_size, a.video_qformer.max_frame_pos], 'f32']);
    lin('vid.proj', a.video_qformer.hidden_size, E);
  }
  if (branches.audio) {
    const ib = a.imagebind;
    const Da = ib.kwargs.audio_embed_dim;
    const Do = ib.kwargs.out_embed_dim;
    out.set('a.patch_embd.weight', [[16, 16, 1, Da], 'conv']);
    ln('a.patch_ln', Da);
    vec('a.cls_token', Da);
    out.set('a.pos_embd', [[Da, ib.audio_stem.num_tokens], 'f32']);
    for (let i = 0; i < ib.kwargs.audio_num_blocks; i++) {
      const b = `a.blk.${i}.`;
      ln(`${b}ln1`, Da);
      lin(`${b}attn_qkv`, Da, 3 * Da);
      vec(`${b}attn_bias_k`, Da);
      vec(`${b}attn_bias_v`, Da);
      lin(`${b}attn_out`, Da, Da);
      ln(`${b}ln2`, Da);
      lin(`${b}ffn_up`, Da, ib.audio_trunk.mlp_hidden);
      lin(`${b}ffn_down`, ib.audio_trunk.mlp_hidden, Da);
    }
    ln('a.head_ln', Da);
    lin('a.head_proj', Da, Do, false);
    qformer('aqf', a.audio_qformer, a.audio_qformer.num_audio_query_token, Do);
    out.set('aud.pos_embd', [[Do, a.audio_qformer.audio_position_embedding_rows], 'f32']);
    lin('aud.proj', a.audio_qformer.hidden_size, E);
  }
  return out;
}

/** The type a storage class gets for a requested weight type (docs/projector-format.md). */
function expectedType(storage: 'matrix' | 'conv' | 'f32', rowLength: number, type: ProjectorWeightType): number {
  if (storage === 'f32') return TYPE_ID.f32;
  if (storage === 'conv') return type === 'f32' ? TYPE_ID.f32 : TYPE_ID.f16;
  if (type === 'q8_0' && rowLength % 32 !== 0) return TYPE_ID.f16;
  return TYPE_ID[type];
}

function halfToFloat(h: number): number {
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** A GGUF tensor's values as f32 (f32, f16 and q8_0 blocks of a f16 scale and 32 int8). */
function tensorValues(gguf: { tensors: Map<string, GgufTensor>; bytes: Buffer }, name: string): Float32Array {
  const t = gguf.tensors.get(name)!;
  const count = t.shape.reduce((a, b) => a * b, 1);
  const { bytes } = gguf;
  if (t.type === TYPE_ID.f32) return new Float32Array(bytes.buffer.slice(bytes.byteOffset + t.offset, bytes.byteOffset + t.offset + 4 * count));
  if (t.type === TYPE_ID.f16) return Float32Array.from({ length: count }, (_, i) => halfToFloat(bytes.readUInt16LE(t.offset + 2 * i)));
  expect(t.type).toBe(TYPE_ID.q8_0);
  return Float32Array.from({ length: count }, (_, i) => {
    const block = t.offset + Math.floor(i / 32) * 34;
    return halfToFloat(bytes.readUInt16LE(block)) * bytes.readInt8(block + 2 + (i % 32));
  });
}

async function checkpointValues(file: string, key: string): Promise<Float32Array> {
  const pth = await openPth(file);
  try {
    return await pth.tensors.get(key)!.read();
  } finally {
    await pth.close();
  }
}

/** Tensors compared with their checkpoint source: [GGUF name, file, key]. */
const DATA_CHECKS: [string, string, string][] = [
  ['v.blk.0.attn_qkv.weight', VISION.evaVit, 'blocks.0.attn.qkv.weight'],
  ['v.patch_embd.weight', VISION.evaVit, 'patch_embed.proj.weight'],
  ['v.pos_embd', VISION.evaVit, 'pos_embed'],
  ['v.blk.1.attn_q.bias', VISION.evaVit, 'blocks.1.attn.q_bias'],
  ['v.blk.1.attn_v.bias', VISION.evaVit, 'blocks.1.attn.v_bias'],
  ['v.ln_vision.bias', VISION.blip2, 'ln_vision.bias'],
  ['qf.blk.3.self_v.weight', VISION.blip2, 'Qformer.bert.encoder.layer.3.attention.self.value.weight'],
  ['qf.blk.2.cross_k.weight', VISION.blip2, 'Qformer.bert.encoder.layer.2.crossattention.self.key.weight'],
  ['vqf.query_tokens', VISION.videoBranch, 'video_query_tokens'],
  ['vid.proj.weight', VISION.videoBranch, 'llama_proj.weight'],
  ['a.blk.1.attn_qkv.weight', AUDIO.imagebind, 'modality_trunks.audio.blocks.1.attn.in_proj_weight'],
  ['a.patch_embd.weight', AUDIO.imagebind, 'modality_preprocessors.audio.rgbt_stem.proj.weight'],
  ['a.blk.0.attn_bias_k', AUDIO.imagebind, 'modality_trunks.audio.blocks.0.attn.bias_k'],
  ['a.blk.0.attn_bias_v', AUDIO.imagebind, 'modality_trunks.audio.blocks.0.attn.bias_v'],
  ['aqf.blk.0.cross_v.bias', AUDIO.audioBranch, 'audio_Qformer.bert.encoder.layer.0.crossattention.self.value.bias'],
  ['a.head_proj.weight', AUDIO.imagebind, 'modality_heads.audio.2.weight'],
  ['aqf.blk.1.ffn_down.weight', AUDIO.audioBranch, 'audio_Qformer.bert.encoder.layer.1.output_query.dense.weight'],
  ['aud.pos_embd', AUDIO.audioBranch, 'audio_position_embedding.weight'],
];

describeWithFixtures(TINY_A, 'convertCheckpoints on the fixture checkpoints', () => {
  let config: Config;
  let dir: string;
  const converted = new Map<ProjectorWeightType, string>();

  beforeAll(async () => {
    config = JSON.parse(fs.readFileSync(fixture(TINY_A, 'config.json'), 'utf8'));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-convert-'));
    for (const type of ['f32', 'f16', 'q8_0'] as const) {
      const out = path.join(dir, `projector-${type}.gguf`);
      await convertCheckpoints({ ...VISION, ...AUDIO, out, type });
      converted.set(type, out);
    }
  });

  it.each(['f32', 'f16', 'q8_0'] as const)('writes every documented tensor with its shape and type (%s)', async (type) => {
    const gguf = await readGguf(converted.get(type)!);
    const expected = documentedTensors(config, { vision: true, audio: true });
    expect([...gguf.tensors.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, [shape, storage]] of expected) {
      expect([name, gguf.tensors.get(name)!.shape]).toEqual([name, shape]);
      expect([name, gguf.tensors.get(name)!.type]).toEqual([name, expectedType(storage, shape[0]!, type)]);
    }
    expect(gguf.meta.general.file_type).toBe({ f32: 0, f16: 1, q8_0: 7 }[type]);
  });

  it('writes exactly the names of the one key and tensor-name table (gguf/keys.ts), each of them', async () => {
    const { meta, tensors } = await readGguf(converted.get('f32')!);
    // A placeholder is a block index, a suffix, or a Q-Former's key group or tensor prefix.
    const part = ['\\d+', 'weight', 'bias', ...Object.values(GGUF_QFORMERS).flatMap((q) => [q.keyGroup, q.tensorPrefix])].join('|');
    const pattern = (template: string): RegExp => new RegExp(`^${template.split('{}').map((p) => p.replace(/[.]/g, '\\.')).join(`(${part})`)}$`);
    const flatten = (value: Record<string, any>, prefix = ''): string[] => Object.entries(value).flatMap(([k, v]) =>
      v !== null && typeof v === 'object' && !Array.isArray(v) ? flatten(v, `${prefix}${k}.`) : [`${prefix}${k}`]);
    const keys = flatten(meta).filter((k) => k.startsWith('vl.') || k === GGUF_KEYS.ARCHITECTURE || k === GGUF_KEYS.FILE_TYPE);
    for (const [table, names] of [[GGUF_KEYS, keys], [GGUF_TENSOR_NAMES, [...tensors.keys()]]] as const) {
      const templates = Object.values(table).map(pattern);
      expect(names.filter((name) => !templates.some((t) => t.test(name)))).toEqual([]); // every name is in the table
      expect(Object.entries(table).filter(([, template]) => !names.some((name) => pattern(template).test(name))).map(([record]) => record)).toEqual([]); // every entry is written
    }
    expect(keys).toContain(ggufName(GGUF_KEYS.QFORMER_CROSS_ATTENTION_FREQ, GGUF_QFORMERS.audio.keyGroup));
    expect(tensors.has(ggufName(GGUF_TENSOR_NAMES.QFORMER_CROSS_K, GGUF_QFORMERS.video.tensorPrefix, 1, 'weight'))).toBe(true);
  });

  it('records the sizes of config.json and the fixed constants', async () => {
    const { meta } = await readGguf(converted.get('f32')!);
    const a = config.architecture;
    const vl = meta.vl;
    expect(meta.general.architecture).toBe('video-llama-projector');
    expect(vl).toMatchObject({
      llm_width: a.llm.hidden_size,
      has_vision: true,
      has_audio: true,
      vision: { image_size: a.eva_vit.img_size, patch_size: a.eva_vit.patch_size, width: a.eva_vit.embed_dim, depth: a.eva_vit.depth_built, heads: a.eva_vit.num_heads, mlp_width: a.eva_vit.mlp_hidden },
      video: { max_frames: a.video_qformer.max_frame_pos },
      audio: { sample_rate: 16000, mel_bins: 128, target_frames: 204, max_clips: a.audio_qformer.audio_position_embedding_rows },
      imagebind: {
        width: a.imagebind.kwargs.audio_embed_dim, depth: a.imagebind.kwargs.audio_num_blocks, heads: a.imagebind.kwargs.audio_num_heads,
        mlp_width: a.imagebind.audio_trunk.mlp_hidden, out_width: a.imagebind.kwargs.out_embed_dim, patch_size: 16, patch_stride: 10,
      },
    });
    for (const [key, q, queries] of [['qformer', a.qformer, a.qformer.num_query_token], ['video_qformer', a.video_qformer, a.video_qformer.num_video_query_token], ['audio_qformer', a.audio_qformer, a.audio_qformer.num_audio_query_token]]) {
      expect([key, vl[key]]).toMatchObject([key, {
        width: q.hidden_size, heads: q.num_attention_heads, layers: q.num_hidden_layers, ffn_width: q.intermediate_size,
        queries, cross_attention_freq: q.cross_attention_freq, encoder_width: q.encoder_width,
      }]);
      expect(vl[key].eps).toBeCloseTo(1e-12, 18);
    }
    // f32 metadata: compare at f32 precision.
    const close = (value: number, expected: number): void => expect(Math.abs(value - expected)).toBeLessThanOrEqual(Math.abs(expected) * 1e-7);
    close(vl.vision.eps, a.eva_vit.norm_eps);
    close(vl.vision.ln_vision_eps, a.ln_vision.eps);
    config.preprocessing.video.normalize_mean.forEach((m: number, i: number) => close(vl.vision.image_mean[i], m));
    config.preprocessing.video.normalize_std.forEach((s: number, i: number) => close(vl.vision.image_std[i], s));
    close(vl.audio.clip_seconds, 2);
    close(vl.audio.fbank_mean, -4.268);
    close(vl.audio.fbank_std, 9.138);
    close(vl.imagebind.stem_eps, a.imagebind.audio_stem.norm_eps);
    close(vl.imagebind.eps, a.imagebind.audio_trunk.norm_eps);
    close(vl.imagebind.logit_scale, 20);
  });

  it('copies tensor data exactly at f32 and f16 (fp16 sources), and within q8_0 rounding', async () => {
    const f32 = await readGguf(converted.get('f32')!);
    const f16 = await readGguf(converted.get('f16')!);
    const q8 = await readGguf(converted.get('q8_0')!);
    for (const [name, file, key] of DATA_CHECKS) {
      const source = await checkpointValues(file, key);
      expect([name, maxAbsDiff(tensorValues(f32, name), source)]).toEqual([name, 0]);
      if (name.startsWith('v.') && name !== 'v.pos_embd') expect([name, maxAbsDiff(tensorValues(f16, name), source)]).toEqual([name, 0]);
      // q8_0: each value is within half a step (amax/127) of its block; allow a full step for the f16 scale.
      const amax = source.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expect(maxAbsDiff(tensorValues(q8, name), source)).toBeLessThanOrEqual(amax / 127);
    }
  });

  it('writes vision-only and audio-only projectors', async () => {
    for (const [branches, options] of [[{ vision: true, audio: false }, VISION], [{ vision: false, audio: true }, AUDIO]] as const) {
      const out = path.join(dir, `only-${branches.vision ? 'vision' : 'audio'}.gguf`);
      const report = await convertCheckpoints({ ...options, out, type: 'f32' } as ConvertOptions);
      expect(report).toMatchObject({ hasVision: branches.vision, hasAudio: branches.audio });
      const gguf = await readGguf(out);
      expect(gguf.meta.vl).toMatchObject({ has_vision: branches.vision, has_audio: branches.audio, llm_width: config.architecture.llm.hidden_size });
      expect([...gguf.tensors.keys()].sort()).toEqual([...documentedTensors(config, branches).keys()].sort());
    }
  });

  it('reports progress for every tensor and leaves no partial file on failure', async () => {
    const seen: number[] = [];
    const out = path.join(dir, 'progress.gguf');
    const report = await convertCheckpoints({ ...AUDIO, out, type: 'f16', onProgress: (p) => seen.push(p.done) });
    expect(seen).toEqual(Array.from({ length: report.tensorCount }, (_, i) => i + 1));
    const controller = new AbortController();
    const aborted = path.join(dir, 'aborted.gguf');
    const run = convertCheckpoints({ ...AUDIO, out: aborted, onProgress: (p) => { if (p.done === 3) controller.abort(); }, signal: controller.signal });
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(fs.existsSync(aborted) || fs.existsSync(`${aborted}.partial`)).toBe(false);
  });

  it('is wired to the CLI flags, heads options included', async () => {
    const out = path.join(dir, 'cli.gguf');
    const argv = ['--imagebind', AUDIO.imagebind, '--audio-branch', AUDIO.audioBranch, '--out', out, '--type', 'bf16', '--qformer-heads', '8', '--imagebind-heads', '6', '-q'];
    const log = console.log;
    console.log = () => {};
    try {
      await convertCommand.run(parseCommandArgs(convertCommand, argv));
    } finally {
      console.log = log;
    }
    const gguf = await readGguf(out);
    expect(gguf.meta.vl).toMatchObject({ has_vision: false, audio_qformer: { heads: 8 }, imagebind: { heads: 6 } });
    expect(gguf.meta.general.file_type).toBe(32);
    expect(gguf.tensors.get('aqf.blk.0.self_q.weight')!.type).toBe(TYPE_ID.bf16);
  });
});
