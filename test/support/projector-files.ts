/**
 * Projector GGUFs for tests: the tiny-a checkpoints converted with the converter, and edited
 * copies of a GGUF (a tensor dropped, a tensor's shape changed) for error-path tests.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoints, type ProjectorWeightType } from '../../src/convert/convert.js';
import { GgufWriter, type GgufValue } from '../../src/gguf/writer.js';
import { GGML_TYPES, tensorBytes, type GgmlType } from '../../src/gguf/types.js';
import { fixture } from './fixtures.js';

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Converts a fixture set's checkpoints (both branches) to a projector GGUF of `type` in `dir`. */
export async function convertFixture(set: string, type: ProjectorWeightType, dir: string): Promise<string> {
  const checkpoint = (name: string): string => fixture(set, `checkpoints/${name}`);
  const out = path.join(dir, `projector-${type}.gguf`);
  await convertCheckpoints({
    evaVit: checkpoint('eva_vit_g.pth'),
    blip2: checkpoint('blip2_pretrained.pth'),
    videoBranch: checkpoint('VL_finetuned.pth'),
    imagebind: checkpoint('imagebind_huge.pth'),
    audioBranch: checkpoint('AL_finetuned.pth'),
    out,
    type,
  });
  return out;
}

interface ParsedTensor {
  name: string;
  shape: number[];
  type: GgmlType;
  bytes: Uint8Array;
}

interface ParsedGguf {
  metadata: [string, GgufValue][];
  tensors: ParsedTensor[];
}

const SCALARS: Record<number, [GgufValue['type'], number]> = { 0: ['u8', 1], 4: ['u32', 4], 5: ['i32', 4], 6: ['f32', 4], 10: ['u64', 8], 12: ['f64', 8] };
const TYPE_BY_ID = new Map(Object.entries(GGML_TYPES).map(([name, t]) => [t.id, name as GgmlType]));

/** Reads a GGUF v3 (the metadata value types our writer supports) into memory. */
function parseGguf(file: string): ParsedGguf {
  const buf = fs.readFileSync(file);
  let pos = 8;
  const u32 = (): number => { pos += 4; return buf.readUInt32LE(pos - 4); };
  const u64 = (): number => { pos += 8; return Number(buf.readBigUInt64LE(pos - 8)); };
  const str = (): string => { const n = u64(); pos += n; return buf.toString('utf8', pos - n, pos); };
  const scalar = (type: number): number => {
    const [name, size] = SCALARS[type] ?? (() => { throw new Error(`unsupported GGUF value type ${type}`); })();
    const at = pos;
    pos += size;
    if (name === 'u8') return buf.readUInt8(at);
    if (name === 'u32') return buf.readUInt32LE(at);
    if (name === 'i32') return buf.readInt32LE(at);
    if (name === 'f32') return buf.readFloatLE(at);
    if (name === 'f64') return buf.readDoubleLE(at);
    return Number(buf.readBigUInt64LE(at));
  };
  const nTensors = u64();
  const nKv = u64();
  const metadata: [string, GgufValue][] = [];
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    if (type === 8) metadata.push([key, { type: 'string', value: str() }]);
    else if (type === 7) { metadata.push([key, { type: 'bool', value: buf[pos] !== 0 }]); pos += 1; }
    else if (type === 9) {
      const elementType = u32();
      const n = u64();
      const values = Array.from({ length: n }, () => (elementType === 8 ? str() : scalar(elementType)));
      const name = elementType === 8 ? 'string' : SCALARS[elementType]![0];
      metadata.push([key, { type: 'array', elementType: name as 'u32' | 'i32' | 'f32' | 'string', value: values }]);
    } else metadata.push([key, { type: SCALARS[type]![0], value: scalar(type) } as GgufValue]);
  }
  const infos = Array.from({ length: nTensors }, () => {
    const name = str();
    const shape = Array.from({ length: u32() }, () => u64());
    const type = TYPE_BY_ID.get(u32())!;
    return { name, shape, type, offset: u64() };
  });
  const dataStart = Math.ceil(pos / 32) * 32;
  const tensors = infos.map((t) => {
    const start = dataStart + t.offset;
    return { name: t.name, shape: t.shape, type: t.type, bytes: buf.subarray(start, start + tensorBytes(t.type, t.shape)) };
  });
  return { metadata, tensors };
}

/** A tensor's shape (ggml order) in a GGUF file. */
export function tensorShape(file: string, name: string): number[] {
  const tensor = parseGguf(file).tensors.find((t) => t.name === name);
  if (!tensor) throw new Error(`no tensor '${name}' in ${file}`);
  return tensor.shape;
}

/** A numeric metadata value of a GGUF file. */
export function ggufNumber(file: string, key: string): number {
  const entry = parseGguf(file).metadata.find(([k]) => k === key)?.[1];
  if (typeof entry?.value !== 'number') throw new Error(`no numeric key '${key}' in ${file}`);
  return entry.value;
}

/** What to change in {@link editGguf}'s copy. */
export interface GgufEdit {
  dropTensor?: string;
  dropKey?: string;
  /** A new shape with the same number of elements. */
  reshapeTensor?: { name: string; shape: number[] };
  setKey?: [string, GgufValue];
  /** New data for a tensor (same type and size), made from its old data. */
  patchTensor?: { name: string; bytes: (old: Uint8Array) => Uint8Array };
}

/** Writes an edited copy of a GGUF file with the project's GgufWriter. */
export async function editGguf(src: string, dst: string, edit: GgufEdit): Promise<void> {
  const { metadata, tensors } = parseGguf(src);
  const writer = new GgufWriter();
  for (const [key, value] of metadata) if (key !== edit.dropKey) writer.set(key, value);
  if (edit.setKey) writer.set(...edit.setKey);
  for (const t of tensors) {
    if (t.name === edit.dropTensor) continue;
    const shape = t.name === edit.reshapeTensor?.name ? edit.reshapeTensor.shape : t.shape;
    const bytes = t.name === edit.patchTensor?.name ? edit.patchTensor.bytes(t.bytes) : t.bytes;
    writer.addTensor(t.name, shape, t.type, () => bytes);
  }
  await writer.write(dst);
}
