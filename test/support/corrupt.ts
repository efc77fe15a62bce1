/**
 * Corrupted copies of files for robustness tests: a seeded PRNG, the byte ranges of a GGUF
 * header's fields (to aim edits at counts, lengths, dims, types and offsets), and the mutations.
 */

/** A seeded uniform source in [0, 1) (mulberry32): the same seed, the same stream. */
export function uniformSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export function pick(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

/** What a header field holds; the fields a corrupt value makes a reader misbehave on. */
export type GgufFieldKind =
  | 'version' | 'tensor_count' | 'kv_count' | 'key_length' | 'value_type' | 'string_length' | 'array_type'
  | 'array_count' | 'scalar' | 'tensor_name_length' | 'n_dims' | 'dim' | 'tensor_type' | 'tensor_offset';

/** One field of a GGUF header: where it is and how many bytes it takes. */
export interface GgufField {
  kind: GgufFieldKind;
  offset: number;
  size: 1 | 2 | 4 | 8;
}

/** Byte sizes of the GGUF scalar value types (gguf.h `enum gguf_type`; 7 is bool). */
const SCALAR_SIZES: Record<number, 1 | 2 | 4 | 8> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;

/**
 * The fields of a well-formed GGUF v3 header (array elements are skipped, but a few string
 * lengths inside arrays are listed) and where the tensor data starts (32-byte alignment).
 */
export function ggufHeaderFields(bytes: Uint8Array): { fields: GgufField[]; dataOffset: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: GgufField[] = [{ kind: 'version', offset: 4, size: 4 }];
  let pos = 8;
  // `pos += field(...)` would add to the position read before the call: skip in two steps.
  const skip = (bytes: number): void => {
    pos += bytes;
  };
  const field = (kind: GgufFieldKind, size: 1 | 2 | 4 | 8): number => {
    fields.push({ kind, offset: pos, size });
    pos += size;
    return size === 8 ? Number(view.getBigUint64(pos - 8, true)) : view.getUint32(pos - 4, true);
  };
  const skipString = (): void => {
    pos += 8 + Number(view.getBigUint64(pos, true));
  };
  const tensors = field('tensor_count', 8);
  const kvs = field('kv_count', 8);
  for (let i = 0; i < kvs; i++) {
    skip(field('key_length', 8));
    const type = field('value_type', 4);
    if (type === STRING) skip(field('string_length', 8));
    else if (type === ARRAY) {
      const elementType = field('array_type', 4);
      const count = field('array_count', 8);
      for (let j = 0; j < count; j++) {
        if (elementType !== STRING) pos += SCALAR_SIZES[elementType]!;
        else if (j < 2) skip(field('string_length', 8));
        else skipString();
      }
    } else field('scalar', SCALAR_SIZES[type]!);
  }
  for (let i = 0; i < tensors; i++) {
    skip(field('tensor_name_length', 8));
    const dims = field('n_dims', 4);
    for (let d = 0; d < dims; d++) field('dim', 8);
    field('tensor_type', 4);
    field('tensor_offset', 8);
  }
  return { fields, dataOffset: Math.ceil(pos / 32) * 32 };
}

/** Values that break readers: all ones, sign bits, just past 32 bits, zero, one. */
const HOSTILE_VALUES = [0xffff_ffff_ffff_ffffn, 0x7fff_ffff_ffff_ffffn, 0x1_0000_0000n, 0xffff_ffffn, 0x8000_0000n, 1n << 40n, 0n, 1n];

/** A copy of `bytes` with `field` set to `value` (its low bytes, for fields under 8 bytes). */
export function withFieldValue(bytes: Uint8Array, field: GgufField, value: bigint): Buffer {
  const copy = Buffer.from(bytes);
  if (field.size === 8) copy.writeBigUInt64LE(value, field.offset);
  else copy.writeUIntLE(Number(value & ((1n << BigInt(8 * field.size)) - 1n)), field.offset, field.size);
  return copy;
}

/** A copy of `bytes` with `field` set to a hostile value. */
export function withHostileField(bytes: Uint8Array, field: GgufField, random: () => number): Buffer {
  return withFieldValue(bytes, field, HOSTILE_VALUES[pick(random, HOSTILE_VALUES.length)]!);
}

/** A copy of `bytes` with `count` random bytes in [start, end) replaced by random values. */
export function withRandomBytes(bytes: Uint8Array, start: number, end: number, count: number, random: () => number): Buffer {
  const copy = Buffer.from(bytes);
  for (let i = 0; i < count; i++) copy[start + pick(random, end - start)] = pick(random, 256);
  return copy;
}
