import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { openPth } from '../../src/convert/pth.js';
import { stateDictPickle, writeStateDict, writeTrainingCheckpoint, writeZip, type TestDtype, type TestStorage } from '../support/torch-zip.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-pth-'));
});

const ramp = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => i - n / 2 + 0.25);

/** An archive with one storage of `dtype` holding `bytes`, viewed by `views`. */
function writeViews(name: string, dtype: TestDtype, bytes: Uint8Array, views: { key: string; shape: number[]; strides?: number[]; storageOffset?: number }[]): string {
  const file = path.join(dir, name);
  const storages = new Map<string, TestStorage & { dtype: TestDtype }>([['0', { key: '0', bytes, dtype }]]);
  const pickle = stateDictPickle(views.map((v) => ({ ...v, storage: '0', dtype })), storages, false);
  writeZip(file, [{ name: 'x/data.pkl', data: pickle }, { name: 'x/data/0', data: bytes }]);
  return file;
}

describe('openPth', () => {
  it('reads a flat f32 state dict with shapes and values', async () => {
    const file = path.join(dir, 'flat.pth');
    writeStateDict(file, [{ key: 'a.weight', shape: [3, 4], values: ramp(12) }, { key: 'a.bias', shape: [3], values: ramp(3) }]);
    const pth = await openPth(file);
    expect([...pth.tensors.keys()]).toEqual(['a.weight', 'a.bias']);
    const weight = pth.tensors.get('a.weight')!;
    expect(weight).toMatchObject({ dtype: 'f32', shape: [3, 4], strides: [4, 1], storageOffset: 0 });
    expect(await weight.read()).toEqual(ramp(12));
    await pth.close();
  });

  it('unwraps {"model": state_dict} and reads zip64 archives', async () => {
    const file = path.join(dir, 'wrapped64.pth');
    writeStateDict(file, [{ key: 'q', shape: [1, 2, 4], values: ramp(8) }], { wrapModel: true, zip64: true });
    const pth = await openPth(file);
    expect(await pth.tensors.get('q')!.read()).toEqual(ramp(8));
    await pth.close();
  });

  it('exposes only "model" of a training checkpoint (optimizer, config, scaler, epoch beside it)', async () => {
    const file = path.join(dir, 'training.pth');
    const model = [{ key: 'proj.weight', shape: [2, 3], values: ramp(6) }, { key: 'proj.bias', shape: [2], values: ramp(2) }];
    writeTrainingCheckpoint(file, model);
    const pth = await openPth(file);
    expect([...pth.tensors.keys()]).toEqual(['proj.weight', 'proj.bias']);
    expect(await pth.tensors.get('proj.weight')!.read()).toEqual(ramp(6));
    await pth.close();
  });

  it('converts f16 and bf16 storages to f32 exactly', async () => {
    const f16 = writeViews('f16.pth', 'f16', Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0xff, 0x7b]), [{ key: 'h', shape: [4] }]);
    const pthHalf = await openPth(f16);
    expect(Array.from(await pthHalf.tensors.get('h')!.read())).toEqual([1, -2, 2 ** -24, 65504]);
    await pthHalf.close();
    const bf16 = writeViews('bf16.pth', 'bf16', Uint8Array.from([0x80, 0x3f, 0x49, 0x40]), [{ key: 'b', shape: [2] }]);
    const pthBf = await openPth(bf16);
    expect(Array.from(await pthBf.tensors.get('b')!.read())).toEqual([1, 3.140625]);
    await pthBf.close();
  });

  it('shares storages between tied tensors and honours offsets and strides', async () => {
    const values = ramp(12); // a 3×4 matrix
    const file = writeViews('views.pth', 'f32', new Uint8Array(values.buffer), [
      { key: 'm', shape: [3, 4] },
      { key: 'tied', shape: [3, 4] },
      { key: 'row1', shape: [4], storageOffset: 4 },
      { key: 'mT', shape: [4, 3], strides: [1, 4] }, // m.t()
    ]);
    const pth = await openPth(file);
    const get = (key: string) => pth.tensors.get(key)!;
    expect(get('tied').storageKey).toBe(get('m').storageKey);
    expect(await get('row1').read()).toEqual(values.slice(4, 8));
    const transposed = await get('mT').read();
    for (let r = 0; r < 4; r++) for (let c = 0; c < 3; c++) expect(transposed[r * 3 + c]).toBe(values[c * 4 + r]);
    await pth.close();
  });

  it('reads deflate-compressed entries', async () => {
    const file = path.join(dir, 'deflate.pth');
    const values = ramp(6);
    const storages = new Map<string, TestStorage & { dtype: TestDtype }>([['0', { key: '0', bytes: new Uint8Array(values.buffer), dtype: 'f32' }]]);
    writeZip(file, [
      { name: 'd/data.pkl', data: stateDictPickle([{ key: 'w', storage: '0', dtype: 'f32', shape: [6] }], storages, false), deflate: true },
      { name: 'd/data/0', data: new Uint8Array(values.buffer), deflate: true },
    ]);
    const pth = await openPth(file);
    expect(await pth.tensors.get('w')!.read()).toEqual(values);
    await pth.close();
  });

  it('rejects a tensor that reaches past its storage', async () => {
    const file = writeViews('overrun.pth', 'f32', new Uint8Array(16), [{ key: 'w', shape: [2, 4] }]);
    await expect(openPth(file)).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringMatching(/overrun\.pth.*storage of 4/) });
  });

  it('rejects reading a non-float tensor as f32', async () => {
    const file = writeViews('long.pth', 'i64', new Uint8Array(16), [{ key: 'ids', shape: [2] }]);
    const pth = await openPth(file);
    await expect(pth.tensors.get('ids')!.read()).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('i64') });
    await pth.close();
  });

  it('names the file when it is missing, not a zip, truncated or legacy', async () => {
    await expect(openPth(path.join(dir, 'nope.pth'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    const garbage = path.join(dir, 'garbage.pth');
    fs.writeFileSync(garbage, Buffer.from('this is not a checkpoint at all, just some text'.repeat(3)));
    await expect(openPth(garbage)).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringMatching(/^garbage\.pth is not a valid PyTorch checkpoint: no zip end-of-central-directory record/) });
    const good = path.join(dir, 'good.pth');
    writeStateDict(good, [{ key: 'w', shape: [64], values: ramp(64) }]);
    const bytes = fs.readFileSync(good);
    for (const keep of [10, bytes.length >> 1, bytes.length - 30]) {
      const truncated = path.join(dir, `truncated-${keep}.pth`);
      fs.writeFileSync(truncated, bytes.subarray(0, keep));
      // Every cut loses the zip directory at the end: a partial download (no release size for this name).
      await expect(openPth(truncated)).rejects.toMatchObject({
        code: 'INVALID_MODEL',
        details: { problem: 'partial-download' },
        message: `truncated-${keep}.pth is a partial download: it has ${keep} bytes and ends without the zip directory that closes every checkpoint. Download it again (or resume the download)`,
      });
    }
    const legacy = path.join(dir, 'legacy.pth');
    fs.writeFileSync(legacy, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
    await expect(openPth(legacy)).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('legacy') });
  });
});
