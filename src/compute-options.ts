/**
 * The options that say how much of the machine a load or context may use (`threads`,
 * `gpuLayers`), checked the same way by every loader: an impossible value is INVALID_ARGUMENT,
 * a value the machine cannot honour is clamped or ignored with a warning ({@link emitWarning}).
 * @internal
 * @module
 */
import os from 'node:os';

import type { NativeGpuChoice } from './backends.js';
import { emitWarning, invalidArgument } from './errors.js';

/**
 * Most CPU threads a `threads` option gets: twice the hardware threads. ggml's worker threads
 * spin while they wait for each other, so more threads than cores only add contention (600
 * threads on 2 cores took 93 s per token; 1e9 failed every call with `std::bad_alloc`).
 */
export function maxThreads(): number {
  return 2 * os.availableParallelism();
}

/**
 * A `threads` option: undefined stays undefined (the caller's default, all hardware threads);
 * otherwise an integer >= 1 (else INVALID_ARGUMENT), clamped to {@link maxThreads} with a
 * `VIDEO_LLAMA_THREADS_CLAMPED` warning.
 */
export function checkThreads(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < 1) throw invalidArgument(name, 'an integer >= 1', value);
  const max = maxThreads();
  if ((value as number) <= max) return value as number;
  emitWarning('THREADS_CLAMPED', `${name} = ${value as number} is more than twice the ${os.availableParallelism()} hardware threads of this ` +
    `machine; using ${max}`);
  return max;
}

/**
 * Warns (`VIDEO_LLAMA_GPU_LAYERS_IGNORED`) when layers are asked to go to a GPU but no GPU
 * backend can be used: `gpu: false`, or no GPU flavour of node-llama-cpp installed (a CPU-only
 * install). A flavour that is installed but finds no device falls back to the CPU in the addon.
 */
export function reportIgnoredGpuLayers(gpuLayers: number | undefined, gpu: NativeGpuChoice): void {
  if (!gpuLayers || gpu.candidates.length > 0) return;
  emitWarning('GPU_LAYERS_IGNORED', `gpuLayers = ${gpuLayers} is ignored: no GPU backend is installed (or gpu is false), so every ` +
    'layer runs on the CPU');
}
