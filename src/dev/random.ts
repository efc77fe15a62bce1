/**
 * Deterministic random weights and a file cache for the generated models (tests, demo, bench).
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** A seeded standard-normal source (mulberry32 + Box–Muller): the same seed, the same stream. */
export function normalSource(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** `count` draws of `mean + std * normal()`. */
export function randomMatrix(normal: () => number, count: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = mean + normal() * std;
  return out;
}

/**
 * The path of a generated file in `cacheDir` named by `prefix` and a hash of `key`, generating
 * it with `write` on first use. Written under a unique name and renamed, so concurrent
 * processes never see half a file.
 */
export async function cachedFile(cacheDir: string, prefix: string, key: unknown, write: (file: string) => Promise<void>): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
  const file = path.join(cacheDir, `${prefix}-${hash}.gguf`);
  try {
    await fs.access(file);
    return file;
  } catch {
    await fs.mkdir(cacheDir, { recursive: true });
    const partial = `${file}.${process.pid}.${Date.now()}.partial`;
    await write(partial);
    await fs.rename(partial, file);
    return file;
  }
}
