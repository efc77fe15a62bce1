/** Stage-by-stage comparison with the reference dumps, printed like llm.c's `maxdiff`. */
import { expect } from 'vitest';

import { fixture } from './fixtures.js';
import { maxAbsDiff, readNpyF32, type NpyArray } from './npy.js';

/** The first `rows` entries (along axis 0) of a C-order reference array. */
export function leadingRows(data: Float32Array, shape: readonly number[], rows: number): Float32Array {
  const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
  return data.subarray(0, rows * rowSize);
}

/** The first `rows` entries of an input array, as an encoder input `{ tensor, shape }`. */
export function leadingInput(array: NpyArray<Float32Array>, rows: number): { tensor: Float32Array; shape: number[] } {
  return { tensor: leadingRows(array.data, array.shape, rows), shape: [rows, ...array.shape.slice(1)] };
}

/** f32 must match the reference to this; quantized projectors to the bounds below (measured values in each test). */
export const F32_TOLERANCE = 1e-4;
export const QUANTIZED_TOLERANCE = { f16: 2e-2, bf16: 1e-1, q8_0: 1.5e-1 } as const;

/**
 * Bounds of an f32 projector on a Vulkan device (test/gpu). ggml-vulkan's matrix products keep
 * their operand tiles in f16 on any device with f16 arithmetic (the accumulator stays f32 when
 * asked, which graph/common's mul_mat_f32 does), so f32 weights there compute like f16 inputs
 * with f32 sums: measured on tiny-a (lavapipe) 1.2e-3 to 1.9e-3 max abs for the vision stages and
 * up to 4.5e-3 for audio after ImageBind's x20 logit scale, every token at cosine >= 0.9999998.
 * "Faithful on a GPU" is thus per-token cosine >= 0.9999 with max abs <= 1e-2 (twice the largest
 * measured). With `GGML_VK_DISABLE_F16=1` the products are f32 and the f32 bound itself holds
 * (measured 3.8e-6 on the ViT).
 */
export const GPU_F32_TOLERANCE = 1e-2;
export const GPU_MIN_COSINE = 0.9999;

/** `expected/<name>.npy` of a fixture set, or its first `rows` rows. */
function referenceRows(set: string, name: string, rows?: number): Float32Array {
  const reference = readNpyF32(fixture(set, `expected/${name}.npy`));
  return rows === undefined ? reference.data : leadingRows(reference.data, reference.shape, rows);
}

/** The smallest cosine similarity between corresponding rows (`dim` values each) of two arrays. */
export function minRowCosine(actual: Float32Array, expected: Float32Array, dim: number): number {
  let min = 1;
  for (let row = 0; row * dim < expected.length; row++) {
    let dot = 0, aa = 0, ee = 0;
    for (let i = row * dim; i < (row + 1) * dim; i++) {
      dot += actual[i]! * expected[i]!;
      aa += actual[i]! * actual[i]!;
      ee += expected[i]! * expected[i]!;
    }
    min = Math.min(min, dot / Math.sqrt(aa * ee));
  }
  return min;
}

/**
 * {@link expectStage} for an f32 projector on a GPU: at most {@link GPU_F32_TOLERANCE} and every
 * row (of `dim` values) at cosine >= {@link GPU_MIN_COSINE} to the reference.
 */
export function expectGpuStage(set: string, name: string, actual: Float32Array, dim: number, rows?: number): void {
  expectStage(set, name, actual, GPU_F32_TOLERANCE, rows);
  const cosine = minRowCosine(actual, referenceRows(set, name, rows), dim);
  console.log(`${name.padEnd(24)} min row cosine ${cosine.toFixed(7)} (bound ${GPU_MIN_COSINE})`);
  expect(cosine).toBeGreaterThanOrEqual(GPU_MIN_COSINE);
}

/**
 * Compares `actual` with `expected/<name>.npy` of a fixture set (its first `rows` rows when given),
 * logs the max abs difference and asserts it is at most `tolerance`. Returns the difference.
 */
export function expectStage(set: string, name: string, actual: Float32Array, tolerance: number, rows?: number): number {
  const expected = referenceRows(set, name, rows);
  const diff = maxAbsDiff(actual, expected);
  console.log(`${name.padEnd(24)} maxdiff ${diff.toExponential(2)} (tolerance ${tolerance.toExponential()})`);
  expect(diff).toBeLessThanOrEqual(tolerance);
  return diff;
}
