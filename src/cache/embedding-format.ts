/**
 * The byte format of media embeddings (docs/caching.md, "The embedding format"): what the
 * on-disk encode cache stores, and what callers may keep in their own database.
 *
 * ```
 * offset  size  field
 * 0       4     magic "VLME"
 * 4       2     format version (1), little-endian
 * 6       2     count N of embeddings (≥ 1)
 * 8       …     N records, each: u32 header length H, H bytes of UTF-8 JSON
 *               { kind, tokens, dim, description?, projector? }, zero padding to a multiple
 *               of 4, then tokens × dim float32 little-endian
 * end-4   4     CRC-32 (zlib's) of every byte before it
 * ```
 * @module
 */
import { crc32 } from 'node:zlib';

import { VideoLlamaError } from '../errors.js';
import { validateMediaEmbedding, type MediaEmbedding } from '../media-embedding.js';

const MAGIC = 0x454d4c56; // "VLME" read as a little-endian u32
const VERSION = 1;
const PREAMBLE_BYTES = 8;
const CHECKSUM_BYTES = 4;

interface RecordHeader {
  kind: MediaEmbedding['kind'];
  tokens: number;
  dim: number;
  description?: string;
  projector?: string;
}

const align4 = (n: number): number => (n + 3) & ~3;

function recordHeader(media: MediaEmbedding): Uint8Array {
  const header: RecordHeader = { kind: media.kind, tokens: media.tokens, dim: media.dim };
  if (media.description !== undefined) header.description = media.description;
  if (media.projector !== undefined) header.projector = media.projector;
  return new TextEncoder().encode(JSON.stringify(header));
}

/**
 * The bytes of one or more media embeddings (for example the `[audio, video]` of one
 * `encodeMedia`), in the documented format with a checksum; read them back with
 * {@link deserializeMediaEmbeddings}. Throws INVALID_ARGUMENT for a malformed embedding.
 *
 * @example
 * ```ts
 * const media = await projector.encodeMedia('clip.mp4');
 * await db.put('clip.mp4', serializeMediaEmbeddings(media));
 * const again = deserializeMediaEmbeddings(await db.get('clip.mp4'));
 * ```
 */
export function serializeMediaEmbeddings(media: readonly MediaEmbedding[]): Uint8Array {
  if (!Array.isArray(media) || media.length === 0 || media.length > 0xffff) {
    throw new VideoLlamaError('INVALID_ARGUMENT', 'Expected an array of 1 to 65535 MediaEmbeddings to serialize', { name: 'media' });
  }
  const items = media.map((m, i) => ({ media: validateMediaEmbedding(m, `media[${i}]`), header: recordHeader(m) }));
  const size = items.reduce((n, { media: m, header }) => n + 4 + align4(header.length) + m.data.byteLength, PREAMBLE_BYTES) + CHECKSUM_BYTES;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, VERSION, true);
  view.setUint16(6, items.length, true);
  let offset = PREAMBLE_BYTES;
  for (const { media: m, header } of items) {
    view.setUint32(offset, header.length, true);
    bytes.set(header, offset + 4);
    offset += 4 + align4(header.length);
    writeFloats(view, offset, m.data);
    offset += m.data.byteLength;
  }
  view.setUint32(offset, crc32(bytes.subarray(0, offset)), true);
  return bytes;
}

function writeFloats(view: DataView, offset: number, data: Float32Array): void {
  if (littleEndianHost) {
    new Uint8Array(view.buffer, offset, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return;
  }
  for (let i = 0; i < data.length; i++) view.setFloat32(offset + 4 * i, data[i]!, true);
}

const littleEndianHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function corrupt(reason: string): VideoLlamaError {
  return new VideoLlamaError('INVALID_ARGUMENT', `Expected serialized media embeddings but the bytes are not valid: ${reason}`,
    { name: 'bytes', reason });
}

/**
 * The media embeddings of bytes made by {@link serializeMediaEmbeddings}. Throws
 * INVALID_ARGUMENT naming the fault for anything else: another format, a newer version, a
 * truncated record or a checksum mismatch (a corrupted byte anywhere). The float data is a
 * view on `bytes` when its alignment allows (no copy): do not reuse `bytes` afterwards.
 */
export function deserializeMediaEmbeddings(bytes: Uint8Array): MediaEmbedding[] {
  if (!(bytes instanceof Uint8Array)) throw corrupt('not a Uint8Array');
  if (bytes.byteLength < PREAMBLE_BYTES + CHECKSUM_BYTES) throw corrupt(`only ${bytes.byteLength} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw corrupt('no "VLME" magic at the start');
  const version = view.getUint16(4, true);
  if (version !== VERSION) throw corrupt(`format version ${version}, this library reads version ${VERSION}`);
  const end = bytes.byteLength - CHECKSUM_BYTES;
  if (view.getUint32(end, true) !== crc32(bytes.subarray(0, end))) throw corrupt('checksum mismatch (truncated or corrupted)');
  const count = view.getUint16(6, true);
  const media: MediaEmbedding[] = [];
  let offset = PREAMBLE_BYTES;
  for (let i = 0; i < count; i++) {
    const { embedding, next } = readRecord(bytes, view, offset, end, i);
    media.push(embedding);
    offset = next;
  }
  if (offset !== end || count === 0) throw corrupt(`${end - offset} bytes after ${count} records`);
  return media;
}

function readRecord(bytes: Uint8Array, view: DataView, offset: number, end: number, index: number): { embedding: MediaEmbedding; next: number } {
  if (offset + 4 > end) throw corrupt(`record ${index} is cut off`);
  const headerLength = view.getUint32(offset, true);
  const dataStart = offset + 4 + align4(headerLength);
  if (dataStart > end) throw corrupt(`record ${index}'s header is cut off`);
  let header: RecordHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(offset + 4, offset + 4 + headerLength))) as RecordHeader;
  } catch {
    throw corrupt(`record ${index}'s header is not JSON`);
  }
  const floats = Number.isInteger(header.tokens) && Number.isInteger(header.dim) ? header.tokens * header.dim : NaN;
  if (!(floats > 0) || dataStart + 4 * floats > end) throw corrupt(`record ${index}'s data does not fit (${header.tokens} x ${header.dim})`);
  const embedding: MediaEmbedding = { kind: header.kind, tokens: header.tokens, dim: header.dim, data: readFloats(bytes, dataStart, floats) };
  if (header.description !== undefined) embedding.description = header.description;
  if (header.projector !== undefined) embedding.projector = header.projector;
  return { embedding: validateMediaEmbedding(embedding, `record ${index}`), next: dataStart + 4 * floats };
}

function readFloats(bytes: Uint8Array, start: number, count: number): Float32Array {
  const byteOffset = bytes.byteOffset + start;
  if (littleEndianHost && byteOffset % 4 === 0) return new Float32Array(bytes.buffer, byteOffset, count);
  const view = new DataView(bytes.buffer, byteOffset, 4 * count);
  return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
}
