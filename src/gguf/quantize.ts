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

/** f16 bit pattern → f32 value, for all 65,536 patterns (one lookup per element). */
let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    halfTable[h] = exponent === 0 ? sign * mantissa * 2 ** -24
      : exponent === 31 ? (mantissa ? NaN : sign * Infinity)
      : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

/** f16 values (their bit patterns) as f32. */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const table = halfToFloatTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}
