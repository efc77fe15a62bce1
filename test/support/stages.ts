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
 * Compares `actual` with `expected/<name>.npy` of a fixture set (its first `rows` rows when given),
 * logs the max abs difference and asserts it is at most `tolerance`. Returns the difference.
 */
export function expectStage(set: string, name: string, actual: Float32Array, tolerance: number, rows?: number): number {
  const reference = readNpyF32(fixture(set, `expected/${name}.npy`));
  const expected = rows === undefined ? reference.data : leadingRows(reference.data, reference.shape, rows);
  const diff = maxAbsDiff(actual, expected);
  console.log(`${name.padEnd(24)} maxdiff ${diff.toExponential(2)} (tolerance ${tolerance.toExponential()})`);
  expect(diff).toBeLessThanOrEqual(tolerance);
  return diff;
}
