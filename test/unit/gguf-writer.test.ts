import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readGgufFileInfo } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';

import { quantizeRows } from '../../src/gguf/quantize.js';
import { f32Bytes, GgufWriter } from '../../src/gguf/writer.js';

describe('GgufWriter', () => {
  it('writes metadata and aligned tensors that llama.cpp tooling reads back', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vl-gguf-')), 'test.gguf');
    const weights = Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i));
    await new GgufWriter()
      .set('general.architecture', { type: 'string', value: 'test' })
      .set('test.count', { type: 'u32', value: 7 })
      .set('test.eps', { type: 'f32', value: 1e-6 })
      .set('test.flag', { type: 'bool', value: true })
      .set('test.list', { type: 'array', elementType: 'string', value: ['a', 'bc'] })
      .addTensor('a.weight', [64, 3], 'f32', () => f32Bytes(weights))
      .addTensor('b.weight', [64, 3], 'q8_0', () => quantizeRows(weights, 64, 'q8_0'))
      .write(file);

    const info = await readGgufFileInfo(file, { readTensorInfo: true });
    const meta = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(meta.general!.architecture).toBe('test');
    expect(meta.test).toMatchObject({ count: 7, flag: true, list: ['a', 'bc'] });
    expect(meta.test!.eps as number).toBeCloseTo(1e-6, 12);
    expect(info.tensorInfo?.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType])).toEqual([
      ['a.weight', [64, 3], 0],
      ['b.weight', [64, 3], 8],
    ]);
    const raw = fs.readFileSync(file);
    // The data section is the f32 tensor, then the q8_0 one padded to 32 bytes; it starts aligned.
    const dataStart = raw.length - 64 * 3 * 4 - Math.ceil((3 * 2 * 34) / 32) * 32;
    expect(dataStart % 32).toBe(0);
    expect(new Float32Array(raw.buffer.slice(raw.byteOffset + dataStart, raw.byteOffset + dataStart + 12))).toEqual(weights.slice(0, 3));
  });

  it('rejects a source that returns the wrong number of bytes', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vl-gguf-')), 'bad.gguf');
    const writer = new GgufWriter().addTensor('x', [4], 'f32', () => new Uint8Array(8));
    await expect(writer.write(file)).rejects.toThrow(/produced 8 bytes, expected 16/);
  });
});
