/**
 * Writes small archives in the `torch.save` zip layout for tests: a pickle builder that emits the
 * opcodes torch.save uses, and a stored-entry zip writer (optionally with zip64 records, to test
 * that path without a 4 GB file).
 */
import fs from 'node:fs';
import zlib from 'node:zlib';

/** Emits pickle opcodes into a byte list. */
export class PickleBuilder {
  private readonly bytes: number[] = [];

  op(...codes: number[]): this { this.bytes.push(...codes); return this; }
  proto(): this { return this.op(0x80, 2); }
  mark(): this { return this.op(0x28); }
  tuple(): this { return this.op(0x74); }
  emptyTuple(): this { return this.op(0x29); }
  reduce(): this { return this.op(0x52); }
  setitems(): this { return this.op(0x75); }
  stop(): this { return this.op(0x2e); }
  newFalse(): this { return this.op(0x89); }
  binpersid(): this { return this.op(0x51); }
  global(module: string, name: string): this {
    return this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  string(text: string): this {
    const utf8 = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(utf8.length);
    return this.op(0x58, ...length, ...utf8);
  }
  int(value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    return this.op(0x4a, ...b);
  }
  ints(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  toBytes(): Uint8Array { return Uint8Array.from(this.bytes); }
}

export type TestDtype = 'f32' | 'f16' | 'bf16' | 'i64';
const STORAGE_CLASS: Record<TestDtype, string> = { f32: 'FloatStorage', f16: 'HalfStorage', bf16: 'BFloat16Storage', i64: 'LongStorage' };
const ITEM_BYTES: Record<TestDtype, number> = { f32: 4, f16: 2, bf16: 2, i64: 8 };

/** A tensor to save: its storage (by key, so several tensors can share one) and its view. */
export interface TestTensor {
  key: string;
  storage: string;
  dtype: TestDtype;
  shape: readonly number[];
  /** Default: row-major. */
  strides?: readonly number[];
  storageOffset?: number;
}

/** One storage: raw little-endian element bytes. */
export interface TestStorage {
  key: string;
  bytes: Uint8Array;
}

function rowMajor(shape: readonly number[]): number[] {
  const strides: number[] = [];
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i]!;
  }
  return strides;
}

/** The pickle of `OrderedDict(key -> tensor)`, wrapped as `{"model": ...}` when asked, like torch.save writes it. */
export function stateDictPickle(tensors: readonly TestTensor[], storages: ReadonlyMap<string, TestStorage & { dtype: TestDtype }>, wrapModel: boolean): Uint8Array {
  const p = new PickleBuilder().proto();
  if (wrapModel) p.op(0x7d).string('model'); // EMPTY_DICT, key
  p.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  for (const t of tensors) {
    const storage = storages.get(t.storage)!;
    p.string(t.key).global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().string('storage').global('torch', STORAGE_CLASS[t.dtype]).string(t.storage).string('cpu')
      .int(storage.bytes.length / ITEM_BYTES[t.dtype]).tuple().binpersid();
    p.int(t.storageOffset ?? 0).ints(t.shape).ints(t.strides ?? rowMajor(t.shape)).newFalse();
    p.global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  }
  p.setitems();
  if (wrapModel) p.op(0x73); // SETITEM
  return p.stop().toBytes();
}

/** A zip entry to write; `deflate` compresses it (torch never does; other zip tools may). */
export interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/** Writes a zip archive of `entries`; with `zip64`, every size and offset goes through zip64 records. */
export function writeZip(file: string, entries: readonly ZipInput[], zip64 = false): void {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const data = entry.deflate ? zlib.deflateRawSync(entry.data) : Buffer.from(entry.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(entry.deflate ? 8 : 0, 8);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    chunks.push(local, name, data);

    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(entry.deflate ? 8 : 0, 10);
    header.writeUInt32LE(zip64 ? 0xffffffff : data.length, 20);
    header.writeUInt32LE(zip64 ? 0xffffffff : entry.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt32LE(zip64 ? 0xffffffff : offset, 42);
    let extra = Buffer.alloc(0);
    if (zip64) {
      extra = Buffer.alloc(4 + 24);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(entry.data.length), 4);
      extra.writeBigUInt64LE(BigInt(data.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    header.writeUInt16LE(extra.length, 30);
    central.push(header, name, extra);
    offset += local.length + name.length + data.length;
  }
  const directory = Buffer.concat(central);
  const tail: Buffer[] = [];
  if (zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeBigUInt64LE(BigInt(entries.length), 24);
    record.writeBigUInt64LE(BigInt(entries.length), 32);
    record.writeBigUInt64LE(BigInt(directory.length), 40);
    record.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + directory.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(record, locator);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : directory.length, 12);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : offset, 16);
  fs.writeFileSync(file, Buffer.concat([...chunks, directory, ...tail, eocd]));
}

/** A tensor given by values (stored f32 unless `dtype` says otherwise). */
export interface SimpleTensor {
  key: string;
  shape: readonly number[];
  values: Float32Array;
  dtype?: 'f32' | 'f16';
}

function f32ToF16Bits(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = ((x >>> 23) & 0xff) - 127 + 15;
  const mantissa = x & 0x7fffff;
  if (exponent <= 0) return sign; // tests only use normal values; flush tiny ones
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | Math.round(mantissa / 8192);
}

/** Saves a state dict of simple tensors (one storage each) as a torch.save-style archive. */
export function writeStateDict(file: string, tensors: readonly SimpleTensor[], options: { wrapModel?: boolean; zip64?: boolean; archive?: string } = {}): void {
  const archive = options.archive ?? 'archive';
  const storages = new Map<string, TestStorage & { dtype: TestDtype }>();
  const views: TestTensor[] = tensors.map((t, i) => {
    const dtype = t.dtype ?? 'f32';
    const bytes = dtype === 'f32'
      ? new Uint8Array(t.values.buffer.slice(t.values.byteOffset, t.values.byteOffset + t.values.byteLength))
      : new Uint8Array(Uint16Array.from(t.values, f32ToF16Bits).buffer);
    storages.set(String(i), { key: String(i), bytes, dtype });
    return { key: t.key, storage: String(i), dtype, shape: t.shape };
  });
  const pickle = stateDictPickle(views, storages, options.wrapModel ?? false);
  writeZip(file, [
    { name: `${archive}/data.pkl`, data: pickle },
    ...[...storages.values()].map((s) => ({ name: `${archive}/data/${s.key}`, data: s.bytes })),
    { name: `${archive}/version`, data: Buffer.from('3\n') },
  ], options.zip64 ?? false);
}
