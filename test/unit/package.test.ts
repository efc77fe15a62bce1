/**
 * The package as users get it. A built package keeps working when its folder is moved (Docker
 * stages, copied app folders, pnpm stores): the addon finds llama.cpp's libraries relative to
 * itself and the CPU backends beside the libggml it loaded. The tests copy the package (compiled
 * JS, addon, package.json and the @node-llama-cpp platform package, nothing else) to a temporary
 * folder and use it from there: import, require, types, encode. `npm pack` lists what is shipped.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { Projector } from '../../src/projector.js';
import { maxAbsDiff } from '../support/npy.js';
import { tempDir } from '../support/projector-files.js';
import { TINY_SIZES, writeSyntheticProjector } from '../support/synthetic-projector.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PLATFORM_PACKAGE = path.join('node_modules', '@node-llama-cpp', `${process.platform}-${process.arch}`);


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
  let dir: string;
  let moved: string;
  let projectorFile: string;

  beforeAll(async () => {
    dir = tempDir('video-llama-moved-');
    moved = path.join(dir, 'elsewhere', 'video-llama');
    fs.mkdirSync(path.join(moved, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(moved, 'package.json'));
    fs.copyFileSync(path.join(repoRoot, 'build', 'Release', 'video_llama.node'), path.join(moved, 'build', 'Release', 'video_llama.node'));
    linkTree(path.join(repoRoot, PLATFORM_PACKAGE), path.join(moved, PLATFORM_PACKAGE));
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p',
      path.join(repoRoot, 'tsconfig.build.json'), '--outDir', path.join(moved, 'dist')], { stdio: 'inherit' });
    projectorFile = path.join(dir, 'tiny.gguf');
    await writeSyntheticProjector(projectorFile, TINY_SIZES);
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

  it('is loadable with require() as well as import (Node >= 20.19 loads ES modules that way)', () => {
    const consumer = path.join(dir, 'consumer');
    fs.mkdirSync(path.join(consumer, 'node_modules'), { recursive: true });
    fs.symlinkSync(moved, path.join(consumer, 'node_modules', 'video-llama'));
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    if (major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19)) {
      const out = execFileSync(process.execPath, ['-e', "const m = require('video-llama'); console.log(typeof m.VideoLlama, typeof m.Projector)"],
        { cwd: consumer, encoding: 'utf8' });
      expect(out.trim()).toBe('function function');
    }
    // The types a consumer compiles against, checked fully (no skipLibCheck): @internal members
    // are stripped and nothing left refers to what was stripped.
    fs.writeFileSync(path.join(consumer, 'use.ts'),
      "import { Projector, VideoLlama, type GpuOption } from 'video-llama';\n" +
      "const gpu: GpuOption = 'auto';\n" +
      "export const use = async () => [(await Projector.load('p.gguf', { gpu })).info.backend, VideoLlama.load];\n");
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict',
      '--module', 'nodenext', '--moduleResolution', 'nodenext', '--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules', '@types'),
      'use.ts'], { cwd: consumer, stdio: 'inherit' });
    const projectorTypes = fs.readFileSync(path.join(moved, 'dist', 'projector.d.ts'), 'utf8');
    expect(projectorTypes).not.toMatch(/encodeWithStages|computeBytes|@internal/);
  });

  it('ships no source maps (src/ is not in the package)', () => {
    const files = fs.readdirSync(path.join(moved, 'dist'), { recursive: true, encoding: 'utf8' });
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(fs.readFileSync(path.join(moved, 'dist', 'index.js'), 'utf8')).not.toContain('sourceMappingURL');
  });
});

describe('the published files', () => {
  it('include the docs the README links to and the LICENSE, not tests, sources or the generated API', () => {
    const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'],
      { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as [{ files: { path: string }[] }];
    const files = pack.files.map((f) => f.path);
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(((?:docs|models)\/[^)#]+)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(3);
    for (const file of [...links, 'LICENSE', 'README.md', 'package.json', 'scripts/build-native.mjs', 'CMakeLists.txt']) {
      expect(files, file).toContain(file);
    }
    expect(files.filter((f) => /^(test|src|bench|docs\/api)\//.test(f) || f.endsWith('.map') || f === 'scripts/setup.sh')).toEqual([]);
  });
});
