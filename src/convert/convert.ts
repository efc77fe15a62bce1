/**
 * `convertCheckpoints`: the original Video-LLaMA release checkpoints → one projector GGUF
 * (docs/projector-format.md). Tensors are read, converted and written one at a time, so memory
 * stays near the largest tensor rather than the checkpoints' size.
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { invalidArgument, throwIfAborted, VideoLlamaError } from '../errors.js';
import { quantizeRows } from '../gguf/quantize.js';
import { GGML_TYPES, tensorBytes, type GgmlType } from '../gguf/types.js';
import { GGUF_KEYS } from '../gguf/keys.js';
import { GgufWriter } from '../gguf/writer.js';
import { CheckpointSet, type CheckpointRole } from './checkpoints.js';
import { readHparams, type BranchSelection, type HeadOptions, type ProjectorHparams } from './hparams.js';
import { projectorMetadata } from './metadata.js';
import { openPth, type LazyTensor, type PthFile } from './pth.js';
import { projectorTensors, torchShape, type TensorSpec } from './tensor-map.js';
import type { VitDepthChoice } from './vit-depth.js';

/** Weight type of the projector's big matrices (see docs/converting.md, `--type`). */
export type ProjectorWeightType = 'f32' | 'f16' | 'bf16' | 'q8_0';

/**
 * `general.file_type` of each projector weight type (llama.cpp's `llama_ftype`: ALL_F32,
 * MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16). @internal
 */
export const FILE_TYPES: Readonly<Record<ProjectorWeightType, number>> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

/** Progress of a conversion, reported after each tensor is written. */
export interface ConvertProgress {
  /** GGUF name of the tensor just converted. */
  tensor: string;
  /** Tensors done so far (1-based). */
  done: number;
  /** Tensors in the output. */
  total: number;
  /** Tensor-data bytes written so far. */
  bytesDone: number;
  /** Tensor-data bytes of the output. */
  bytesTotal: number;
}

/**
 * Input files and settings of {@link convertCheckpoints}. The vision files (`evaVit`, `blip2`,
 * `videoBranch`) and the audio files (`imagebind`, `audioBranch`) each form a group that is
 * either complete or absent; at least one group is needed.
 */
export interface ConvertOptions {
  /** EVA ViT-g state dict, `eva_vit_g.pth` (LAVIS BLIP-2 release). */
  evaVit?: string;
  /** BLIP-2 checkpoint, `blip2_pretrained_flant5xxl.pth` (LAVIS): `ln_vision`, Q-Former, query tokens. */
  blip2?: string;
  /** Video-LLaMA vision-branch checkpoint, e.g. `VL_LLaMA_2_7B_Finetuned.pth`. */
  videoBranch?: string;
  /** ImageBind-Huge state dict, `imagebind_huge.pth`. */
  imagebind?: string;
  /** Video-LLaMA audio-branch checkpoint, e.g. `AL_LLaMA_2_7B_Finetuned.pth`. */
  audioBranch?: string;
  /** Output GGUF path (written through a temporary file, renamed when complete: an existing file is replaced). */
  out: string;
  /** Type of the big matrices; default `'f16'`. */
  type?: ProjectorWeightType;
  /** Attention head counts (not recoverable from shapes); default: the release's, see {@link HeadOptions}. */
  heads?: HeadOptions;
  /**
   * EVA ViT blocks to run (`--vit-depth`), 1 to the blocks in the file. Default: 39, as the
   * original, at the release width 1408 (an error when the file has fewer); at other widths the
   * file's blocks minus one. {@link ConvertReport.vitDepth} says which was used and why.
   */
  vitDepth?: number;
  /** Called after each tensor is written; default none. */
  onProgress?: (progress: ConvertProgress) => void;
  /** Cancels the conversion (ABORTED); the partial output is removed. */
  signal?: AbortSignal;
}

/** What {@link convertCheckpoints} wrote. */
export interface ConvertReport {
  /** The output path ({@link ConvertOptions.out}). */
  out: string;
  /** The weight type of the big matrices. */
  type: ProjectorWeightType;
  /** Whether the file holds the vision branch. */
  hasVision: boolean;
  /** Whether the file holds the audio branch. */
  hasAudio: boolean;
  /** Every size read from the checkpoints (and the head counts used). */
  hparams: ProjectorHparams;
  /** The EVA ViT depth used, the blocks in the file and why (with the vision branch). */
  vitDepth?: VitDepthChoice;
  /** Tensors written. */
  tensorCount: number;
  /** Size of the GGUF file. */
  fileBytes: number;
  /** Wall-clock time of the conversion. */
  seconds: number;
}

const VISION_FILES = [['evaVit', 'eva-vit'], ['blip2', 'blip2'], ['videoBranch', 'video-branch']] as const;
const AUDIO_FILES = [['imagebind', 'imagebind'], ['audioBranch', 'audio-branch']] as const;

/**
 * Converts the original Video-LLaMA checkpoints into one projector GGUF holding the vision
 * branch, the audio branch, or both (what `video-llama convert` does; docs/converting.md).
 * Every size is read from the checkpoints. Rejects with INVALID_ARGUMENT (bad options: an
 * incomplete group of files, an unknown type, a head count that does not divide a width, an
 * `out` that is a folder, an input or in a missing folder, a `vitDepth` beyond the EVA file's
 * blocks), FILE_NOT_FOUND, INVALID_MODEL (not a `torch.save` archive — a Git LFS pointer, an HTML
 * page and a partial download are each named, with what to do — or not Video-LLaMA's layout),
 * UNSAFE_CHECKPOINT, MISSING_TENSOR, TENSOR_SHAPE (also: branch files for different LLM sizes),
 * WRITE_FAILED (disk full) or ABORTED; a failed conversion leaves no partial file.
 *
 * @example
 * ```ts
 * const report = await convertCheckpoints({
 *   evaVit: 'eva_vit_g.pth', blip2: 'blip2_pretrained_flant5xxl.pth', videoBranch: 'VL_LLaMA_2_7B_Finetuned.pth',
 *   imagebind: 'imagebind_huge.pth', audioBranch: 'AL_LLaMA_2_7B_Finetuned.pth',
 *   out: 'projector.gguf', type: 'q8_0',
 *   onProgress: (p) => console.log(`${p.done}/${p.total} ${p.tensor}`),
 * });
 * ```
 */
export async function convertCheckpoints(options: ConvertOptions): Promise<ConvertReport> {
  const started = performance.now();
  const { type, branches } = validateOptions(options);
  await checkOutputPath(options);
  throwIfAborted(options.signal, 'convert');
  const files = await openAll(options);
  try {
    const ckpts = new CheckpointSet(files);
    const { hparams, vitDepth } = await readHparams(ckpts, branches, { heads: options.heads ?? {}, vitDepth: options.vitDepth });
    const plan = projectorTensors(hparams).map((spec) => planTensor(spec, ckpts, type));
    const writer = new GgufWriter();
    for (const [key, value] of projectorMetadata(hparams)) writer.set(key, value);
    writer.set(GGUF_KEYS.FILE_TYPE, { type: 'u32', value: FILE_TYPES[type] });
    addTensors(writer, plan, options);
    const fileBytes = await writeAtomically(writer, options.out, options.signal);
    return {
      out: options.out,
      type,
      hasVision: branches.vision,
      hasAudio: branches.audio,
      hparams,
      vitDepth,
      tensorCount: plan.length,
      fileBytes,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Promise.all(Object.values(files).map((f) => f.close()));
  }
}

function validateOptions(options: ConvertOptions): { type: ProjectorWeightType; branches: BranchSelection } {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  if (typeof options.out !== 'string' || options.out === '') throw invalidArgument('out', 'a non-empty path string', options.out);
  const type = options.type === undefined ? 'f16' : options.type;
  if (!(type in FILE_TYPES)) throw invalidArgument('type', `one of ${Object.keys(FILE_TYPES).join(', ')}`, type);
  for (const [key] of [...VISION_FILES, ...AUDIO_FILES]) {
    const value = options[key];
    if (value !== undefined && (typeof value !== 'string' || value === '')) throw invalidArgument(key, 'a path string', value);
  }
  validateHeads(options.heads);
  if (options.vitDepth !== undefined && !(Number.isInteger(options.vitDepth) && options.vitDepth > 0)) {
    throw invalidArgument('vitDepth', 'a positive integer', options.vitDepth);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalidArgument('onProgress', 'a function', options.onProgress);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidArgument('signal', 'an AbortSignal', options.signal);
  const branches = { vision: groupGiven(options, VISION_FILES, 'vision'), audio: groupGiven(options, AUDIO_FILES, 'audio') };
  if (!branches.vision && !branches.audio) {
    throw new VideoLlamaError('INVALID_ARGUMENT', 'nothing to convert: give the vision files (--eva-vit, --blip2, --video-branch), the audio files (--imagebind, --audio-branch), or both');
  }
  return { type, branches };
}

/** The keys of {@link HeadOptions}. */
const HEAD_KEYS: readonly (keyof HeadOptions)[] = ['vit', 'qformer', 'videoQformer', 'audioQformer', 'imagebind'];

/** `heads` is undefined or an object of head counts; each count's fit to its width is checked once the widths are read. */
function validateHeads(heads: unknown): void {
  if (heads === undefined) return;
  if (typeof heads !== 'object' || heads === null || Array.isArray(heads)) throw invalidArgument('heads', 'an object of head counts', heads);
  for (const [key, value] of Object.entries(heads)) {
    if (!HEAD_KEYS.includes(key as keyof HeadOptions)) throw invalidArgument(`heads.${key}`, `one of the keys ${HEAD_KEYS.join(', ')}`, key);
    if (value !== undefined && !(Number.isInteger(value) && (value as number) > 0)) throw invalidArgument(`heads.${key}`, 'a positive integer', value);
  }
}

/** Whether a group of files is given; all or none of a group may be. */
function groupGiven(options: ConvertOptions, group: readonly (readonly [CheckpointRole, string])[], branch: string): boolean {
  const missing = group.filter(([key]) => options[key] === undefined).map(([, flag]) => `--${flag}`);
  if (missing.length === group.length) return false;
  if (missing.length > 0) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `the ${branch} branch needs ${group.map(([, flag]) => `--${flag}`).join(', ')}; missing ${missing.join(', ')}`, { missing });
  }
  return true;
}

async function openAll(options: ConvertOptions): Promise<Partial<Record<CheckpointRole, PthFile>>> {
  const roles = [...VISION_FILES, ...AUDIO_FILES].map(([role]) => role).filter((role) => options[role] !== undefined);
  const opened = await Promise.allSettled(roles.map((role) => openPth(options[role]!)));
  const files: Partial<Record<CheckpointRole, PthFile>> = {};
  opened.forEach((result, i) => {
    if (result.status === 'fulfilled') files[roles[i]!] = result.value;
  });
  const failure = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await Promise.all(Object.values(files).map((f) => f.close()));
    throw failure.reason;
  }
  return files;
}

/** A tensor ready to write: its checkpoint source and output type. */
interface PlannedTensor {
  spec: TensorSpec;
  source: LazyTensor;
  type: GgmlType;
}

/** Finds a spec's tensor and checks its shape and dtype before anything is written. */
function planTensor(spec: TensorSpec, ckpts: CheckpointSet, type: ProjectorWeightType): PlannedTensor {
  const { tensor, file } = ckpts.require(spec.home, spec.key);
  const expected = torchShape(spec);
  if (tensor.shape.length !== expected.length || tensor.shape.some((d, i) => d !== expected[i])) {
    throw new VideoLlamaError(
      'TENSOR_SHAPE',
      `tensor '${spec.key}' in ${path.basename(file)} has shape [${tensor.shape.join(', ')}]; expected [${expected.join(', ')}] (for ${spec.name})`,
      { key: spec.key, file, expected, found: tensor.shape },
    );
  }
  if (!['f32', 'f16', 'bf16', 'f64'].includes(tensor.dtype)) {
    throw new VideoLlamaError('INVALID_MODEL', `tensor '${spec.key}' in ${path.basename(file)} has dtype ${tensor.dtype}; expected a floating-point tensor`, {
      key: spec.key, file,
    });
  }
  return { spec, source: tensor, type: outputType(spec, type) };
}

/**
 * Matrices take the requested type, except that a row length which is not a multiple of the
 * type's block size (e.g. 279 for q8_0's 32) falls back to f16; conv kernels are f32 or f16.
 */
export function outputType(spec: TensorSpec, type: ProjectorWeightType): GgmlType {
  if (spec.storage === 'f32') return 'f32';
  if (spec.storage === 'conv') return type === 'f32' ? 'f32' : 'f16';
  return spec.shape[0]! % GGML_TYPES[type].blockSize === 0 ? type : 'f16';
}

function addTensors(writer: GgufWriter, plan: readonly PlannedTensor[], options: ConvertOptions): void {
  const sizes = plan.map((t) => tensorBytes(t.type, t.spec.shape));
  const bytesTotal = sizes.reduce((a, b) => a + b, 0);
  let bytesDone = 0;
  plan.forEach(({ spec, source, type }, i) => {
    writer.addTensor(spec.name, spec.shape, type, async () => {
      throwIfAborted(options.signal, 'convert');
      const data = quantizeRows(await source.read(), spec.shape[0]!, type);
      bytesDone += sizes[i]!;
      options.onProgress?.({ tensor: spec.name, done: i + 1, total: plan.length, bytesDone, bytesTotal });
      return data;
    });
  });
}

/** `out` must name a file (not a folder, not one of the inputs) in an existing, writable folder. */
async function checkOutputPath(options: ConvertOptions): Promise<void> {
  const out = path.resolve(options.out);
  const expected = 'the path of the output file (replaced if it exists) in an existing, writable folder, other than the inputs';
  const inputs = [...VISION_FILES, ...AUDIO_FILES].map(([role]) => options[role]).filter((f) => f !== undefined);
  if (inputs.some((input) => path.resolve(input) === out)) throw invalidArgument('out', `${expected} (it is an input)`, options.out);
  const isDirectory = await fs.stat(out).then((s) => s.isDirectory(), () => false);
  if (isDirectory) throw invalidArgument('out', `${expected} (it is a folder)`, options.out);
  await fs.access(path.dirname(out), fs.constants.W_OK).catch((error: NodeJS.ErrnoException) => {
    throw invalidArgument('out', `${expected} (${path.dirname(out)}: ${error.code})`, options.out);
  });
}

/** The file a conversion writes before renaming it to `out` (removed when the conversion fails). */
export function partialOutputPath(out: string): string {
  return `${out}.partial`;
}

/**
 * Writes to `<out>.partial` and renames, so `out` is never a half-written file. Returns its
 * size. A failed write (disk full, permissions) is WRITE_FAILED.
 */
async function writeAtomically(writer: GgufWriter, out: string, signal: AbortSignal | undefined): Promise<number> {
  const partial = partialOutputPath(out);
  try {
    await writer.write(partial);
    throwIfAborted(signal, 'convert');
    await fs.rename(partial, out);
  } catch (error) {
    await fs.rm(partial, { force: true });
    if (error instanceof VideoLlamaError || !(error as NodeJS.ErrnoException).code) throw error;
    throw new VideoLlamaError('WRITE_FAILED', `could not write ${out}: ${(error as Error).message}`, { out }, { cause: error });
  }
  return (await fs.stat(out)).size;
}
