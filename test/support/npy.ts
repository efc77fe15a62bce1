/** Reads NumPy .npy files (little-endian f4 / u1 / i8, C order) for fixture comparisons. */
import fs from 'node:fs';

export interface NpyArray<T extends Float32Array | Uint8Array = Float32Array | Uint8Array> {
  shape: number[];
  data: T;
}

export function readNpy(file: string): NpyArray {
  const raw = fs.readFileSync(file);
  if (raw.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file} is not a .npy file`);
  const major = raw[6]!;
  const headerLength = major === 1 ? raw.readUInt16LE(8) : raw.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = raw.toString('latin1', headerStart, headerStart + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not supported`);
  const body = raw.subarray(headerStart + headerLength);
  const copy = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  if (descr === '<f4') return { shape, data: new Float32Array(copy) };
  if (descr === '|u1') return { shape, data: new Uint8Array(copy) };
  throw new Error(`${file}: dtype ${descr} is not supported`);
}

export function readNpyF32(file: string): NpyArray<Float32Array> {
  const array = readNpy(file);
  if (!(array.data instanceof Float32Array)) throw new Error(`${file} is not float32`);
  return array as NpyArray<Float32Array>;
}

/** Largest absolute elementwise difference; throws when lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
