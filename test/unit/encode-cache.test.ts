import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { deserializeMediaEmbeddings, serializeMediaEmbeddings } from '../../src/cache/embedding-format.js';
import { EncodeCache, encodeCacheKey } from '../../src/cache/encode-cache.js';
import { fileIdentity, hashMediaInput } from '../../src/cache/hashing.js';
import { VideoLlamaError } from '../../src/errors.js';
import type { MediaEmbedding } from '../../src/media-embedding.js';
import { testEmbedding } from '../support/cache-data.js';
import { runSupportScript } from '../support/vite-node-process.js';

/** Runs test/support/cache-process.ts in a new Node process; resolves with its stdout. */
function otherProcess(...args: string[]): Promise<string> {
  return runSupportScript('cache-process.ts', ...args);
}

function entryFiles(dir: string, suffix = '.vlme'): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith(suffix)).map((f) => path.join(dir, f));
}

function expectCode(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VideoLlamaError);
    expect((error as VideoLlamaError).code).toBe(code);
    expect((error as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected a throw');
}

describe('embedding format', () => {
  const audio = { ...testEmbedding(1, 8, 96, 'audio'), projector: 'ab'.repeat(32) };
  const video = { ...testEmbedding(2, 32, 96), description: 'The video contains 8 frames sampled at 0.0, 1.2 seconds. ' };

  it('round-trips kind, tokens, dim, description, projector identity and every float bit', () => {
    const back = deserializeMediaEmbeddings(serializeMediaEmbeddings([audio, video]));
    expect(back).toHaveLength(2);
    expect(back[0]).toMatchObject({ kind: 'audio', tokens: 8, dim: 96, projector: audio.projector });
    expect(back[0]!.description).toBeUndefined();
    expect(back[1]).toMatchObject({ kind: 'video', tokens: 32, dim: 96, description: video.description });
    expect(Buffer.from(back[0]!.data.buffer, back[0]!.data.byteOffset, back[0]!.data.byteLength))
      .toEqual(Buffer.from(audio.data.buffer));
    expect(Array.from(back[1]!.data)).toEqual(Array.from(video.data));
  });

  it('is deterministic and starts with the documented preamble', () => {
    const a = serializeMediaEmbeddings([video]);
    expect(Buffer.from(a)).toEqual(Buffer.from(serializeMediaEmbeddings([video])));
    expect(Buffer.from(a.subarray(0, 4)).toString('latin1')).toBe('VLME');
    expect(new DataView(a.buffer).getUint16(4, true)).toBe(1);
    expect(new DataView(a.buffer).getUint16(6, true)).toBe(1);
  });

  it('rejects a flipped bit anywhere, a truncation, another magic and another version, naming the fault', () => {
    const bytes = serializeMediaEmbeddings([audio, video]);
    for (const at of [8, 20, 200, bytes.length - 100, bytes.length - 1]) {
      const flipped = Uint8Array.from(bytes);
      flipped[at]! ^= 0x10;
      expectCode(() => deserializeMediaEmbeddings(flipped), 'INVALID_ARGUMENT', /checksum mismatch/);
    }
    expectCode(() => deserializeMediaEmbeddings(bytes.subarray(0, bytes.length - 7)), 'INVALID_ARGUMENT', /checksum mismatch/);
    expectCode(() => deserializeMediaEmbeddings(bytes.subarray(0, 5)), 'INVALID_ARGUMENT', /only 5 bytes/);
    const other = Uint8Array.from(bytes);
    other[0] = 0x47;
    expectCode(() => deserializeMediaEmbeddings(other), 'INVALID_ARGUMENT', /magic/);
    const newer = Uint8Array.from(bytes);
    newer[4] = 2;
    expectCode(() => deserializeMediaEmbeddings(newer), 'INVALID_ARGUMENT', /version 2/);
  });

  it('refuses to serialize a malformed embedding or an empty list', () => {
    expectCode(() => serializeMediaEmbeddings([]), 'INVALID_ARGUMENT', /1 to 65535/);
    const bad = { ...video, tokens: 3 } as MediaEmbedding;
    expectCode(() => serializeMediaEmbeddings([bad]), 'INVALID_ARGUMENT', /media\[0\]\.data/);
  });
});

describe('cache keys', () => {
  const base = { projector: 'p1', operation: 'media', input: 'h1', options: { frames: 8, clips: 8 } };

  it('change with every part that decides the result, not with option order or undefined options', () => {
    const key = encodeCacheKey(base);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(encodeCacheKey({ ...base, options: { clips: 8, frames: 8, audio: undefined } })).toBe(key);
    for (const changed of [{ projector: 'p2' }, { operation: 'video' }, { input: 'h2' }, { options: { frames: 4, clips: 8 } },
      { options: { frames: 8, clips: 8, audio: false } }]) {
      expect(encodeCacheKey({ ...base, ...changed })).not.toBe(key);
    }
  });

  it('hash file content, not the path, and typed arrays with their shape', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-hash-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.bin'), 'same bytes');
      fs.writeFileSync(path.join(dir, 'b.bin'), 'same bytes');
      expect(await fileIdentity(path.join(dir, 'a.bin'))).toBe(await fileIdentity(path.join(dir, 'b.bin')));
      expect(await hashMediaInput(path.join(dir, 'a.bin'))).toBe(await hashMediaInput(new TextEncoder().encode('same bytes')));
      const pixels = new Uint8Array(12);
      expect(await hashMediaInput(pixels, [2, 2, 3])).not.toBe(await hashMediaInput(pixels, [1, 4, 3]));
      await expect(fileIdentity(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('EncodeCache', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-cache-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** getOrCompute with a counted encoder. */
  function counted(cache: EncodeCache, key: string, seed: number): { run: () => Promise<MediaEmbedding[]>; calls: () => number } {
    let calls = 0;
    return {
      run: () => cache.getOrCompute(key, async () => {
        calls += 1;
        return [testEmbedding(seed)];
      }),
      calls: () => calls,
    };
  }

  it('answers a second lookup from memory without running the encoder', async () => {
    const cache = new EncodeCache();
    const encode = counted(cache, 'k1', 1);
    const first = await encode.run();
    const second = await encode.run();
    expect(encode.calls()).toBe(1);
    expect(second[0]!.data).toBe(first[0]!.data);
    expect(cache.stats).toMatchObject({ memoryHits: 1, misses: 1, diskHits: 0 });
  });

  it('keeps memory under its byte bound, least recently used leaving first', async () => {
    const entry = testEmbedding(1).data.byteLength;
    const cache = new EncodeCache({ memoryBytes: 2 * entry });
    await cache.set('a', [testEmbedding(1)]);
    await cache.set('b', [testEmbedding(2)]);
    await cache.get('a'); // a is now more recent than b
    await cache.set('c', [testEmbedding(3)]);
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('a')).toBeDefined();
    expect(await cache.get('c')).toBeDefined();
  });

  it('survives a new cache object and a new process through cacheDir', async () => {
    const writer = new EncodeCache({ cacheDir: dir });
    await counted(writer, 'k'.repeat(64), 7).run();
    const reader = new EncodeCache({ cacheDir: dir });
    const encode = counted(reader, 'k'.repeat(64), 7);
    expect((await encode.run())[0]!.data[5]).toBeCloseTo(testEmbedding(7).data[5]!, 6);
    expect(encode.calls()).toBe(0);
    expect(reader.stats).toMatchObject({ diskHits: 1, misses: 0 });
    const child = JSON.parse(await otherProcess(dir, 'k'.repeat(64), 'read'));
    expect(child).toMatchObject({ found: true, stats: { diskHits: 1, misses: 0 } });
    expect(child.first).toBeCloseTo(testEmbedding(7).data[0]!, 6);
  }, 60_000);

  it('drops a truncated or bit-flipped entry and encodes again, never returning it', async () => {
    for (const damage of [
      (file: string) => fs.truncateSync(file, fs.statSync(file).size - 10),
      (file: string) => {
        const bytes = fs.readFileSync(file);
        bytes[100]! ^= 1;
        fs.writeFileSync(file, bytes);
      },
    ]) {
      const key = `${Math.random().toString(16).slice(2)}`.padEnd(64, '0');
      await new EncodeCache({ cacheDir: dir }).set(key, [testEmbedding(3)]);
      damage(entryFiles(dir).find((f) => f.includes(key))!);
      const cache = new EncodeCache({ cacheDir: dir });
      const encode = counted(cache, key, 3);
      const media = await encode.run();
      expect(encode.calls()).toBe(1);
      expect(cache.stats).toMatchObject({ corrupt: 1, diskHits: 0, misses: 1 });
      expect(Array.from(media[0]!.data)).toEqual(Array.from(testEmbedding(3).data));
      // The recomputed entry replaced the damaged one.
      const again = new EncodeCache({ cacheDir: dir });
      expect(await again.get(key)).toBeDefined();
      expect(again.stats.corrupt).toBe(0);
    }
  });

  it('evicts the least recently used entries to keep the folder under diskBytes', async () => {
    const entryBytes = serializeMediaEmbeddings([testEmbedding(0)]).byteLength;
    const cache = new EncodeCache({ cacheDir: dir, diskBytes: 3 * entryBytes, memoryBytes: 0 });
    const keys = Array.from({ length: 6 }, (_, i) => `${i}`.repeat(64));
    for (const [i, key] of keys.entries()) {
      await cache.set(key, [testEmbedding(i)]);
      await new Promise((r) => setTimeout(r, 15)); // distinct mtimes
      if (i === 3) await cache.get(keys[1]!); // 1 becomes recent again
    }
    const files = entryFiles(dir);
    const total = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    expect(total).toBeLessThanOrEqual(3 * entryBytes);
    expect(cache.stats.evicted).toBe(3);
    const kept = files.map((f) => path.basename(f, '.vlme')[0]).sort();
    expect(kept).toEqual(['1', '4', '5']);
  });

  it('leaves one valid entry when two processes write the same key at once, and no temporary files', async () => {
    const key = 'f'.repeat(64);
    await Promise.all([otherProcess(dir, key, 'write', '11'), otherProcess(dir, key, 'write', '12')]);
    expect(entryFiles(dir)).toHaveLength(1);
    expect(entryFiles(dir, '.tmp')).toHaveLength(0);
    const media = await new EncodeCache({ cacheDir: dir }).get(key);
    const first = media![0]!.data[0];
    expect([testEmbedding(11).data[0], testEmbedding(12).data[0]]).toContain(first);
  }, 60_000);

  it('never reads a writer\'s unfinished temporary file, and sweeps stale ones', async () => {
    const key = 'a'.repeat(64);
    fs.mkdirSync(path.join(dir, 'aa'), { recursive: true });
    const temp = path.join(dir, 'aa', `${key}.vlme.999-dead.tmp`);
    fs.writeFileSync(temp, serializeMediaEmbeddings([testEmbedding(1)]).subarray(0, 50)); // a writer killed midway
    const cache = new EncodeCache({ cacheDir: dir });
    expect(await cache.get(key)).toBeUndefined();
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(temp, old, old);
    await cache.set('b'.repeat(64), [testEmbedding(2)]); // the first write scans the folder
    expect(fs.existsSync(temp)).toBe(false);
  });

  it('counts a failed disk write and still returns the result', async () => {
    const file = path.join(dir, 'not-a-folder');
    fs.writeFileSync(file, '');
    const cache = new EncodeCache({ cacheDir: file });
    const media = await cache.getOrCompute('c'.repeat(64), async () => [testEmbedding(4)]);
    expect(media).toHaveLength(1);
    expect(cache.stats.writeFailures).toBe(1);
  });

  it('validates its options', () => {
    expectCode(() => new EncodeCache({ memoryBytes: -1 }), 'INVALID_ARGUMENT', /options\.memoryBytes/);
    expectCode(() => new EncodeCache({ diskBytes: 1.5 }), 'INVALID_ARGUMENT', /options\.diskBytes/);
    expectCode(() => new EncodeCache({ cacheDir: '' }), 'INVALID_ARGUMENT', /options\.cacheDir/);
  });
});
