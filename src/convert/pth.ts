/**
 * Opening a PyTorch checkpoint (`torch.save` zip format) as a map from state-dict key to a lazy
 * tensor. Only `data.pkl` is read up front; a tensor's bytes are read when asked for, so a
 * 4.5 GB checkpoint costs the memory of the tensors actually used.
 *
 * Layout of the archive: `<archive>/data.pkl` (the pickled state dict, tensors as persistent ids
 * naming storages) and `<archive>/data/<key>` (one entry per storage, raw little-endian elements).
 * @internal
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';

import { VideoLlamaError } from '../errors.js';
import { f16ToF32 } from '../gguf/quantize.js';
import { checkFileHead, partialDownloadError } from './downloads.js';
import { PickleGlobal, unpickle } from './unpickle.js';
import { invalidCheckpoint, NO_END_RECORD, ZipReader, type ZipEntry } from './zip.js';

/** Element types of torch storages. */
export type TorchDtype = 'f64' | 'f32' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

const DTYPE_BYTES: Readonly<Record<TorchDtype, number>> = { f64: 8, f32: 4, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 };

/** The legacy storage classes `torch.save` names in persistent ids (`torch/storage.py`). */
const STORAGE_TYPES: Readonly<Record<string, TorchDtype>> = {
  DoubleStorage: 'f64',
  FloatStorage: 'f32',
  HalfStorage: 'f16',
  BFloat16Storage: 'bf16',
  LongStorage: 'i64',
  IntStorage: 'i32',
  ShortStorage: 'i16',
  CharStorage: 'i8',
  ByteStorage: 'u8',
  BoolStorage: 'bool',
};

/** Larger than any real checkpoint's pickle (they are under 1 MB); guards the allocation. */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;

/** One storage of the archive (tensors sharing it are tied, e.g. decoder.weight ≡ word_embeddings). */
interface Storage {
  readonly key: string;
  readonly dtype: TorchDtype;
  /** Elements. */
  readonly numel: number;
  readonly entry: ZipEntry;
}

/** A tensor of a checkpoint whose data is read on demand. */
export interface LazyTensor {
  /** State-dict key. */
  readonly key: string;
  readonly dtype: TorchDtype;
  /** PyTorch order (outermost first). */
  readonly shape: readonly number[];
  /** In elements, PyTorch order. */
  readonly strides: readonly number[];
  /** First element within the storage. */
  readonly storageOffset: number;
  /** Name of the storage within the archive; tensors with the same one share memory. */
  readonly storageKey: string;
  /** The values, converted to f32, in row-major (C) order whatever the strides. */
  read(): Promise<Float32Array>;
}

/**
 * An open checkpoint. Call {@link PthFile.close} when done.
 *
 * @example
 * ```ts
 * const pth = await openPth('eva_vit_g.pth');
 * const w = await pth.tensors.get('blocks.0.attn.qkv.weight')!.read();
 * await pth.close();
 * ```
 */
export interface PthFile {
  readonly file: string;
  /** Tensors by state-dict key, in file order (the `{"model": ...}` wrapper already removed). */
  readonly tensors: ReadonlyMap<string, LazyTensor>;
  close(): Promise<void>;
}

/**
 * Opens a `torch.save` checkpoint. Accepts a flat state dict or one wrapped as `{"model": ...}` /
 * `{"state_dict": ...}`: the release branch files are the original runner's whole training state
 * (`model`, `optimizer` with AdamW's `exp_avg` / `exp_avg_sq`, `config`, `scaler`, `epoch`), of
 * which only `model`'s tensors are exposed; the others' bytes are never read. Throws
 * FILE_NOT_FOUND, INVALID_MODEL (not a zip / pickle, truncated, malformed; a Git LFS pointer, an
 * HTML page or a partial download, each said so) or UNSAFE_CHECKPOINT (the pickle names a global
 * a state dict does not need).
 */
export async function openPth(file: string): Promise<PthFile> {
  if (!fs.existsSync(file)) throw new VideoLlamaError('FILE_NOT_FOUND', `checkpoint not found: ${file}`, { file });
  if (!fs.statSync(file).isFile()) throw new VideoLlamaError('FILE_NOT_FOUND', `checkpoint path ${file} is not a file`, { file });
  const head = await checkFileHead(file);
  const zip = await ZipReader.open(file).catch((error: unknown) => {
    const noEndRecord = error instanceof VideoLlamaError && error.details?.problem === NO_END_RECORD;
    throw noEndRecord && head.startsLikeZip ? partialDownloadError(file, head) : error;
  });
  try {
    const prefix = archivePrefix(zip);
    await rejectBigEndian(zip, prefix);
    const pickle = zip.entries.get(`${prefix}data.pkl`)!;
    if (pickle.size > MAX_PICKLE_BYTES) throw invalidCheckpoint(file, `data.pkl is ${pickle.size} bytes`);
    const storages = new Map<string, Storage>();
    const root = unpickle(await zip.readEntry(pickle), {
      globals: torchGlobals(file),
      persistentLoad: (pid) => loadStorage(pid, storages, zip, prefix),
      source: path.basename(file),
    });
    const tensors = new Map<string, LazyTensor>();
    for (const [key, value] of stateDict(root, file)) {
      if (typeof key === 'string' && value instanceof TensorRecord) tensors.set(key, lazyTensor(key, value, zip));
    }
    return { file, tensors, close: () => zip.close() };
  } catch (error) {
    await zip.close();
    throw error;
  }
}

/** The archive's folder: `<name>/` of the one `<name>/data.pkl` entry. */
function archivePrefix(zip: ZipReader): string {
  const pickles = [...zip.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    throw invalidCheckpoint(zip.file, pickles.length === 0 ? 'the zip archive has no <archive>/data.pkl entry' : 'the zip archive has several data.pkl entries');
  }
  return pickles[0]!.slice(0, -'data.pkl'.length);
}

/** Newer writers record the byte order; elements are read as little-endian. */
async function rejectBigEndian(zip: ZipReader, prefix: string): Promise<void> {
  const entry = zip.entries.get(`${prefix}byteorder`);
  if (!entry) return;
  const order = entry.size <= 16 ? Buffer.from(await zip.readEntry(entry)).toString('latin1') : '';
  if (order !== 'little') throw invalidCheckpoint(zip.file, `its tensors are stored in byte order '${order}'; only little-endian is supported`);
}

/** The result of `torch._utils._rebuild_tensor_v2` before its data is read. */
class TensorRecord {
  constructor(
    readonly storage: Storage,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
  ) {}
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function indexTuple(value: unknown, what: string, file: string): number[] {
  if (!Array.isArray(value) || !value.every(isIndex)) throw invalidCheckpoint(file, `${what} is not a tuple of non-negative integers`);
  return value;
}

/**
 * The globals a state dict needs, each implemented here as a value builder:
 * `collections.OrderedDict` (the dict itself and the empty backward-hooks dicts),
 * `torch._utils._rebuild_tensor_v2` (every tensor), `_rebuild_parameter*` (nn.Parameter
 * wrappers, kept as their tensor) and the storage classes (type tags in persistent ids).
 */
function torchGlobals(file: string): ReadonlyMap<string, PickleGlobal> {
  const globals = new Map<string, PickleGlobal>();
  const add = (name: string, call?: (args: readonly unknown[]) => unknown): void => {
    globals.set(name, new PickleGlobal(name, call));
  };
  add('collections.OrderedDict', (args) => {
    if (args.length !== 0) throw invalidCheckpoint(file, 'OrderedDict called with arguments');
    return new Map();
  });
  add('torch._utils._rebuild_tensor_v2', (args) => rebuildTensor(args, file));
  const parameter = (args: readonly unknown[]): unknown => {
    if (!(args[0] instanceof TensorRecord)) throw invalidCheckpoint(file, 'a parameter does not wrap a tensor');
    return args[0];
  };
  add('torch._utils._rebuild_parameter', parameter);
  add('torch._utils._rebuild_parameter_with_state', parameter);
  for (const storageType of Object.keys(STORAGE_TYPES)) add(`torch.${storageType}`);
  return globals;
}

/** `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`. */
function rebuildTensor(args: readonly unknown[], file: string): TensorRecord {
  const [storage, offset, size, stride] = args;
  if (args.length < 6 || !(storage instanceof StorageRef) || !isIndex(offset)) {
    throw invalidCheckpoint(file, '_rebuild_tensor_v2 called with unexpected arguments');
  }
  const shape = indexTuple(size, 'a tensor size', file);
  const strides = indexTuple(stride, 'a tensor stride', file);
  if (strides.length !== shape.length) throw invalidCheckpoint(file, `tensor size ${shape.length}-d but stride ${strides.length}-d`);
  const numel = shape.reduce((a, b) => a * b, 1);
  const last = offset + shape.reduce((sum, dim, i) => sum + (dim - 1) * strides[i]!, 0);
  if (numel > 0 && last >= storage.value.numel) {
    throw invalidCheckpoint(file, `a tensor reaches element ${last} of a storage of ${storage.value.numel}`);
  }
  return new TensorRecord(storage.value, offset, shape, strides);
}

/** Wraps a storage so the pickle cannot forge one (only persistentLoad creates these). */
class StorageRef {
  constructor(readonly value: Storage) {}
}

/** BINPERSID: `('storage', storage_type, key, location, numel)` → the storage, one per key. */
function loadStorage(pid: unknown, storages: Map<string, Storage>, zip: ZipReader, prefix: string): StorageRef {
  const file = zip.file;
  if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage' || !(pid[1] instanceof PickleGlobal) || typeof pid[2] !== 'string' || !isIndex(pid[4])) {
    throw invalidCheckpoint(file, 'a persistent id is not a storage record');
  }
  const [, storageType, key, , numel] = pid as [string, PickleGlobal, string, unknown, number];
  const dtype = STORAGE_TYPES[storageType.qualifiedName.replace(/^torch\./, '')];
  if (!dtype) throw invalidCheckpoint(file, `'${storageType.qualifiedName}' is not a storage type`);
  const known = storages.get(key);
  if (known) {
    if (known.dtype !== dtype || known.numel !== numel) throw invalidCheckpoint(file, `storage ${key} is declared twice differently`);
    return new StorageRef(known);
  }
  const entry = zip.entries.get(`${prefix}data/${key}`);
  if (!entry) throw invalidCheckpoint(file, `storage ${key} has no data/${key} entry`);
  if (entry.size < numel * DTYPE_BYTES[dtype]) {
    throw invalidCheckpoint(file, `storage ${key} holds ${entry.size} bytes, fewer than its ${numel} ${dtype} elements`);
  }
  const storage = { key, dtype, numel, entry };
  storages.set(key, storage);
  return new StorageRef(storage);
}

/** The state dict inside the unpickled root: the root itself, or its `model` / `state_dict` entry. */
function stateDict(root: unknown, file: string): Map<unknown, unknown> {
  if (!(root instanceof Map)) throw invalidCheckpoint(file, 'its top-level object is not a dict');
  const hasTensors = [...root.values()].some((v) => v instanceof TensorRecord);
  if (!hasTensors) {
    for (const wrapper of ['model', 'state_dict']) {
      const inner = root.get(wrapper);
      if (inner instanceof Map) return inner;
    }
  }
  return root;
}

function lazyTensor(key: string, record: TensorRecord, zip: ZipReader): LazyTensor {
  const { storage, storageOffset, shape, strides } = record;
  return {
    key,
    dtype: storage.dtype,
    shape,
    strides,
    storageOffset,
    storageKey: storage.key,
    read: () => readTensor(key, record, zip),
  };
}

/** Row-major strides of `shape`. */
function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i]!;
  }
  return strides;
}

async function readTensor(key: string, record: TensorRecord, zip: ZipReader): Promise<Float32Array> {
  const { storage, storageOffset, shape, strides } = record;
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel === 0) return new Float32Array(0);
  const itemBytes = DTYPE_BYTES[storage.dtype];
  const span = 1 + shape.reduce((sum, dim, i) => sum + (dim - 1) * strides[i]!, 0);
  const raw = await zip.readEntry(storage.entry, storageOffset * itemBytes, span * itemBytes);
  const values = toFloat32(raw, storage.dtype, key, zip.file);
  const rowMajor = contiguousStrides(shape);
  const contiguous = shape.every((dim, i) => dim === 1 || strides[i] === rowMajor[i]);
  return contiguous ? values : gather(values, shape, strides);
}

/** Copies a strided view into row-major order. */
function gather(values: Float32Array, shape: readonly number[], strides: readonly number[]): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let at = 0;
    for (let d = 0; d < shape.length; d++) at += index[d]! * strides[d]!;
    out[i] = values[at]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Little-endian elements of a floating-point dtype as f32. */
function toFloat32(bytes: Uint8Array, dtype: TorchDtype, key: string, file: string): Float32Array {
  const count = bytes.byteLength / DTYPE_BYTES[dtype];
  // Typed-array views need aligned offsets; reads of stored entries are fresh buffers and already are.
  const raw = bytes.byteOffset % DTYPE_BYTES[dtype] === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case 'f32':
      return new Float32Array(raw.buffer, raw.byteOffset, count);
    case 'f16': {
      return f16ToF32(new Uint16Array(raw.buffer, raw.byteOffset, count));
    }
    case 'bf16': {
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, count);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = bits[i]! << 16;
      return new Float32Array(out.buffer);
    }
    case 'f64':
      return Float32Array.from(new Float64Array(raw.buffer, raw.byteOffset, count));
    default:
      throw invalidCheckpoint(file, `tensor '${key}' has dtype ${dtype}; a floating-point tensor was expected`);
  }
}
