/**
 * Converting f32 tensors to other ggml types with ggml's own functions (through the addon).
 * @internal
 * @module
 */
import { loadAddon } from '../native.js';
import { f32Bytes } from './writer.js';
import type { GgmlType } from './types.js';

interface QuantizeBinding {
  quantize(data: Float32Array, rowLength: number, type: string): Uint8Array;
}

/** `data` (rows of `rowLength` f32 values) as bytes of `type`. */
export function quantizeRows(data: Float32Array, rowLength: number, type: GgmlType): Uint8Array {
  if (type === 'f32') return f32Bytes(data);
  return loadAddon<QuantizeBinding>().quantize(data, rowLength, type);
}
