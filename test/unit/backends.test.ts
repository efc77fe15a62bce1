/**
 * The `gpu` load option: its values, its default from $VIDEO_LLAMA_GPU, the flavour packages it
 * resolves to, and the typed errors for a flavour that is missing or cannot be used. The Vulkan
 * device itself is exercised in test/gpu.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { GPU_ENV, gpuOption, resolveGpu } from '../../src/backends.js';
import { VideoLlamaError } from '../../src/errors.js';
import { loadAddon } from '../../src/native.js';
import { Projector } from '../../src/projector.js';
import { tempDir } from '../support/projector-files.js';
import { TINY_SIZES, writeSyntheticProjector } from '../support/synthetic-projector.js';

const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
const hasLibcuda = process.platform === 'linux' && execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libcuda.so.1');

function thrown(call: () => unknown): VideoLlamaError {
  try {
    call();
  } catch (error) {
    return error as VideoLlamaError;
  }
  throw new Error('expected a throw');
}

describe('gpu option values', () => {
  const saved = process.env[GPU_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[GPU_ENV];
    else process.env[GPU_ENV] = saved;
  });

  it("defaults to $VIDEO_LLAMA_GPU, else 'auto'", () => {
    delete process.env[GPU_ENV];
    expect(gpuOption(undefined, 'gpu')).toBe('auto');
    process.env[GPU_ENV] = 'vulkan';
    expect(gpuOption(undefined, 'gpu')).toBe('vulkan');
    process.env[GPU_ENV] = 'false';
    expect(gpuOption(undefined, 'gpu')).toBe(false);
    expect(gpuOption('cuda', 'gpu')).toBe('cuda');
  });

  it('rejects other values with INVALID_ARGUMENT naming the option or the variable', () => {
    for (const bad of [true, 'yes', 'CPU', 0, null]) {
      const error = thrown(() => gpuOption(bad, 'options.gpu'));
      expect([error.code, error.message]).toEqual(['INVALID_ARGUMENT', expect.stringContaining('options.gpu')]);
    }
    process.env[GPU_ENV] = 'opencl';
    expect(thrown(() => gpuOption(undefined, 'gpu')).message).toContain('$VIDEO_LLAMA_GPU');
  });
});

describe('gpu flavour resolution', () => {
  it('false loads no GPU backend', () => {
    expect(resolveGpu(false)).toEqual({ candidates: [], required: false });
  });

  it.runIf(linuxX64)('a flavour whose package is not installed is GPU_UNAVAILABLE naming the package to install', () => {
    const error = thrown(() => resolveGpu('vulkan', () => undefined));
    expect(error.code).toBe('GPU_UNAVAILABLE');
    expect(error.message).toContain('npm install @node-llama-cpp/linux-x64-vulkan@3.22.1');
    // 'auto' skips what is missing instead
    expect(resolveGpu('auto', () => undefined)).toEqual({ candidates: [], required: false });
  });

  it.runIf(process.platform === 'linux')('a flavour node-llama-cpp does not build for this platform is GPU_UNAVAILABLE', () => {
    const error = thrown(() => resolveGpu('metal'));
    expect([error.code, error.message]).toEqual(['GPU_UNAVAILABLE', `node-llama-cpp has no Metal build for linux-${process.arch}`]);
  });

  it.runIf(linuxX64)("'auto' offers CUDA then Vulkan, from the libraries of the installed flavour packages", () => {
    const { candidates, required } = resolveGpu('auto');
    expect(required).toBe(false);
    for (const { backend, libraries } of candidates) {
      expect(['CUDA', 'Vulkan']).toContain(backend);
      for (const library of libraries) {
        expect(fs.existsSync(library)).toBe(true);
        expect(path.basename(library)).toBe(`libggml-${backend.toLowerCase()}.so`);
      }
    }
    expect(candidates.map((c) => c.backend)).toEqual(['CUDA', 'Vulkan'].filter((b) => candidates.some((c) => c.backend === b)));
  });
});

describe('gpu on load', () => {
  let file: string;
  beforeAll(async () => {
    file = path.join(tempDir('video-llama-gpu-'), 'tiny.gguf');
    await writeSyntheticProjector(file, TINY_SIZES);
  });

  it("false runs on the CPU; 'auto' on a GPU only when one is registered", async () => {
    await using cpu = await Projector.load(file, { threads: 1, gpu: false });
    expect(cpu.info.backend).toBe('CPU');
    await using auto = await Projector.load(file, { threads: 1, gpu: 'auto' });
    const gpu = /\b(CUDA0|Vulkan0|Metal0?|MTL0)\b/.exec(loadAddon<{ devices(): string }>().devices())?.[1];
    expect(auto.info.backend).toBe(gpu ?? 'CPU');
  });

  it.runIf(linuxX64 && !hasLibcuda)("'cuda' without the NVIDIA driver rejects with GPU_UNAVAILABLE and the loader's reason", async () => {
    const error = await Projector.load(file, { gpu: 'cuda' }).then(() => undefined, (e: unknown) => e as VideoLlamaError);
    expect(error).toBeInstanceOf(VideoLlamaError);
    expect(error!.code).toBe('GPU_UNAVAILABLE');
    expect(error!.message).toMatch(/CUDA.*(libcuda|libcudart|libcublas|not installed)/);
  });
});
