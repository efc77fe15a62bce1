/**
 * A built package keeps working when its folder is moved (Docker stages, copied app folders,
 * pnpm stores): the addon finds llama.cpp's libraries relative to itself and the CPU backends
 * beside the libggml it loaded. The test copies the package (compiled JS, addon, package.json and
 * the @node-llama-cpp platform package, nothing else) to a temporary folder and encodes there.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { Projector } from '../../src/projector.js';
import { maxAbsDiff } from '../support/npy.js';
import { tempDir } from '../support/projector-files.js';
import { writeSyntheticProjector, type SyntheticSizes } from '../support/synthetic-projector.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PLATFORM_PACKAGE = path.join('node_modules', '@node-llama-cpp', `${process.platform}-${process.arch}`);

const SIZES: SyntheticSizes = {
  llm: 16,
  vit: { imageSize: 32, patch: 16, width: 16, depth: 1, heads: 2, mlp: 32 },
  qformer: { width: 16, heads: 2, ffn: 32, layers: 1, queries: 4, crossFreq: 1 },
  video: { layers: 1, queries: 3, maxFrames: 2 },
  audio: { layers: 1, queries: 2, maxClips: 1 },
  imagebind: { width: 16, depth: 1, heads: 2, mlp: 32, out: 16, patch: 16, stride: 10, melBins: 32, targetFrames: 36 },
};

/** Hard links (a copy across file systems): the files are at a new path either way. */
function linkTree(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const [src, dst] = [path.join(from, entry.name), path.join(to, entry.name)];
    if (entry.isDirectory()) linkTree(src, dst);
    else {
      try {
        fs.linkSync(src, dst);
      } catch {
        fs.copyFileSync(src, dst);
      }
    }
  }
}

// Run by `node` inside the moved copy: encodes a frame, reports where libllama came from and what
// gpu: 'vulkan' says there (the copy has no Vulkan flavour).
const CHILD = `
import fs from 'node:fs';
import { Projector } from './dist/index.js';
const [file] = process.argv.slice(1);
const projector = await Projector.load(file, { threads: 1, gpu: false });
const s = projector.info.imageSize;
const tensor = Float32Array.from({ length: 3 * s * s }, (_, i) => Math.sin(i));
const image = await projector.encodeImage({ tensor, shape: [3, s, s] });
const libllama = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.includes('libllama'))?.split(' ').pop();
const vulkan = await Projector.load(file, { gpu: 'vulkan' }).then(() => 'loaded', (e) => e.code + ': ' + e.message);
console.log(JSON.stringify({ data: Array.from(image.data), libllama, vulkan }));
`;

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('a moved installation', () => {
  let moved: string;
  let projectorFile: string;

  beforeAll(async () => {
    const dir = tempDir('video-llama-moved-');
    moved = path.join(dir, 'elsewhere', 'video-llama');
    fs.mkdirSync(path.join(moved, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(moved, 'package.json'));
    fs.copyFileSync(path.join(repoRoot, 'build', 'Release', 'video_llama.node'), path.join(moved, 'build', 'Release', 'video_llama.node'));
    linkTree(path.join(repoRoot, PLATFORM_PACKAGE), path.join(moved, PLATFORM_PACKAGE));
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p',
      path.join(repoRoot, 'tsconfig.build.json'), '--outDir', path.join(moved, 'dist')], { stdio: 'inherit' });
    projectorFile = path.join(dir, 'tiny.gguf');
    await writeSyntheticProjector(projectorFile, SIZES);
  });

  it('has no absolute library path in the addon', () => {
    const dynamic = execFileSync('readelf', ['-d', path.join(repoRoot, 'build', 'Release', 'video_llama.node')], { encoding: 'utf8' });
    const runpath = /\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[(.*)\]/.exec(dynamic)?.[1];
    expect(runpath).toMatch(/^\$ORIGIN\//);
    expect(runpath).not.toContain(repoRoot);
  });

  it('imports and encodes from the moved copy, with the libraries beside it', async () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', CHILD, projectorFile],
      { cwd: moved, encoding: 'utf8' });
    const result = JSON.parse(out) as { data: number[]; libllama: string; vulkan: string };
    expect(result.libllama.startsWith(path.join(moved, PLATFORM_PACKAGE))).toBe(true);
    await using here = await Projector.load(projectorFile, { threads: 1, gpu: false });
    const s = here.info.imageSize;
    const tensor = Float32Array.from({ length: 3 * s * s }, (_, i) => Math.sin(i));
    const image = await here.encodeImage({ tensor, shape: [3, s, s] });
    expect(maxAbsDiff(Float32Array.from(result.data), image.data)).toBeLessThanOrEqual(1e-6);
    // A GPU flavour that is not installed next to the copy is a typed error naming the package.
    expect(result.vulkan).toMatch(/^GPU_UNAVAILABLE: .*@node-llama-cpp\/linux-x64-vulkan is not installed/);
  });
});
