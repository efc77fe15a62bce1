/**
 * The converter's errors on bad input: missing and misshapen tensors, files that are not
 * checkpoints, checkpoints that reference code, incomplete file groups.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { beforeAll, expect, it } from 'vitest';

import { convertCheckpoints } from '../../src/convert/convert.js';
import { openPth } from '../../src/convert/pth.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { PickleBuilder, writeStateDict, writeZip, type SimpleTensor } from '../support/torch-zip.js';

const ckpt = (name: string): string => fixture(TINY_A, `checkpoints/${name}`);
const VISION = { evaVit: ckpt('eva_vit_g.pth'), blip2: ckpt('blip2_pretrained.pth'), videoBranch: ckpt('VL_finetuned.pth') };
const AUDIO = { imagebind: ckpt('imagebind_huge.pth'), audioBranch: ckpt('AL_finetuned.pth') };

/** A copy of a checkpoint's floating-point tensors, edited by `edit` (return undefined to drop one). */
async function rewrite(source: string, target: string, edit: (t: SimpleTensor) => SimpleTensor | undefined): Promise<string> {
  const pth = await openPth(source);
  const tensors: SimpleTensor[] = [];
  for (const [key, t] of pth.tensors) {
    if (t.dtype !== 'f32' && t.dtype !== 'f16') continue;
    const edited = edit({ key, shape: t.shape, values: await t.read() });
    if (edited) tensors.push(edited);
  }
  await pth.close();
  writeStateDict(target, tensors, { wrapModel: true });
  return target;
}

describeWithFixtures(TINY_A, 'convertCheckpoints errors', () => {
  let dir: string;
  let out: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-convert-errors-'));
    out = path.join(dir, 'out.gguf');
  });

  it('names a missing tensor and its file (MISSING_TENSOR)', async () => {
    const missingKey = 'audio_Qformer.bert.encoder.layer.1.output_query.LayerNorm.bias';
    const al = await rewrite(AUDIO.audioBranch, path.join(dir, 'AL_missing.pth'), (t) => (t.key === missingKey ? undefined : t));
    await expect(convertCheckpoints({ ...AUDIO, audioBranch: al, out })).rejects.toMatchObject({
      code: 'MISSING_TENSOR',
      message: `tensor '${missingKey}' not found in AL_missing.pth`,
    });
    await expect(convertCheckpoints({ ...VISION, videoBranch: AUDIO.audioBranch, out })).rejects.toMatchObject({
      code: 'MISSING_TENSOR',
      message: expect.stringMatching(/'video_query_tokens' not found in AL_finetuned\.pth/),
    });
    expect(fs.existsSync(out)).toBe(false);
  });

  it('gives the expected and found shapes (TENSOR_SHAPE)', async () => {
    const al = await rewrite(AUDIO.audioBranch, path.join(dir, 'AL_shape.pth'), (t) =>
      t.key === 'audio_llama_proj.weight' ? { ...t, shape: [t.shape[0]!, t.shape[1]! / 2], values: t.values.subarray(0, t.values.length / 2) } : t);
    const error = await convertCheckpoints({ ...AUDIO, audioBranch: al, out }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TENSOR_SHAPE', details: { key: 'audio_llama_proj.weight', expected: [96, 64], found: [96, 32] } });
    expect((error as Error).message).toContain('AL_shape.pth has shape [96, 32]; expected [96, 64]');
  });

  it('rejects the audio projection when its LLM width differs from the vision one', async () => {
    const al = await rewrite(AUDIO.audioBranch, path.join(dir, 'AL_wide.pth'), (t) =>
      t.key.startsWith('audio_llama_proj.') ? { ...t, shape: [t.shape[0]! * 2, ...t.shape.slice(1)], values: Float32Array.from([...t.values, ...t.values]) } : t);
    await expect(convertCheckpoints({ ...VISION, ...AUDIO, audioBranch: al, out })).rejects.toMatchObject({ code: 'TENSOR_SHAPE' });
  });

  it('names truncated and garbage files (INVALID_MODEL)', async () => {
    const truncated = path.join(dir, 'eva_truncated.pth');
    const eva = fs.readFileSync(VISION.evaVit);
    fs.writeFileSync(truncated, eva.subarray(0, eva.length - 1000));
    await expect(convertCheckpoints({ ...VISION, evaVit: truncated, out })).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('eva_truncated.pth') });
    const garbage = path.join(dir, 'garbage.pth');
    fs.writeFileSync(garbage, Buffer.alloc(4096, 0x5a));
    await expect(convertCheckpoints({ ...AUDIO, imagebind: garbage, out })).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('garbage.pth') });
  });

  it('refuses a checkpoint whose pickle references another global (UNSAFE_CHECKPOINT)', async () => {
    const evil = path.join(dir, 'evil.pth');
    const pickle = new PickleBuilder().proto().global('builtins', 'eval').string('print(1)').op(0x85).reduce().stop();
    writeZip(evil, [{ name: 'evil/data.pkl', data: pickle.toBytes() }]);
    await expect(convertCheckpoints({ ...AUDIO, audioBranch: evil, out })).rejects.toMatchObject({
      code: 'UNSAFE_CHECKPOINT',
      message: expect.stringContaining("'builtins.eval'"),
    });
  });

  it('needs a complete group of files', async () => {
    await expect(convertCheckpoints({ evaVit: VISION.evaVit, out })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('missing --blip2, --video-branch'),
    });
    await expect(convertCheckpoints({ out })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(convertCheckpoints({ ...AUDIO, out, type: 'q4_0' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(convertCheckpoints({ ...AUDIO, out, heads: { imagebind: 5 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
