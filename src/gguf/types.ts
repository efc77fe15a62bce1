/**
 * ggml tensor types as GGUF stores them: id, block size (elements) and block bytes.
 * Not marked internal: the build strips internal declarations, and {@link GgmlType} appears in
 * public signatures.
 * @module
 */

/** A ggml tensor type name, as `ggml_type_name` spells it. */
export type GgmlType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_K' | 'q5_K' | 'q6_K' | 'i32';

interface TypeTraits {
  readonly id: number;
  readonly blockSize: number;
  readonly blockBytes: number;
}

/** From ggml.h's `enum ggml_type` and the block structs in ggml-common.h. */
export const GGML_TYPES: Readonly<Record<GgmlType, TypeTraits>> = {
  f32: { id: 0, blockSize: 1, blockBytes: 4 },
  f16: { id: 1, blockSize: 1, blockBytes: 2 },
  q4_0: { id: 2, blockSize: 32, blockBytes: 18 },
  q4_1: { id: 3, blockSize: 32, blockBytes: 20 },
  q5_0: { id: 6, blockSize: 32, blockBytes: 22 },
  q5_1: { id: 7, blockSize: 32, blockBytes: 24 },
  q8_0: { id: 8, blockSize: 32, blockBytes: 34 },
  q4_K: { id: 12, blockSize: 256, blockBytes: 144 },
  q5_K: { id: 13, blockSize: 256, blockBytes: 176 },
  q6_K: { id: 14, blockSize: 256, blockBytes: 210 },
  i32: { id: 26, blockSize: 1, blockBytes: 4 },
  bf16: { id: 30, blockSize: 1, blockBytes: 2 },
};

/** Bytes of a tensor of `shape` (ggml order: shape[0] is the row length) stored as `type`. */
export function tensorBytes(type: GgmlType, shape: readonly number[]): number {
  const { blockSize, blockBytes } = GGML_TYPES[type];
  const [rowLength = 1, ...rest] = shape;
  if (rowLength % blockSize !== 0) {
    throw new RangeError(`row length ${rowLength} is not a multiple of ${type}'s block size ${blockSize}`);
  }
  return (rowLength / blockSize) * blockBytes * rest.reduce((a, b) => a * b, 1);
}
