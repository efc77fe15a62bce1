/** The addon is our C++ only: llama.cpp comes prebuilt from node-llama-cpp's platform package. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const addon = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'video_llama.node');

describe.runIf(process.platform === 'linux')('native addon linkage', () => {
  it('loads libllama, libggml and libggml-base from the @node-llama-cpp platform package', () => {
    const ldd = execFileSync('ldd', [addon], { encoding: 'utf8' });
    for (const lib of ['libllama', 'libggml-base', 'libggml.']) {
      const line = ldd.split('\n').find((l) => l.trim().startsWith(lib));
      expect(line, `${lib} in:\n${ldd}`).toMatch(/=> \S*node_modules\/@node-llama-cpp\/[^/]+\/bins\//);
    }
  });
});

describe('native addon contents', () => {
  it('carries no benchmark code (that is video_llama_bench.node, built by npm run bench)', () => {
    const binary = fs.readFileSync(addon);
    for (const name of ['benchPeak', 'benchMatmul', 'matmul_seconds']) expect(binary.includes(name), name).toBe(false);
  });
});
