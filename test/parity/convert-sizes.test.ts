/**
 * The converter on checkpoints of sizes unlike the fixtures' (generated here in the release key
 * layout with random values), with no head options: every size must come from the files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readGgufFileInfo } from 'node-llama-cpp';
import { beforeAll, describe, expect, it } from 'vitest';

import { parseCommandArgs } from '../../src/cli/command.js';
import { convertCommand } from '../../src/cli/commands/convert.js';
import { convertCheckpoints } from '../../src/convert/convert.js';
import { defaultHeads, RELEASE_HEAD_DIM } from '../../src/convert/hparams.js';
import { StateDictBuilder, writeStateDict } from '../support/torch-zip.js';

const S = {
  vit: { width: 32, blocks: 4, mlp: 88, patch: 16, grid: 14 },
  qformer: { width: 48, layers: 3, freq: 2, ffn: 80, queries: 16 },
  video: { layers: 1, queries: 8, maxFrames: 12 },
  audio: { layers: 3, queries: 4, maxClips: 6 },
  llm: 40,
  imagebind: { width: 24, blocks: 3, mlp: 72, out: 20, kernel: 16, patches: 228 },
};

function writeCheckpoints(dir: string): Record<'evaVit' | 'blip2' | 'videoBranch' | 'imagebind' | 'audioBranch', string> {
  const { vit, qformer, video, audio, imagebind: ib } = S;
  const eva = new StateDictBuilder().add('cls_token', 1, 1, vit.width).add('pos_embed', 1, vit.grid ** 2 + 1, vit.width)
    .add('patch_embed.proj.weight', vit.width, 3, vit.patch, vit.patch).add('patch_embed.proj.bias', vit.width);
  for (let i = 0; i < vit.blocks; i++) {
    const b = `blocks.${i}.`;
    eva.norm(`${b}norm1`, vit.width).add(`${b}attn.q_bias`, vit.width).add(`${b}attn.v_bias`, vit.width).add(`${b}attn.qkv.weight`, 3 * vit.width, vit.width)
      .linear(`${b}attn.proj`, vit.width, vit.width).norm(`${b}norm2`, vit.width).linear(`${b}mlp.fc1`, vit.width, vit.mlp).linear(`${b}mlp.fc2`, vit.mlp, vit.width);
  }
  const blip2 = new StateDictBuilder().norm('ln_vision', vit.width).qformer('Qformer.bert.', 'query_tokens', { ...qformer, encoder: vit.width });
  const vl = new StateDictBuilder().qformer('video_Qformer.bert.', 'video_query_tokens', { ...qformer, ...video, freq: 1, encoder: qformer.width })
    .add('video_frame_position_embedding.weight', video.maxFrames, qformer.width).linear('llama_proj', qformer.width, S.llm);
  const imagebind = new StateDictBuilder().imagebindAudio(ib);
  // No log_logit_scale buffer anywhere: the converter must fall back to ImageBind's fixed 20.
  const al = new StateDictBuilder().qformer('audio_Qformer.bert.', 'audio_query_tokens', { ...qformer, ...audio, freq: 1, encoder: ib.out })
    .add('audio_position_embedding.weight', audio.maxClips, ib.out).linear('audio_llama_proj', qformer.width, S.llm);
  const files = { evaVit: eva, blip2, videoBranch: vl, imagebind, audioBranch: al };
  return Object.fromEntries(Object.entries(files).map(([role, dict]) => {
    const file = path.join(dir, `${role}.pth`);
    writeStateDict(file, dict.tensors, { wrapModel: role === 'blip2' || role.endsWith('Branch'), archive: role });
    return [role, file];
  })) as ReturnType<typeof writeCheckpoints>;
}

describe('convertCheckpoints at other sizes', () => {
  let dir: string;
  let files: ReturnType<typeof writeCheckpoints>;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-convert-sizes-'));
    files = writeCheckpoints(dir);
  });

  it('reads every size from the files and picks heads by the default rule', async () => {
    const out = path.join(dir, 'projector.gguf');
    const report = await convertCheckpoints({ ...files, out, type: 'q8_0' });
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
    expect(report.vitDepth).toMatchObject({ depth: vit.blocks - 1, blocksInFile: vit.blocks, rule: 'all-but-last' });
  });

  it('prints the EVA depth and why, and --vit-depth overrides it', async () => {
    const run = async (extra: string[]): Promise<{ lines: string[]; out: string }> => {
      const out = path.join(dir, `cli${extra.join('')}.gguf`);
      const argv = ['--eva-vit', files.evaVit, '--blip2', files.blip2, '--video-branch', files.videoBranch, '--out', out, '-q', ...extra];
      const lines: string[] = [];
      const log = console.log;
      console.log = (line: string) => lines.push(line);
      try {
        await convertCommand.run(parseCommandArgs(convertCommand, argv));
      } finally {
        console.log = log;
      }
      return { lines, out };
    };
    const rule = await run([]);
    expect(rule.lines[0]).toBe(`EVA ViT depth 3 of the 4 blocks in the file: width 32 is not the release's 1408: all blocks but the last, as BLIP-2 uses EVA's second-to-last layer`);
    const chosen = await run(['--vit-depth', '2']);
    expect(chosen.lines[0]).toBe('EVA ViT depth 2 of the 4 blocks in the file: set by --vit-depth (evaVit.pth has 4 blocks)');
    const info = await readGgufFileInfo(chosen.out, { readTensorInfo: true });
    expect((info.metadata as unknown as { vl: { vision: { depth: number } } }).vl.vision.depth).toBe(2);
    expect(info.tensorInfo!.filter((t) => t.name.endsWith('.ln1.weight') && t.name.startsWith('v.')).map((t) => t.name)).toEqual(['v.blk.0.ln1.weight', 'v.blk.1.ln1.weight']);
    await expect(run(['--vit-depth', '5'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('an integer from 1 to 4') });
    await expect(run(['--vit-depth', '0'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('gives the release head counts at release widths', () => {
    expect(defaultHeads(1408, RELEASE_HEAD_DIM.vit, 'vit-heads')).toBe(16);
    expect(defaultHeads(768, RELEASE_HEAD_DIM.qformer, 'qformer-heads')).toBe(12);
    expect(defaultHeads(768, RELEASE_HEAD_DIM.imagebind, 'imagebind-heads')).toBe(12);
    expect(defaultHeads(64, RELEASE_HEAD_DIM.qformer, 'qformer-heads')).toBe(4);
    expect(() => defaultHeads(42, RELEASE_HEAD_DIM.qformer, 'qformer-heads')).toThrow(/--qformer-heads/);
  });
});
