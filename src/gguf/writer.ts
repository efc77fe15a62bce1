/**
 * The one GGUF writing path of the project (converter and test-model generator).
 * Metadata and tensor infos are written first; tensor data is then produced one tensor at a
 * time, so memory stays near the largest tensor rather than the file.
 * Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (version 3).
 * @internal
 * @module
 */
import fs from 'node:fs/promises';

import { GGML_TYPES, tensorBytes, type GgmlType } from './types.js';

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const GGUF_VERSION = 3;
const ALIGNMENT = 32;

/** GGUF metadata value types (gguf.h `enum gguf_type`). */
const enum ValueType {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}

/** A typed metadata value. Numbers must say their GGUF type; arrays hold one element type. */
export type GgufValue =
  | { type: 'u8' | 'u32' | 'i32' | 'f32' | 'u64' | 'f64'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; elementType: 'u32' | 'i32' | 'f32' | 'string'; value: readonly (number | string)[] };

/** Produces a tensor's bytes, already in its type, when the writer reaches it. */
export type TensorSource = () => Uint8Array | Promise<Uint8Array>;

interface PendingTensor {
  name: string;
  shape: number[];
  type: GgmlType;
  bytes: number;
  source: TensorSource;
}

const SCALAR_TYPES = { u8: ValueType.U8, u32: ValueType.U32, i32: ValueType.I32, f32: ValueType.F32, u64: ValueType.U64, f64: ValueType.F64 } as const;

/** Appends little-endian primitives to a growing buffer. */
class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;

  private push(buf: Buffer): void {
    this.chunks.push(buf);
    this.length += buf.length;
  }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  string(s: string): void { const bytes = Buffer.from(s, 'utf8'); this.u64(bytes.length); this.push(bytes); }
  scalar(type: keyof typeof SCALAR_TYPES, v: number): void {
    const sizes = { u8: 1, u32: 4, i32: 4, f32: 4, u64: 8, f64: 8 } as const;
    const b = Buffer.alloc(sizes[type]);
    if (type === 'u8') b.writeUInt8(v);
    else if (type === 'u32') b.writeUInt32LE(v);
    else if (type === 'i32') b.writeInt32LE(v);
    else if (type === 'f32') b.writeFloatLE(v);
    else if (type === 'u64') b.writeBigUInt64LE(BigInt(v));
    else b.writeDoubleLE(v);
    this.push(b);
  }
  bool(v: boolean): void { this.push(Buffer.from([v ? 1 : 0])); }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    if (pad) this.push(Buffer.alloc(pad));
  }
  toBuffer(): Buffer { return Buffer.concat(this.chunks); }
}

/**
 * Collects metadata and tensors, then writes a GGUF v3 file.
 *
 * @example
 * ```ts
 * const w = new GgufWriter();
 * w.set('general.architecture', { type: 'string', value: 'llama' });
 * w.addTensor('output_norm.weight', [64], 'f32', () => new Uint8Array(new Float32Array(64).fill(1).buffer));
 * await w.write('model.gguf');
 * ```
 */
export class GgufWriter {
  private readonly metadata = new Map<string, GgufValue>();
  private readonly tensors: PendingTensor[] = [];

  /** Sets a metadata key (a later call replaces an earlier one). */
  set(key: string, value: GgufValue): this {
    this.metadata.set(key, value);
    return this;
  }

  /**
   * Adds a tensor. `shape` is in ggml order (`shape[0]` = elements per row, i.e. the last
   * PyTorch dimension); `source` is called once, in file order, and must return exactly
   * the tensor's bytes in `type`.
   */
  addTensor(name: string, shape: readonly number[], type: GgmlType, source: TensorSource): this {
    if (Buffer.byteLength(name) >= 64) throw new RangeError(`tensor name '${name}' is 64 bytes or longer (GGML_MAX_NAME)`);
    if (this.tensors.some((t) => t.name === name)) throw new RangeError(`tensor '${name}' was added twice`);
    this.tensors.push({ name, shape: [...shape], type, bytes: tensorBytes(type, shape), source });
    return this;
  }

  /** Writes the file; tensors are produced and written one at a time. */
  async write(path: string): Promise<void> {
    const header = this.header();
    const file = await fs.open(path, 'w');
    try {
      await file.write(header);
      let position = header.length;
      for (const tensor of this.tensors) {
        const data = await tensor.source();
        if (data.byteLength !== tensor.bytes) {
          throw new RangeError(`tensor '${tensor.name}' produced ${data.byteLength} bytes, expected ${tensor.bytes}`);
        }
        await file.write(data, 0, data.byteLength, position);
        position += data.byteLength;
        const pad = (ALIGNMENT - (position % ALIGNMENT)) % ALIGNMENT;
        if (pad) {
          await file.write(new Uint8Array(pad), 0, pad, position);
          position += pad;
        }
      }
    } finally {
      await file.close();
    }
  }

  private header(): Buffer {
    const sink = new ByteSink();
    sink.u32(GGUF_MAGIC);
    sink.u32(GGUF_VERSION);
    sink.u64(this.tensors.length);
    sink.u64(this.metadata.size);
    for (const [key, value] of this.metadata) {
      sink.string(key);
      writeValue(sink, value);
    }
    let offset = 0;
    for (const t of this.tensors) {
      sink.string(t.name);
      sink.u32(t.shape.length);
      for (const dim of t.shape) sink.u64(dim);
      sink.u32(GGML_TYPES[t.type].id);
      sink.u64(offset);
      offset += t.bytes + ((ALIGNMENT - (t.bytes % ALIGNMENT)) % ALIGNMENT);
    }
    sink.padTo(ALIGNMENT);
    return sink.toBuffer();
  }
}

function writeValue(sink: ByteSink, value: GgufValue): void {
  switch (value.type) {
    case 'bool':
      sink.u32(ValueType.BOOL);
      sink.bool(value.value);
      return;
    case 'string':
      sink.u32(ValueType.STRING);
      sink.string(value.value);
      return;
    case 'array':
      sink.u32(ValueType.ARRAY);
      sink.u32(value.elementType === 'string' ? ValueType.STRING : SCALAR_TYPES[value.elementType]);
      sink.u64(value.value.length);
      for (const element of value.value) {
        if (value.elementType === 'string') sink.string(String(element));
        else sink.scalar(value.elementType, Number(element));
      }
      return;
    default:
      sink.u32(SCALAR_TYPES[value.type]);
      sink.scalar(value.type, value.value);
  }
}

/** The bytes of a Float32Array as a Uint8Array view (no copy). */
export function f32Bytes(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
