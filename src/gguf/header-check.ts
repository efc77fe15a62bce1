/**
 * A bounds-checked walk over the header (metadata and tensor infos) of a GGUF this library
 * writes, so that a corrupt file is reported with its exact fault ("the tensor count is 2^32,
 * but the 90 bytes left hold at most 2") before native code parses it. Reads the header in
 * chunks; the tensor data is not read. Tensor types must be ones of `GGML_TYPES`.
 * @internal
 * @module
 */
import fs from 'node:fs/promises';

import { VideoLlamaError } from '../errors.js';
import { GGML_TYPES, tensorBytes, type GgmlType } from './types.js';

/** GGUF versions gguf.h reads. */
const SUPPORTED_VERSIONS = new Set([2, 3]);
/** gguf.h `enum gguf_type`: byte sizes of the fixed-size types (7 is bool). */
const FIXED_SIZES: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/** The smallest tensor info: name length, n_dims, one dim, type, offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;
/** The smallest key-value pair: key length, type, a 1-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;
const CHUNK_BYTES = 1 << 20;
const DEFAULT_ALIGNMENT = 32;
const TYPE_BY_ID = new Map(Object.entries(GGML_TYPES).map(([name, traits]) => [traits.id, name as GgmlType]));

/** What the walk learns that later checks need. */
interface HeaderState {
  alignment: number;
  /** Where the next tensor's data must start, relative to the data section (gguf.h packs them in order). */
  nextOffset: number;
  names: Set<string>;
}

/** A fault in the header: what is wrong and at which byte. */
class HeaderFault extends Error {
  constructor(readonly at: number, reason: string) {
    super(reason);
  }
}

/** Sequential little-endian reads from a file handle, buffered, never past the file's end. */
class HeaderReader {
  pos = 0;
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;

  constructor(private readonly handle: fs.FileHandle, readonly size: number) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  async u32(): Promise<number> {
    return (await this.take(4)).readUInt32LE(0);
  }

  async u64(what: string): Promise<bigint> {
    const at = this.pos;
    const value = (await this.take(8)).readBigUInt64LE(0);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new HeaderFault(at, `${what} is ${value}, more than any file holds`);
    return value;
  }

  /** A u64 count of items of at least `minBytes` each that must fit in the rest of the file. */
  async count(what: string, minBytes: number): Promise<number> {
    const at = this.pos;
    const n = Number(await this.u64(what));
    if (n * minBytes > this.remaining) {
      throw new HeaderFault(at, `${what} is ${n}, but the ${this.remaining} bytes left hold at most ` +
        `${Math.floor(this.remaining / minBytes)} (truncated or corrupt)`);
    }
    return n;
  }

  async string(what: string): Promise<string> {
    const length = await this.count(`length of ${what}`, 1);
    return (await this.take(length)).toString('utf8');
  }

  async skip(bytes: number): Promise<void> {
    await this.take(bytes);
  }

  bytes(n: number): Promise<Buffer> {
    return this.take(n);
  }

  /** The next `n` bytes; a fault if the file ends first. */
  private async take(n: number): Promise<Buffer> {
    if (n > this.remaining) throw new HeaderFault(this.pos, `the file ends after ${this.size} bytes, inside the header (truncated)`);
    const offset = this.pos - this.bufferStart;
    if (offset + n > this.buffer.length) {
      this.buffer = Buffer.alloc(Math.min(Math.max(n, CHUNK_BYTES), this.remaining));
      await this.handle.read(this.buffer, 0, this.buffer.length, this.pos);
      this.bufferStart = this.pos;
    }
    const start = this.pos - this.bufferStart;
    this.pos += n;
    return this.buffer.subarray(start, start + n);
  }
}

/** Reads one metadata value of `type`, checking nested types and counts. */
async function readValue(reader: HeaderReader, type: number, key: string): Promise<number | undefined> {
  if (type === STRING) {
    await reader.string(`the string of '${key}'`);
    return undefined;
  }
  if (type === ARRAY) {
    const at = reader.pos;
    const elementType = await reader.u32();
    if (elementType === ARRAY || (elementType !== STRING && !(elementType in FIXED_SIZES))) {
      throw new HeaderFault(at, `'${key}' is an array of unknown type ${elementType}`);
    }
    const n = await reader.count(`the element count of '${key}'`, elementType === STRING ? 8 : FIXED_SIZES[elementType]!);
    if (elementType !== STRING) await reader.skip(n * FIXED_SIZES[elementType]!);
    else for (let i = 0; i < n; i++) await reader.string(`element ${i} of '${key}'`);
    return undefined;
  }
  if (!(type in FIXED_SIZES)) throw new HeaderFault(reader.pos - 4, `'${key}' has unknown value type ${type}`);
  return readScalar(reader, type);
}

/** A fixed-size value as a number (64-bit integers beyond 2^53 lose precision). */
async function readScalar(reader: HeaderReader, type: number): Promise<number> {
  const bytes = await reader.bytes(FIXED_SIZES[type]!);
  switch (type) {
    case 1: return bytes.readInt8(0);
    case 2: return bytes.readUInt16LE(0);
    case 3: return bytes.readInt16LE(0);
    case 4: return bytes.readUInt32LE(0);
    case 5: return bytes.readInt32LE(0);
    case 6: return bytes.readFloatLE(0);
    case 10: return Number(bytes.readBigUInt64LE(0));
    case 11: return Number(bytes.readBigInt64LE(0));
    case 12: return bytes.readDoubleLE(0);
    default: return bytes[0]!; // u8, bool
  }
}

/** `general.alignment`: a u32 power of two. */
async function readAlignment(reader: HeaderReader, type: number): Promise<number> {
  const at = reader.pos;
  if (type !== 4) throw new HeaderFault(at - 4, `'general.alignment' has value type ${type}, expected u32 (4)`);
  const alignment = await reader.u32();
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) throw new HeaderFault(at, `'general.alignment' is ${alignment}, expected a power of two`);
  return alignment;
}

async function readTensorInfo(reader: HeaderReader, index: number, state: HeaderState): Promise<void> {
  const name = await reader.string(`the name of tensor ${index}`);
  if (state.names.has(name)) throw new HeaderFault(reader.pos, `tensor '${name}' appears twice`);
  state.names.add(name);
  let at = reader.pos;
  const dims = await reader.u32();
  if (dims < 1 || dims > MAX_DIMS) throw new HeaderFault(at, `tensor '${name}' has ${dims} dimensions, expected 1..${MAX_DIMS}`);
  const shape: number[] = [];
  for (let d = 0; d < dims; d++) shape.push(Number(await reader.u64(`dimension ${d} of tensor '${name}'`)));
  if (shape.reduce((a, b) => a * b, 1) > reader.size * 8) {
    throw new HeaderFault(at, `tensor '${name}' has shape [${shape.join(', ')}], more elements than a ${reader.size}-byte file can hold`);
  }
  at = reader.pos;
  const typeId = await reader.u32();
  const type = TYPE_BY_ID.get(typeId);
  if (!type) throw new HeaderFault(at, `tensor '${name}' has type id ${typeId}, not one of ${[...TYPE_BY_ID.values()].join(', ')}`);
  if (shape[0]! % GGML_TYPES[type].blockSize !== 0) {
    throw new HeaderFault(at, `tensor '${name}' has rows of ${shape[0]} elements, not a multiple of ${type}'s block size ${GGML_TYPES[type].blockSize}`);
  }
  at = reader.pos;
  const offset = Number(await reader.u64(`the data offset of tensor '${name}'`));
  if (offset !== state.nextOffset) throw new HeaderFault(at, `tensor '${name}' has data offset ${offset}, expected ${state.nextOffset}`);
  const bytes = tensorBytes(type, shape);
  state.nextOffset = offset + Math.ceil(bytes / state.alignment) * state.alignment;
}

async function walkHeader(reader: HeaderReader): Promise<Map<string, number>> {
  const magic = await reader.u32();
  if (magic !== 0x46554747) throw new HeaderFault(0, 'it does not start with "GGUF"');
  const version = await reader.u32();
  if (!SUPPORTED_VERSIONS.has(version)) throw new HeaderFault(4, `GGUF version ${version} is not supported (expected 2 or 3)`);
  const tensors = await reader.count('the tensor count', MIN_TENSOR_INFO_BYTES);
  const kvs = await reader.count('the metadata count', MIN_KV_BYTES);
  const state: HeaderState = { alignment: DEFAULT_ALIGNMENT, nextOffset: 0, names: new Set() };
  const keys = new Set<string>();
  const scalars = new Map<string, number>();
  for (let i = 0; i < kvs; i++) {
    const key = await reader.string(`metadata key ${i}`);
    if (keys.has(key)) throw new HeaderFault(reader.pos, `metadata key '${key}' appears twice`);
    keys.add(key);
    const type = await reader.u32();
    if (key === 'general.alignment') state.alignment = await readAlignment(reader, type);
    const value = key === 'general.alignment' ? state.alignment : await readValue(reader, type, key);
    if (value !== undefined) scalars.set(key, value);
  }
  for (let i = 0; i < tensors; i++) await readTensorInfo(reader, i, state);
  return scalars;
}

/**
 * Rejects with INVALID_MODEL, naming the fault and its byte offset, when `file`'s GGUF header
 * is malformed: bad magic or version, counts or lengths larger than the file, unknown value
 * or tensor types, duplicate keys or tensor names, impossible tensor shapes, tensor offsets out
 * of order, or a header cut short. FILE_NOT_FOUND when it cannot be opened. Resolves to the
 * metadata's numeric and boolean values by key (strings and arrays are checked, not kept).
 */
export async function checkGgufHeader(file: string, what: string): Promise<Map<string, number>> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    throw new VideoLlamaError('FILE_NOT_FOUND', `The ${what} file ${file} cannot be opened (${(error as NodeJS.ErrnoException).code})`, { file }, { cause: error });
  }
  try {
    const { size } = await handle.stat();
    return await walkHeader(new HeaderReader(handle, size));
  } catch (error) {
    if (!(error instanceof HeaderFault)) throw error;
    throw new VideoLlamaError('INVALID_MODEL', `The ${what} file ${file} is not a valid GGUF file: ${error.message} (at byte ${error.at})`,
      { file, offset: error.at });
  } finally {
    await handle.close();
  }
}
