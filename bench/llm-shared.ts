/**
 * What the LLM benchmarks (`bench/llm.ts`, `bench/llm-parallel.ts`) share: the generated
 * LLaMA shapes, statistics and formatting, the machine's description, this process's RSS and
 * the child process that measures memory alone. Not part of `npm test`.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { TinyLlamaOptions } from '../src/dev/tiny-llama.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CACHE_DIR = path.join(repoRoot, '.cache');

/** LLaMA shapes (width, blocks, heads, feed-forward); matrices are q4_K, so widths are multiples of 256. */
export const SHAPES: Record<string, TinyLlamaOptions> = {
  '7b': { embeddingWidth: 4096, layers: 32, heads: 32, feedForwardWidth: 11008 },
  '3b': { embeddingWidth: 2560, layers: 32, heads: 20, feedForwardWidth: 6912 },
  '1b': { embeddingWidth: 2048, layers: 22, heads: 16, feedForwardWidth: 5632 },
  tiny: { embeddingWidth: 256, layers: 2, heads: 4, feedForwardWidth: 512 },
};

/** A shape as the LLM bench generates it: q4_K matrices and token embeddings, q6_K output, LLaMA's vocabulary. */
export function q4kModel(shape: TinyLlamaOptions): TinyLlamaOptions {
  return { ...shape, vocabularySize: 32000, weightType: 'q4_K', tokenEmbeddingType: 'q4_K', outputType: 'q6_K', pooledWeights: true };
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** The nearest-rank `p`-th percentile (0 < p <= 100). */
export const percentile = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
};
export const fmt = (x: number, digits = 1): string => x.toFixed(digits);
export const mib = (bytes: number): number => bytes / 2 ** 20;

/** A seeded xorshift stream of integers in [lo, hi). */
export function integers(seed: number, lo: number, hi: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return lo + (s % (hi - lo));
  };
}

/** VmRSS and VmHWM of this process, in bytes. */
export function rss(): { current: number; peak: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)![1]) * 1024;
  return { current: kb('VmRSS'), peak: kb('VmHWM') };
}

/** The CPU, memory, Node and commit, one line each. */
export function machine(): string[] {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const field = (key: string) => new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1] ?? '?';
  const flags = field('flags').split(' ');
  const simd = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16'].filter((f) => flags.includes(f)).join(' ');
  let commit = '?';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  } catch { /* not a git checkout */ }
  return [
    `CPU: ${field('model name')}, family ${field('cpu family')} model ${field('model')}, ${os.availableParallelism()} logical cores, ${simd}`,
    `Memory: ${fmt(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${os.type()} ${os.release()}; commit ${commit}; load average ${os.loadavg().map((x) => fmt(x, 2)).join(' ')}`,
  ];
}

/**
 * Runs `script` again in a child process with `--child <name>` appended (libllama's log on),
 * so that what it measures is not mixed with this process's memory. Resolves with the last
 * stdout line parsed as JSON and libllama's buffer sizes (bytes, by "<where> <device> <kind>")
 * from the child's log.
 */
export function runChild<T>(script: string, name: string): Promise<{ report: T; buffers: Map<string, number> }> {
  return new Promise((resolve, reject) => {
    const runner = path.join(repoRoot, 'node_modules', '.bin', 'vite-node');
    const childArgs = [script, '--', ...process.argv.slice(2).filter((a) => a !== '--'), '--child', name];
    const child = spawn(runner, childArgs, { cwd: repoRoot, env: { ...process.env, VIDEO_LLAMA_LOG: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.stderr.on('data', (d: Buffer) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`${name} child failed (${code}): ${err.slice(-2000)}`));
      // e.g. "llama_kv_cache:        CPU KV buffer size =  1024.00 MiB"
      const buffers = new Map<string, number>();
      for (const m of err.matchAll(/(\w+):\s+(\S+) (KV|compute|output) buffer size =\s+([\d.]+) MiB/g)) {
        const key = `${m[1]} ${m[2]} ${m[3]}`;
        buffers.set(key, (buffers.get(key) ?? 0) + Number(m[4]) * 2 ** 20);
      }
      resolve({ report: JSON.parse(line) as T, buffers });
    });
  });
}
