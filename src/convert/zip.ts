/**
 * A reader for the zip container `torch.save` writes (including zip64, since release checkpoints
 * are 2-5 GB). Only the central directory is read up front; entry bytes are read on demand by
 * offset and length through one file handle, so a 5 GB file never has to fit in memory.
 *
 * The file is untrusted: every offset and length is checked against the file size before use.
 * Format: https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT (sections 4.3.7-4.3.16, 4.5.3).
 * @internal
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import { VideoLlamaError } from '../errors.js';

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const LOCAL_HEADER_SIZE = 30;
const ZIP64_EXTRA_ID = 0x0001;
const MAX_COMMENT = 0xffff;
/** Far above what a checkpoint needs (about 100 bytes per tensor); stops absurd allocations. */
const MAX_CENTRAL_DIRECTORY_BYTES = 256 * 1024 * 1024;
/** Node cannot hold one Buffer larger than this; no single tensor of ours comes close. */
const MAX_READ_BYTES = 2 ** 31 - 1;

const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

/** One file inside the archive, as its central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored (what torch.save writes), 8 = deflate. */
  readonly method: number;
  readonly compressedSize: number;
  /** Uncompressed size in bytes. */
  readonly size: number;
  readonly localHeaderOffset: number;
}

/** The error for a file that is not a usable PyTorch checkpoint (INVALID_MODEL, naming the file). */
export function invalidCheckpoint(file: string, problem: string, details: Record<string, unknown> = {}): VideoLlamaError {
  return new VideoLlamaError('INVALID_MODEL', `${path.basename(file)} is not a valid PyTorch checkpoint: ${problem}`, { file, ...details });
}

/** The `details.problem` of the error for a file without an end-of-central-directory record. */
export const NO_END_RECORD = 'no-end-record';

/** Reads a little-endian u64 that must fit in a JS number (offsets in files below 8 PB do). */
function readU64(buf: Buffer, offset: number, file: string): number {
  const value = buf.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidCheckpoint(file, `64-bit field ${value} is out of range`);
  return Number(value);
}

/**
 * An open zip archive. Call {@link ZipReader.close} when done.
 *
 * @example
 * ```ts
 * const zip = await ZipReader.open('model.pth');
 * const pickle = await zip.readEntry(zip.entries.get('model/data.pkl')!);
 * await zip.close();
 * ```
 */
export class ZipReader {
  /** Entries by name, in central directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly dataOffsets = new Map<string, number>();

  private constructor(
    readonly file: string,
    private readonly handle: fs.FileHandle,
    private readonly fileSize: number,
    entries: Map<string, ZipEntry>,
  ) {
    this.entries = entries;
  }

  /** Opens `file` and reads its central directory. Throws INVALID_MODEL when it is not a zip archive. */
  static async open(file: string): Promise<ZipReader> {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const entries = await readCentralDirectory(handle, size, file);
      return new ZipReader(file, handle, size, entries);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Closes the file handle. */
  async close(): Promise<void> {
    await this.handle.close();
  }

  /**
   * `length` bytes of `entry`'s uncompressed content starting at `offset` (whole entry by default).
   * Stored entries are read in place; deflated entries are inflated whole first.
   */
  async readEntry(entry: ZipEntry, offset = 0, length = entry.size - offset): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > entry.size) {
      throw invalidCheckpoint(this.file, `read of ${length} bytes at ${offset} is outside entry '${entry.name}' (${entry.size} bytes)`);
    }
    if (length > MAX_READ_BYTES) throw invalidCheckpoint(this.file, `entry '${entry.name}' needs a read of ${length} bytes, more than one buffer can hold`);
    const dataOffset = await this.dataOffset(entry);
    if (entry.method === METHOD_STORED) return this.readAt(dataOffset + offset, length);
    const inflated = zlib.inflateRawSync(await this.readAt(dataOffset, entry.compressedSize), { maxOutputLength: Math.max(entry.size, 1) });
    if (inflated.length !== entry.size) {
      throw invalidCheckpoint(this.file, `entry '${entry.name}' inflates to ${inflated.length} bytes, its header says ${entry.size}`);
    }
    return inflated.subarray(offset, offset + length);
  }

  /** Where an entry's bytes start: after its local header, whose name and extra lengths may differ from the central copy. */
  private async dataOffset(entry: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(entry.name);
    if (known !== undefined) return known;
    const header = Buffer.from(await this.readAt(entry.localHeaderOffset, LOCAL_HEADER_SIZE));
    if (header.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) throw invalidCheckpoint(this.file, `entry '${entry.name}' has no local header`);
    const start = entry.localHeaderOffset + LOCAL_HEADER_SIZE + header.readUInt16LE(26) + header.readUInt16LE(28);
    if (start + entry.compressedSize > this.fileSize) {
      throw invalidCheckpoint(this.file, `entry '${entry.name}' runs past the end of the file (truncated download?)`);
    }
    this.dataOffsets.set(entry.name, start);
    return start;
  }

  private readAt(position: number, length: number): Promise<Uint8Array> {
    return readExactly(this.handle, position, length, this.fileSize, this.file);
  }
}

/** Reads exactly `length` bytes at `position` into a fresh (hence aligned) buffer. */
async function readExactly(handle: fs.FileHandle, position: number, length: number, fileSize: number, file: string): Promise<Uint8Array> {
  if (position < 0 || position + length > fileSize) {
    throw invalidCheckpoint(file, `needs bytes ${position}..${position + length} but the file has ${fileSize} (truncated?)`);
  }
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(out, filled, length - filled, position + filled);
    if (bytesRead === 0) throw invalidCheckpoint(file, `unexpected end of file at byte ${position + filled}`);
    filled += bytesRead;
  }
  return out;
}

interface DirectoryLocation {
  entryCount: number;
  offset: number;
  size: number;
}

async function readCentralDirectory(handle: fs.FileHandle, fileSize: number, file: string): Promise<Map<string, ZipEntry>> {
  const location = await locateCentralDirectory(handle, fileSize, file);
  if (location.size > MAX_CENTRAL_DIRECTORY_BYTES) throw invalidCheckpoint(file, `central directory of ${location.size} bytes is implausibly large`);
  const directory = Buffer.from(await readExactly(handle, location.offset, location.size, fileSize, file));
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < location.entryCount; i++) {
    if (at + CENTRAL_HEADER_SIZE > directory.length || directory.readUInt32LE(at) !== CENTRAL_HEADER_SIGNATURE) {
      throw invalidCheckpoint(file, `central directory entry ${i} is malformed`);
    }
    const nameLength = directory.readUInt16LE(at + 28);
    const extraLength = directory.readUInt16LE(at + 30);
    const commentLength = directory.readUInt16LE(at + 32);
    const end = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    if (end > directory.length) throw invalidCheckpoint(file, `central directory entry ${i} runs past the directory`);
    const entry = parseCentralEntry(directory, at, nameLength, extraLength, file);
    entries.set(entry.name, entry);
    at = end;
  }
  return entries;
}

function parseCentralEntry(directory: Buffer, at: number, nameLength: number, extraLength: number, file: string): ZipEntry {
  const flags = directory.readUInt16LE(at + 8);
  const method = directory.readUInt16LE(at + 10);
  const name = directory.toString('utf8', at + CENTRAL_HEADER_SIZE, at + CENTRAL_HEADER_SIZE + nameLength);
  if (flags & 1) throw invalidCheckpoint(file, `entry '${name}' is encrypted`);
  if (method !== METHOD_STORED && method !== METHOD_DEFLATE) {
    throw invalidCheckpoint(file, `entry '${name}' uses compression method ${method}; only stored (0) and deflate (8) are supported`);
  }
  let compressedSize = directory.readUInt32LE(at + 20);
  let size = directory.readUInt32LE(at + 24);
  let localHeaderOffset = directory.readUInt32LE(at + 42);
  // Zip64: each field saturated at 0xFFFFFFFF is in the 0x0001 extra field, in this order.
  const extra = directory.subarray(at + CENTRAL_HEADER_SIZE + nameLength, at + CENTRAL_HEADER_SIZE + nameLength + extraLength);
  const zip64 = findExtraField(extra, ZIP64_EXTRA_ID);
  if (zip64) {
    let field = 0;
    const next = (): number => {
      if (field + 8 > zip64.length) throw invalidCheckpoint(file, `entry '${name}' has a short zip64 extra field`);
      const value = readU64(zip64, field, file);
      field += 8;
      return value;
    };
    if (size === 0xffffffff) size = next();
    if (compressedSize === 0xffffffff) compressedSize = next();
    if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
  }
  if (method === METHOD_STORED && compressedSize !== size) {
    throw invalidCheckpoint(file, `stored entry '${name}' has compressed size ${compressedSize} != size ${size}`);
  }
  return { name, method, compressedSize, size, localHeaderOffset };
}

function findExtraField(extra: Buffer, id: number): Buffer | undefined {
  for (let at = 0; at + 4 <= extra.length; ) {
    const fieldId = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    if (at + 4 + length > extra.length) return undefined;
    if (fieldId === id) return extra.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
  return undefined;
}

/** Finds the end-of-central-directory record (and its zip64 twin) at the end of the file. */
async function locateCentralDirectory(handle: fs.FileHandle, fileSize: number, file: string): Promise<DirectoryLocation> {
  if (fileSize < EOCD_SIZE) throw invalidCheckpoint(file, `only ${fileSize} bytes long`, { problem: NO_END_RECORD });
  const tailLength = Math.min(fileSize, EOCD_SIZE + MAX_COMMENT + ZIP64_LOCATOR_SIZE);
  const tailStart = fileSize - tailLength;
  const tail = Buffer.from(await readExactly(handle, tailStart, tailLength, fileSize, file));
  let eocd = -1;
  for (let at = tail.length - EOCD_SIZE; at >= 0; at--) {
    if (tail.readUInt32LE(at) === EOCD_SIGNATURE && at + EOCD_SIZE + tail.readUInt16LE(at + 20) === tail.length) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw invalidCheckpoint(file, 'no zip end-of-central-directory record (not a zip archive, or truncated)', { problem: NO_END_RECORD });
  const location = {
    entryCount: tail.readUInt16LE(eocd + 10),
    size: tail.readUInt32LE(eocd + 12),
    offset: tail.readUInt32LE(eocd + 16),
  };
  const locator = eocd - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && tail.readUInt32LE(locator) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64Offset = readU64(tail, locator + 8, file);
    const record = Buffer.from(await readExactly(handle, zip64Offset, ZIP64_EOCD_SIZE, fileSize, file));
    if (record.readUInt32LE(0) !== ZIP64_EOCD_SIGNATURE) throw invalidCheckpoint(file, 'zip64 end-of-central-directory record not found');
    location.entryCount = readU64(record, 32, file);
    location.size = readU64(record, 40, file);
    location.offset = readU64(record, 48, file);
  }
  if (location.offset + location.size > fileSize) throw invalidCheckpoint(file, 'central directory lies outside the file (truncated?)');
  return location;
}
