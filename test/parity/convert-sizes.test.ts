/**
 * The converter on checkpoints of sizes unlike the fixtures' (generated here in the release key
 * layout with random values), with no head options: every size must come from the files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readGgufFileInfo } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';

import { convertCheckpoints } from '../../src/convert/convert.js';
import { defaultHeads, RELEASE_HEAD_DIM } from '../../src/convert/hparams.js';
import { writeStateDict, type SimpleTensor } from '../support/torch-zip.js';

const S = {
  vit: { width: 32, blocks: 4, mlp: 88, patch: 16, grid: 14 },
  qformer: { width: 48, layers: 3, freq: 2, ffn: 80, queries: 16 },
  video: { layers: 1, queries: 8, maxFrames: 12 },
  audio: { layers: 3, queries: 4, maxClips: 6 },
  llm: 40,
  imagebind: { width: 24, blocks: 3, mlp: 72, out: 20, kernel: 16, patches: 228 },
};

let seed = 7;
function randomValues(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5);
}

/** Collects `key → shape` tensors with random values. */
class Dict {
  readonly tensors: SimpleTensor[] = [];
  add(key: string, ...shape: number[]): this {
    this.tensors.push({ key, shape, values: randomValues(shape.reduce((a, b) => a * b, 1)) });
    return this;
  }
  linear(key: string, inW: number, outW: number, bias = true): this {
    this.add(`${key}.weight`, outW, inW);
    return bias ? this.add(`${key}.bias`, outW) : this;
  }
  norm(key: string, n: number): this {
    return this.add(`${key}.weight`, n).add(`${key}.bias`, n);
  }
  qformer(bert: string, tokens: string, layers: number, freq: number, queries: number, encoder: number): this {
    const { width: H, ffn } = S.qformer;
    this.add(tokens, 1, queries, H).norm(`${bert}embeddings.LayerNorm`, H);
    for (let i = 0; i < layers; i++) {
      const l = `${bert}encoder.layer.${i}.`;
      for (const n of ['query', 'key', 'value']) this.linear(`${l}attention.self.${n}`, H, H);
      this.linear(`${l}attention.output.dense`, H, H).norm(`${l}attention.output.LayerNorm`, H);
      if (i % freq === 0) {
        this.linear(`${l}crossattention.self.query`, H, H).linear(`${l}crossattention.self.key`, encoder, H).linear(`${l}crossattention.self.value`, encoder, H);
        this.linear(`${l}crossattention.output.dense`, H, H).norm(`${l}crossattention.output.LayerNorm`, H);
      }
      this.linear(`${l}intermediate_query.dense`, H, ffn).linear(`${l}output_query.dense`, ffn, H).norm(`${l}output_query.LayerNorm`, H);
    }
    return this;
  }
}

function writeCheckpoints(dir: string): Record<'evaVit' | 'blip2' | 'videoBranch' | 'imagebind' | 'audioBranch', string> {
  const { vit, qformer, video, audio, imagebind: ib } = S;
  const eva = new Dict().add('cls_token', 1, 1, vit.width).add('pos_embed', 1, vit.grid ** 2 + 1, vit.width)
    .add('patch_embed.proj.weight', vit.width, 3, vit.patch, vit.patch).add('patch_embed.proj.bias', vit.width);
  for (let i = 0; i < vit.blocks; i++) {
    const b = `blocks.${i}.`;
    eva.norm(`${b}norm1`, vit.width).add(`${b}attn.q_bias`, vit.width).add(`${b}attn.v_bias`, vit.width).add(`${b}attn.qkv.weight`, 3 * vit.width, vit.width)
      .linear(`${b}attn.proj`, vit.width, vit.width).norm(`${b}norm2`, vit.width).linear(`${b}mlp.fc1`, vit.width, vit.mlp).linear(`${b}mlp.fc2`, vit.mlp, vit.width);
  }
  const blip2 = new Dict().norm('ln_vision', vit.width).qformer('Qformer.bert.', 'query_tokens', qformer.layers, qformer.freq, qformer.queries, vit.width);
  const vl = new Dict().qformer('video_Qformer.bert.', 'video_query_tokens', video.layers, 1, video.queries, qformer.width)
    .add('video_frame_position_embedding.weight', video.maxFrames, qformer.width).linear('llama_proj', qformer.width, S.llm);
  const pre = 'modality_preprocessors.audio.';
  const imagebind = new Dict().add(`${pre}cls_token`, 1, 1, ib.width).add(`${pre}rgbt_stem.proj.weight`, ib.width, 1, ib.kernel, ib.kernel)
    .norm(`${pre}rgbt_stem.norm_layer`, ib.width).add(`${pre}pos_embedding_helper.pos_embed`, 1, ib.patches + 1, ib.width);
  for (let i = 0; i < ib.blocks; i++) {
    const b = `modality_trunks.audio.blocks.${i}.`;
    imagebind.norm(`${b}norm_1`, ib.width).add(`${b}attn.in_proj_weight`, 3 * ib.width, ib.width).add(`${b}attn.in_proj_bias`, 3 * ib.width)
      .add(`${b}attn.bias_k`, 1, 1, ib.width).add(`${b}attn.bias_v`, 1, 1, ib.width).linear(`${b}attn.out_proj`, ib.width, ib.width)
      .norm(`${b}norm_2`, ib.width).linear(`${b}mlp.fc1`, ib.width, ib.mlp).linear(`${b}mlp.fc2`, ib.mlp, ib.width);
  }
  imagebind.norm('modality_heads.audio.0', ib.width).linear('modality_heads.audio.2', ib.width, ib.out, false);
  // No log_logit_scale buffer anywhere: the converter must fall back to ImageBind's fixed 20.
  const al = new Dict().qformer('audio_Qformer.bert.', 'audio_query_tokens', audio.layers, 1, audio.queries, ib.out)
    .add('audio_position_embedding.weight', audio.maxClips, ib.out).linear('audio_llama_proj', qformer.width, S.llm);
  const files = { evaVit: eva, blip2, videoBranch: vl, imagebind, audioBranch: al };
  return Object.fromEntries(Object.entries(files).map(([role, dict]) => {
    const file = path.join(dir, `${role}.pth`);
    writeStateDict(file, dict.tensors, { wrapModel: role === 'blip2' || role.endsWith('Branch'), archive: role });
    return [role, file];
  })) as ReturnType<typeof writeCheckpoints>;
}

describe('convertCheckpoints at other sizes', () => {
  it('reads every size from the files and picks heads by the default rule', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-convert-sizes-'));
    const out = path.join(dir, 'projector.gguf');
    const report = await convertCheckpoints({ ...writeCheckpoints(dir), out, type: 'q8_0' });
    const vl = (await readGgufFileInfo(out)).metadata as unknown as { vl: Record<string, any> };
    const { vit, qformer, video, audio, imagebind: ib } = S;
    expect(vl.vl).toMatchObject({
      llm_width: S.llm,
      vision: { image_size: vit.grid * vit.patch, patch_size: vit.patch, width: vit.width, depth: vit.blocks - 1, heads: 4, mlp_width: vit.mlp },
      video: { max_frames: video.maxFrames },
      qformer: { width: qformer.width, heads: 4, layers: qformer.layers, ffn_width: qformer.ffn, queries: qformer.queries, cross_attention_freq: 2, encoder_width: vit.width },
      video_qformer: { layers: video.layers, queries: video.queries, cross_attention_freq: 1, encoder_width: qformer.width, heads: 4 },
      audio_qformer: { layers: audio.layers, queries: audio.queries, cross_attention_freq: 1, encoder_width: ib.out, heads: 4 },
      audio: { max_clips: audio.maxClips },
      imagebind: { width: ib.width, depth: ib.blocks, heads: 4, mlp_width: ib.mlp, out_width: ib.out, patch_size: ib.kernel, patch_stride: 10 },
    });
    expect(vl.vl.imagebind.logit_scale).toBe(20);
    expect(report.tensorCount).toBeGreaterThan(0);
  });

  it('gives the release head counts at release widths', () => {
    expect(defaultHeads(1408, RELEASE_HEAD_DIM.vit, 'vit-heads')).toBe(16);
    expect(defaultHeads(768, RELEASE_HEAD_DIM.qformer, 'qformer-heads')).toBe(12);
    expect(defaultHeads(768, RELEASE_HEAD_DIM.imagebind, 'imagebind-heads')).toBe(12);
    expect(defaultHeads(64, RELEASE_HEAD_DIM.qformer, 'qformer-heads')).toBe(4);
    expect(() => defaultHeads(42, RELEASE_HEAD_DIM.qformer, 'qformer-heads')).toThrow(/--qformer-heads/);
  });
});
