/**
 * Converting f32 tensors to other ggml types with ggml's own functions (through the addon).
 * @internal
 * @module
 */
import { addon } from '../bindings/addon.js';
import { f32Bytes } from './writer.js';
import type { GgmlType } from './types.js';

/** `data` (rows of `rowLength` f32 values) as bytes of `type`. */
export function quantizeRows(data: Float32Array, rowLength: number, type: GgmlType): Uint8Array {
  if (type === 'f32') return f32Bytes(data);
  return addon().quantize(data, rowLength, type);
}
