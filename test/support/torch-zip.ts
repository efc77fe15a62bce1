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
  float(value: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(value);
    return this.op(0x47, ...b);
  }
  /** `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` for a view on `numel` elements of `storage`. */
  tensor(t: TestTensor, numel: number): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().string('storage').global('torch', STORAGE_CLASS[t.dtype]).string(t.storage).string('cpu').int(numel).tuple().binpersid();
    this.int(t.storageOffset ?? 0).ints(t.shape).ints(t.strides ?? rowMajor(t.shape)).newFalse();
    return this.global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  }
  /** A plain Python value: dicts, lists, tuples, str, int, float, bool, None, tensors (see {@link PyValue}). */
  value(v: PyValue, numel: (t: TestTensor) => number): this {
    if (v === null) return this.op(0x4e);
    if (typeof v === 'boolean') return this.op(v ? 0x88 : 0x89);
    if (typeof v === 'number') return this.int(v);
    if (typeof v === 'string') return this.string(v);
    if (v instanceof PyFloat) return this.float(v.value);
    if (v instanceof PyTuple) {
      this.mark();
      for (const item of v.items) this.value(item, numel);
      return this.tuple();
    }
    if (Array.isArray(v)) {
      this.op(0x5d).mark(); // EMPTY_LIST, MARK … APPENDS
      for (const item of v) this.value(item, numel);
      return this.op(0x65);
    }
    if (v instanceof PyOrderedDict) {
      this.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
      for (const [key, item] of v) this.value(key, numel).value(item, numel);
      return this.setitems();
    }
    if (v instanceof Map) {
      this.op(0x7d).mark(); // EMPTY_DICT, MARK … SETITEMS
      for (const [key, item] of v) this.value(key, numel).value(item, numel);
      return this.setitems();
    }
    return this.tensor(v, numel(v));
  }
  toBytes(): Uint8Array { return Uint8Array.from(this.bytes); }
}

/** A Python float (a JS number alone is written as an int). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A `collections.OrderedDict` (what `state_dict()` returns). */
export class PyOrderedDict extends Map<PyValue, PyValue> {}

/** A Python tuple. */
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

/** What {@link PickleBuilder.value} writes: a Map is a dict, an array a list, a {@link TestTensor} a tensor. */
export type PyValue = null | boolean | number | string | PyFloat | PyTuple | PyValue[] | Map<PyValue, PyValue> | TestTensor;

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

function storageNumel(storages: ReadonlyMap<string, TestStorage & { dtype: TestDtype }>, t: TestTensor): number {
  return storages.get(t.storage)!.bytes.length / ITEM_BYTES[t.dtype];
}

/** The pickle of `OrderedDict(key -> tensor)`, wrapped as `{"model": ...}` when asked, like torch.save writes it. */
export function stateDictPickle(tensors: readonly TestTensor[], storages: ReadonlyMap<string, TestStorage & { dtype: TestDtype }>, wrapModel: boolean): Uint8Array {
  const dict = new PyOrderedDict(tensors.map((t) => [t.key, t]));
  return new PickleBuilder().proto().value(wrapModel ? new Map([['model', dict]]) : dict, (t) => storageNumel(storages, t)).stop().toBytes();
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
    const data = entry.deflate ? zlib.deflateRawSync(entry.data) : Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
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
  // Written piece by piece: a release-size test checkpoint is never copied into one buffer.
  const fd = fs.openSync(file, 'w');
  try {
    for (const chunk of [...chunks, directory, ...tail, eocd]) fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
  }
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

type Storages = Map<string, TestStorage & { dtype: TestDtype }>;

/** Adds one storage holding `t`'s values and returns the tensor viewing it. */
function store(storages: Storages, t: SimpleTensor): TestTensor {
  const dtype = t.dtype ?? 'f32';
  const bytes = dtype === 'f32'
    ? new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength)
    : new Uint8Array(Uint16Array.from(t.values, f32ToF16Bits).buffer);
  const key = String(storages.size);
  storages.set(key, { key, bytes, dtype });
  return { key: t.key, storage: key, dtype, shape: t.shape };
}

/** Writes the archive of a pickle and its storages. */
function writeArchive(file: string, archive: string, pickle: Uint8Array, storages: Storages, zip64: boolean): void {
  writeZip(file, [
    { name: `${archive}/data.pkl`, data: pickle },
    ...[...storages.values()].map((s) => ({ name: `${archive}/data/${s.key}`, data: s.bytes })),
    { name: `${archive}/version`, data: Buffer.from('3\n') },
  ], zip64);
}

/** Saves a state dict of simple tensors (one storage each) as a torch.save-style archive. */
export function writeStateDict(file: string, tensors: readonly SimpleTensor[], options: { wrapModel?: boolean; zip64?: boolean; archive?: string } = {}): void {
  const storages: Storages = new Map();
  const views = tensors.map((t) => store(storages, t));
  writeArchive(file, options.archive ?? 'archive', stateDictPickle(views, storages, options.wrapModel ?? false), storages, options.zip64 ?? false);
}

/**
 * Saves `model` the way the original runner's `_save_checkpoint` does, which is the layout of the
 * released branch files: `{"model": state_dict, "optimizer": AdamW state (per tensor a `step`,
 * `exp_avg` and `exp_avg_sq`; two parameter groups), "config": a nested plain dict, "scaler":
 * GradScaler state, "epoch": 4}`. The optimizer moments are zeros (their values never matter to
 * a reader that only reads `model`).
 */
export function writeTrainingCheckpoint(file: string, model: readonly SimpleTensor[], options: { archive?: string } = {}): void {
  const storages: Storages = new Map();
  const views = model.map((t) => store(storages, t));
  const zeros = new Float32Array(Math.max(...model.map((t) => t.values.length)));
  const moment = (t: SimpleTensor): TestTensor => store(storages, { key: '', shape: t.shape, values: zeros.subarray(0, t.values.length) });
  const state = new Map<PyValue, PyValue>(model.map((t, i) => [i, new Map<PyValue, PyValue>([
    ['step', store(storages, { key: '', shape: [], values: Float32Array.of(1) })],
    ['exp_avg', moment(t)],
    ['exp_avg_sq', moment(t)],
  ])]));
  // LAVIS' optimizer groups: weight decay for matrices, none for biases, norms and 1-d tensors.
  const decayed = model.map((t, i) => [t, i] as const).filter(([t]) => t.shape.length >= 2 && !t.key.includes('LayerNorm'));
  const group = (weightDecay: number, params: number[]): Map<PyValue, PyValue> => new Map<PyValue, PyValue>([
    ['lr', new PyFloat(3e-5)], ['betas', new PyTuple([new PyFloat(0.9), new PyFloat(0.999)])], ['eps', new PyFloat(1e-8)],
    ['weight_decay', new PyFloat(weightDecay)], ['amsgrad', false], ['maximize', false], ['params', params],
  ]);
  const decayedIndices = decayed.map(([, i]) => i);
  const root = new Map<PyValue, PyValue>([
    ['model', new PyOrderedDict(views.map((v) => [v.key, v]))],
    ['optimizer', new Map<PyValue, PyValue>([
      ['state', state],
      ['param_groups', [group(0.05, decayedIndices), group(0, model.map((_, i) => i).filter((i) => !decayedIndices.includes(i)))]],
    ])],
    ['config', new Map<PyValue, PyValue>([
      ['model', new Map<PyValue, PyValue>([['arch', 'video_llama'], ['max_frame_pos', 32], ['frozen_llama_proj', false], ['ckpt', null]])],
      ['run', new Map<PyValue, PyValue>([['task', 'video_text_pretrain'], ['init_lr', new PyFloat(3e-5)], ['max_epoch', 5], ['amp', true]])],
    ])],
    ['scaler', new Map<PyValue, PyValue>([
      ['scale', new PyFloat(65536)], ['growth_factor', new PyFloat(2)], ['backoff_factor', new PyFloat(0.5)], ['growth_interval', 2000], ['_growth_tracker', 0],
    ])],
    ['epoch', 4],
  ]);
  const pickle = new PickleBuilder().proto().value(root, (t) => storageNumel(storages, t)).stop().toBytes();
  writeArchive(file, options.archive ?? 'archive', pickle, storages, false);
}

let seed = 7;
/** Deterministic values in [-0.5, 0.5). */
export function randomValues(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
  return out;
}

/** Sizes of a Q-Former for {@link StateDictBuilder.qformer}. */
export interface QformerShape {
  width: number;
  ffn: number;
  layers: number;
  /** Cross-attention in layers `i % freq == 0`. */
  freq: number;
  queries: number;
  /** Width of the cross-attention's keys and values. */
  encoder: number;
}

/** Sizes of ImageBind's audio encoder for {@link StateDictBuilder.imagebindAudio}. */
export interface ImagebindAudioShape {
  width: number;
  blocks: number;
  mlp: number;
  /** Width of the output head. */
  out: number;
  /** The stem's square conv kernel. */
  kernel: number;
  /** Patch tokens (pos_embed has one more row). */
  patches: number;
}

/** Collects `key → shape` tensors with random values, in the release key layout. */
export class StateDictBuilder {
  readonly tensors: SimpleTensor[] = [];
  add(key: string, ...shape: number[]): this {
    this.tensors.push({ key, shape, values: randomValues(shape.reduce((a, b) => a * b, 1)) });
    return this;
  }
  linear(key: string, inW: number, outW: number, bias = true): this {
    this.add(`${key}.weight`, outW, inW);
    return bias ? this.add(`${key}.bias`, outW) : this;
  }
  norm(key: string, n: number): this {
    return this.add(`${key}.weight`, n).add(`${key}.bias`, n);
  }
  /** ImageBind's audio stem, trunk and head (no `log_logit_scale` buffer). */
  imagebindAudio(ib: ImagebindAudioShape): this {
    const pre = 'modality_preprocessors.audio.';
    this.add(`${pre}cls_token`, 1, 1, ib.width).add(`${pre}rgbt_stem.proj.weight`, ib.width, 1, ib.kernel, ib.kernel)
      .norm(`${pre}rgbt_stem.norm_layer`, ib.width).add(`${pre}pos_embedding_helper.pos_embed`, 1, ib.patches + 1, ib.width);
    for (let i = 0; i < ib.blocks; i++) {
      const b = `modality_trunks.audio.blocks.${i}.`;
      this.norm(`${b}norm_1`, ib.width).add(`${b}attn.in_proj_weight`, 3 * ib.width, ib.width).add(`${b}attn.in_proj_bias`, 3 * ib.width)
        .add(`${b}attn.bias_k`, 1, 1, ib.width).add(`${b}attn.bias_v`, 1, 1, ib.width).linear(`${b}attn.out_proj`, ib.width, ib.width)
        .norm(`${b}norm_2`, ib.width).linear(`${b}mlp.fc1`, ib.width, ib.mlp).linear(`${b}mlp.fc2`, ib.mlp, ib.width);
    }
    return this.norm('modality_heads.audio.0', ib.width).linear('modality_heads.audio.2', ib.width, ib.out, false);
  }

  /** A BLIP-2-style Q-Former under `bert` (e.g. `audio_Qformer.bert.`) with its query tokens at `tokens`. */
  qformer(bert: string, tokens: string, q: QformerShape): this {
    const H = q.width;
    this.add(tokens, 1, q.queries, H).norm(`${bert}embeddings.LayerNorm`, H);
    for (let i = 0; i < q.layers; i++) {
      const l = `${bert}encoder.layer.${i}.`;
      for (const n of ['query', 'key', 'value']) this.linear(`${l}attention.self.${n}`, H, H);
      this.linear(`${l}attention.output.dense`, H, H).norm(`${l}attention.output.LayerNorm`, H);
      if (i % q.freq === 0) {
        this.linear(`${l}crossattention.self.query`, H, H).linear(`${l}crossattention.self.key`, q.encoder, H).linear(`${l}crossattention.self.value`, q.encoder, H);
        this.linear(`${l}crossattention.output.dense`, H, H).norm(`${l}crossattention.output.LayerNorm`, H);
      }
      this.linear(`${l}intermediate_query.dense`, H, q.ffn).linear(`${l}output_query.dense`, q.ffn, H).norm(`${l}output_query.LayerNorm`, H);
    }
    return this;
  }
}
