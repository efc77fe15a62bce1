/**
 * The converter on the release files as they really are: EVA copies of 40 and 39 blocks (and a
 * short one), branch files of different LLM sizes, and bad downloads (Git LFS pointers, HTML
 * pages, partial files). The EVA files here have the release width 1408 but tiny other tensors:
 * only the depth rule is under test, and it reads shapes alone.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { CheckpointSet } from '../../src/convert/checkpoints.js';
import { convertCheckpoints } from '../../src/convert/convert.js';
import { readHparams } from '../../src/convert/hparams.js';
import { openPth, type PthFile } from '../../src/convert/pth.js';
import { chooseVitDepth } from '../../src/convert/vit-depth.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { StateDictBuilder, writeStateDict, writeTrainingCheckpoint, type SimpleTensor } from '../support/torch-zip.js';

const ckpt = (name: string): string => fixture(TINY_A, `checkpoints/${name}`);
const VISION = { evaVit: ckpt('eva_vit_g.pth'), blip2: ckpt('blip2_pretrained.pth'), videoBranch: ckpt('VL_finetuned.pth') };
const AUDIO = { imagebind: ckpt('imagebind_huge.pth'), audioBranch: ckpt('AL_finetuned.pth') };

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-convert-release-'));
});

/** An EVA ViT-g state dict of `blocks` blocks at the release width 1408, every other size tiny. */
function releaseWidthEva(blocks: number): string {
  const D = 1408;
  const eva = new StateDictBuilder().add('cls_token', 1, 1, D).add('pos_embed', 1, 2, D).add('patch_embed.proj.weight', D, 3, 1, 1).add('blocks.0.mlp.fc1.weight', 8, D);
  for (let i = 0; i < blocks; i++) eva.add(`blocks.${i}.norm1.weight`, 1);
  const file = path.join(dir, `eva_${blocks}_blocks.pth`);
  writeStateDict(file, eva.tensors);
  return file;
}

describe('the EVA ViT depth rule', () => {
  it('follows the original at the release width: 39 of 40 or 39 blocks, an error below', () => {
    const file = 'eva_vit_g.pth';
    expect(chooseVitDepth({ blocks: 40, width: 1408, file })).toMatchObject({ depth: 39, blocksInFile: 40, rule: 'release', reason: expect.stringContaining("the file's last block is unused") });
    expect(chooseVitDepth({ blocks: 39, width: 1408, file })).toMatchObject({ depth: 39, blocksInFile: 39, rule: 'release', reason: expect.stringContaining('exactly') });
    expect(() => chooseVitDepth({ blocks: 38, width: 1408, file })).toThrow(expect.objectContaining({
      code: 'INVALID_MODEL', message: expect.stringMatching(/^eva_vit_g\.pth has 38 EVA ViT-g blocks; the original builds 39 .*--vit-depth 38/),
    }));
    expect(chooseVitDepth({ blocks: 38, width: 1408, file, option: 38 })).toMatchObject({ depth: 38, rule: 'option' });
  });

  it('keeps "all blocks but the last" at other widths, and checks --vit-depth', () => {
    expect(chooseVitDepth({ blocks: 4, width: 32, file: 'e.pth' })).toMatchObject({ depth: 3, rule: 'all-but-last' });
    expect(chooseVitDepth({ blocks: 40, width: 1024, file: 'e.pth' })).toMatchObject({ depth: 39, rule: 'all-but-last' });
    expect(() => chooseVitDepth({ blocks: 1, width: 32, file: 'e.pth' })).toThrow(expect.objectContaining({ code: 'INVALID_MODEL' }));
    for (const option of [0, 41, 2.5]) {
      expect(() => chooseVitDepth({ blocks: 40, width: 1408, file: 'e.pth', option })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});

describeWithFixtures(TINY_A, 'release-shaped checkpoints', () => {
  /** The vision hyper-parameters with a release-width EVA file of `blocks` blocks and the fixture's other files. */
  async function visionDepth(eva: string, vitDepth?: number): Promise<{ depth: number; reason: string }> {
    const files: PthFile[] = await Promise.all([eva, VISION.blip2, VISION.videoBranch].map((f) => openPth(f)));
    try {
      const [evaVit, blip2, videoBranch] = files;
      const read = await readHparams(new CheckpointSet({ evaVit, blip2, videoBranch }), { vision: true, audio: false }, { heads: {}, vitDepth });
      return { depth: read.hparams.vision!.vit.depth, reason: read.vitDepth!.reason };
    } finally {
      await Promise.all(files.map((f) => f.close()));
    }
  }

  it('reads 39 blocks from a 40-block and from a 39-block EVA file of the release width', async () => {
    expect(await visionDepth(releaseWidthEva(40))).toEqual({ depth: 39, reason: expect.stringContaining('depth 39') });
    expect(await visionDepth(releaseWidthEva(39))).toEqual({ depth: 39, reason: expect.stringContaining('exactly') });
  });

  it('refuses a 38-block EVA file of the release width, naming the count, unless --vit-depth says so', async () => {
    const eva = releaseWidthEva(38);
    const out = path.join(dir, 'short.gguf');
    await expect(convertCheckpoints({ ...VISION, evaVit: eva, out })).rejects.toMatchObject({
      code: 'INVALID_MODEL', message: expect.stringContaining('eva_38_blocks.pth has 38 EVA ViT-g blocks'),
    });
    expect(fs.existsSync(out)).toBe(false);
    expect((await visionDepth(eva, 38)).depth).toBe(38);
  });

  it('says when the branch files are for different LLM sizes (a 13B vision branch with a 7B audio branch)', async () => {
    /** A copy of a branch file with its projection to the LLM widened to `llmWidth` rows. */
    const withLlmWidth = async (source: string, projection: string, llmWidth: number, name: string): Promise<string> => {
      const pth = await openPth(source);
      const tensors: SimpleTensor[] = [];
      for (const [key, t] of pth.tensors) {
        if (t.dtype !== 'f32') continue;
        const shape = key.startsWith(`${projection}.`) ? [llmWidth, ...t.shape.slice(1)] : t.shape;
        tensors.push({ key, shape, values: key.startsWith(`${projection}.`) ? new Float32Array(shape.reduce((a, b) => a * b, 1)) : await t.read() });
      }
      await pth.close();
      const file = path.join(dir, name);
      writeTrainingCheckpoint(file, tensors);
      return file;
    };
    const vl13 = await withLlmWidth(VISION.videoBranch, 'llama_proj', 5120, 'VL_LLaMA_2_13B_Finetuned.pth');
    const al7 = await withLlmWidth(AUDIO.audioBranch, 'audio_llama_proj', 4096, 'AL_LLaMA_2_7B_Finetuned.pth');
    const error = await convertCheckpoints({ ...VISION, ...AUDIO, videoBranch: vl13, audioBranch: al7, out: path.join(dir, 'mixed.gguf') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TENSOR_SHAPE', details: { expected: 5120, found: 4096 } });
    expect((error as Error).message).toBe(
      'these branch files are for different LLM sizes: 5120 vs 4096 — VL_LLaMA_2_13B_Finetuned.pth projects to 5120 (a 13B LLM), ' +
        'AL_LLaMA_2_7B_Finetuned.pth to 4096 (a 7B LLM); use the vision and audio branch files of one release',
    );
    // Each branch alone is fine: the projector then takes that branch's LLM width.
    const audioOnly = await convertCheckpoints({ ...AUDIO, audioBranch: al7, out: path.join(dir, 'al7.gguf'), type: 'f32' });
    expect(audioOnly.hparams.llmWidth).toBe(4096);
  });

  it('says what a bad download is and what to do', async () => {
    const out = path.join(dir, 'bad.gguf');
    const convertWith = (audioBranch: string): Promise<unknown> => convertCheckpoints({ ...AUDIO, audioBranch, out }).catch((e: unknown) => e);

    const pointer = path.join(dir, 'AL_LLaMA_2_7B_Finetuned.pth');
    fs.writeFileSync(pointer, 'version https://git-lfs.github.com/spec/v1\noid sha256:87200b2b1159062f10a6ddbc5df12c2dd66af51d0326f9e2586f7596e0dec62c\nsize 275000000\n');
    expect(await convertWith(pointer)).toMatchObject({
      code: 'INVALID_MODEL',
      details: { problem: 'lfs-pointer', expectedBytes: 275_000_000 },
      message: expect.stringMatching(/^AL_LLaMA_2_7B_Finetuned\.pth is a Git LFS pointer \(\d+ bytes of text\), not the checkpoint: the real file is 275\.0 MB \(sha256 87200b2b1159…\)\. Run `git lfs pull`/),
    });

    const page = path.join(dir, 'VL_LLaMA_2_7B_Finetuned.pth');
    fs.writeFileSync(page, '<!DOCTYPE html>\n<html><head><title>404 – Hugging Face</title></head><body>Entry not found</body></html>\n');
    expect(await convertWith(page)).toMatchObject({
      code: 'INVALID_MODEL',
      details: { problem: 'html-page' },
      message: expect.stringMatching(/^VL_LLaMA_2_7B_Finetuned\.pth is an HTML page \(\d+ bytes, titled "404 – Hugging Face"\), not a checkpoint.*Download it again.*resolve/),
    });

    const partial = path.join(dir, 'AL_LLaMA_2_13B_Finetuned.pth');
    const whole = fs.readFileSync(AUDIO.audioBranch);
    fs.writeFileSync(partial, whole.subarray(0, whole.length >> 1));
    expect(await convertWith(partial)).toMatchObject({
      code: 'INVALID_MODEL',
      details: { problem: 'partial-download', expectedBytes: 284_000_000 },
      message: expect.stringMatching(/^AL_LLaMA_2_13B_Finetuned\.pth is a partial download: it has \d+ bytes .*the release AL_LLaMA_2_13B_Finetuned\.pth is about 284\.0 MB .*Download it again/),
    });
    expect(fs.existsSync(out)).toBe(false);
  });
});
