/**
 * The frozen stages' outputs, computed once per sample and kept on disk: what the trainable part
 * of a branch reads every epoch. Vision: the BLIP-2 Q-Former's output per frame (the projector's
 * `qformer` stage, [frames × queries × width]); audio: ImageBind's audio embedding per clip
 * (`audio_imagebind`, [clips × width]), which the audio Q-Former reads after adding its position
 * rows. For a trainer that also trains an encoder (stage `'media'`): the preprocessed media
 * instead — normalised frames ([frames × 3 × S × S], `pixels`) or fbank clips
 * ([clips × 1 × mel × frames], `fbank`) — stored as f16 (half the bytes; the rounding, ≤ 2⁻¹¹
 * relative, is far below what a frame's uint8 quantisation already put there), and read back per
 * training step through {@link FeatureCache.lazy} so that a run holds only its step's media.
 *
 * Entries are content-addressed (the media file's SHA-256, the projector file's, the branch, the
 * input kind and the frames/clips count), written atomically and checked by CRC-32 when read (a
 * torn or corrupted entry is recomputed), through the encode cache's disk store.
 *
 * ```
 * u32 header length H | H bytes of JSON { shape, description?, stage? } | zero padding to 4 | data (f32; f16 for media) | zero padding to 4 | u32 CRC-32 of all before
 * ```
 * @module
 */
import { crc32 } from 'node:zlib';

import { DiskStore } from '../cache/disk-store.js';
import { encodeCacheKey } from '../cache/encode-cache.js';
import { fileIdentity } from '../cache/hashing.js';
import { audioTensor, imageTensor, type KindTensor, videoTensor } from '../encoders/inputs.js';
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { f16ToF32, quantizeRows } from '../gguf/quantize.js';
import type { Projector } from '../projector.js';
import type { LazyValues, TrainingBranch } from './example.js';

/** The trainable branches: video (also images, as 1-frame videos) and audio. */
export type Branch = TrainingBranch;

/** How a media file enters a branch: a video's frames, an image, or a sound's clips. */
export type FeatureInput = 'video' | 'image' | 'audio';

/** The projector stage whose output is the frozen features of each branch. */
export const FROZEN_STAGE: Readonly<Record<Branch, string>> = Object.freeze({ video: 'qformer', audio: 'audio_imagebind' });

/** The cache's name of each branch's preprocessed media (the encoder's input). */
export const MEDIA_STAGE: Readonly<Record<Branch, string>> = Object.freeze({ video: 'pixels', audio: 'fbank' });

/**
 * What an entry holds: the frozen stage's output (`'frozen'`, for the paper's stages) or the
 * preprocessed media the encoder reads (`'media'`, for a trainer that unfreezes an encoder or the
 * BLIP-2 Q-Former: {@link ExampleInput} `'media'`).
 */
export type FeatureStage = 'frozen' | 'media';

/** The frozen features (or media) of one media file for one branch. */
export interface FrozenFeatures {
  /** The branch that reads them. */
  branch: Branch;
  /** What they are; `'frozen'` unless asked for media. */
  stage: FeatureStage;
  /**
   * C-order shape: frozen [frames, queries, width] (video) or [clips, width] (audio); media
   * [frames, 3, S, S] (video) or [clips, 1, melBins, targetFrames] (audio).
   */
  shape: number[];
  /** Frames or clips: `shape[0]`. */
  units: number;
  /** The values, C order. */
  data: Float32Array;
  /** For a video: `load_video`'s description of the sampled frames (the original puts it in the stage-2 prompt). */
  description?: string;
}

/** What to compute: a media file for a branch. */
export interface FeatureRequest {
  /** The media file. */
  media: string;
  /** How it is read: `'video'` and `'image'` feed the video branch, `'audio'` the audio branch. */
  input: FeatureInput;
  /** Frames sampled from a video; default 8, or the projector's `maxFrames` if smaller. */
  frames?: number;
  /** Audio clips; default 8, or the projector's `maxClips` if smaller. */
  clips?: number;
  /** The frozen stage's output or the preprocessed media; default `'frozen'`. */
  stage?: FeatureStage;
  /** Cancels decoding and encoding (ABORTED). */
  signal?: AbortSignal;
}

/** An entry's description, and its values as a loader that reads them from disk at each call ({@link FeatureCache.lazy}). */
export interface LazyFeatures extends Omit<FrozenFeatures, 'data'> {
  /** Reads the values (recomputing them if the entry went missing or corrupt). */
  load: LazyValues;
}

/** Counters of a {@link FeatureCache}. */
export interface FeatureCacheStats {
  /** Features read from disk. */
  hits: number;
  /** Features computed by the projector (and stored). */
  misses: number;
  /** Entries dropped because their bytes failed the check. */
  corrupt: number;
}

const FORMAT_VERSION = 1;
/** A training cache is never evicted: it holds what the next epoch reads. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

/**
 * A folder of frozen features. `features()` returns the cached entry or computes it with the
 * projector (decoding the media as the encode methods do) and stores it.
 *
 * @example
 * ```ts
 * const cache = new FeatureCache('.cache/features');
 * const video = await cache.features(projector, { media: 'clip.mp4', input: 'video' });
 * console.log(video.shape); // e.g. [8, 32, 768]
 * ```
 */
export class FeatureCache {
  private readonly store: DiskStore;
  private readonly counts = { hits: 0, misses: 0 };

  /** The cache folder (created on the first write). */
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    if (typeof dir !== 'string' || dir === '') throw invalidArgument('dir', 'a folder path', dir);
    this.store = new DiskStore(dir, UNBOUNDED);
  }

  /** Hits, misses and corrupt entries so far. */
  get stats(): FeatureCacheStats {
    return { ...this.counts, corrupt: this.store.counts.corrupt };
  }

  /**
   * The features of `request.media` for its branch. Rejects with the errors of decoding
   * (FILE_NOT_FOUND, MEDIA_DECODE, NO_VIDEO_STREAM, NO_AUDIO_STREAM, …), INVALID_ARGUMENT
   * (a projector without that branch), ABORTED, WRITE_FAILED.
   */
  async features(projector: Projector, request: FeatureRequest): Promise<FrozenFeatures> {
    return this.entry(projector, request, await this.key(projector, request));
  }

  /**
   * {@link FeatureCache.features} computed and stored now (on a miss), its values read again from
   * disk by each call of `load`: for examples of a training run that must not hold every sample's
   * media in memory. Rejects as `features`.
   */
  async lazy(projector: Projector, request: FeatureRequest): Promise<LazyFeatures> {
    const key = await this.key(projector, request);
    const { data, ...described } = await this.entry(projector, request, key);
    const later = { ...request, signal: undefined };  // a later read is not cancelled by this build's signal
    return { ...described, load: async () => (await this.entry(projector, later, key)).data };
  }

  private async key(projector: Projector, request: FeatureRequest): Promise<string> {
    const { media, input } = request;
    if (input !== 'video' && input !== 'image' && input !== 'audio') throw invalidArgument('input', "'video', 'image' or 'audio'", input);
    const stage = request.stage ?? 'frozen';
    if (stage !== 'frozen' && stage !== 'media') throw invalidArgument('stage', "'frozen' or 'media'", stage);
    const branch = branchOf(input);
    return encodeCacheKey({
      projector: await fileIdentity(projector.file),
      operation: `features-${input}`,
      input: await fileIdentity(media),
      options: { ...counts(projector, request), stage: (stage === 'media' ? MEDIA_STAGE : FROZEN_STAGE)[branch], version: FORMAT_VERSION },
    });
  }

  /** The entry under `key`: read, or computed and stored. */
  private async entry(projector: Projector, request: FeatureRequest, key: string): Promise<FrozenFeatures> {
    const branch = branchOf(request.input);
    const cached = await this.store.read(key, (bytes) => readFeatures(bytes, branch));
    if (cached) {
      this.counts.hits += 1;
      return cached;
    }
    const features = await computeFeatures(projector, branch, request.input, request.media,
      { ...counts(projector, request), stage: request.stage ?? 'frozen', signal: request.signal });
    this.counts.misses += 1;
    await this.store.write(key, writeFeatures(features));
    return features;
  }
}

const branchOf = (input: FeatureInput): Branch => (input === 'audio' ? 'audio' : 'video');

/** Frames of a video and clips of a sound, as the request or the defaults say. */
function counts(projector: Projector, { input, frames, clips }: FeatureRequest): { frames?: number; clips?: number } {
  return {
    frames: input === 'video' ? frames ?? Math.min(8, projector.info.maxFrames) : undefined,
    clips: input === 'audio' ? clips ?? Math.min(8, projector.info.maxClips) : undefined,
  };
}

/** Decodes the media, and for the frozen stage runs the projector, keeping the branch's frozen stage. */
async function computeFeatures(projector: Projector, branch: Branch, input: FeatureInput, media: string,
  options: { frames?: number; clips?: number; stage: FeatureStage; signal?: AbortSignal }): Promise<FrozenFeatures> {
  const info = projector.info;
  let tensor: KindTensor;
  if (input === 'video') tensor = await videoTensor(media, info, options);
  else if (input === 'image') tensor = await imageTensor(media, info, options);
  else tensor = await audioTensor(media, info, options);
  const description = tensor.description;
  if (options.stage === 'media') {
    const shape = [...tensor.input.shape];
    if (shape.length === 3) shape.unshift(1);  // an image's [3, S, S]: one frame
    const data = tensor.input.tensor.subarray(0, shape.reduce((a, b) => a * b, 1));
    return { branch, stage: 'media', shape, units: shape[0]!, data, description };
  }
  const { stages } = await projector.encodeWithStages(tensor.kind, tensor.input, { signal: options.signal });
  const stage = stages[FROZEN_STAGE[branch]];
  if (!stage) throw new VideoLlamaError('NATIVE', `the projector returned no ${FROZEN_STAGE[branch]} stage`);
  return { branch, stage: 'frozen', shape: stage.shape, units: stage.shape[0]!, data: stage.data, description };
}

const align4 = (n: number): number => (n + 3) & ~3;

function writeFeatures(features: FrozenFeatures): Uint8Array {
  const dtype = features.stage === 'media' ? 'f16' : 'f32';
  const values = dtype === 'f16' ? quantizeRows(features.data, features.data.length, 'f16') : new Uint8Array(features.data.buffer, features.data.byteOffset, features.data.byteLength);
  const header = new TextEncoder().encode(JSON.stringify({ shape: features.shape, description: features.description, stage: features.stage }));
  const dataOffset = 4 + align4(header.byteLength);
  const bytes = new Uint8Array(dataOffset + align4(values.byteLength) + 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, header.byteLength, true);
  bytes.set(header, 4);
  bytes.set(values, dataOffset);
  view.setUint32(bytes.byteLength - 4, crc32(bytes.subarray(0, bytes.byteLength - 4)), true);
  return bytes;
}

/** The features in `bytes`; throws when the checksum or the layout is wrong (the store then drops the entry). */
function readFeatures(bytes: Uint8Array, branch: Branch): FrozenFeatures {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || view.getUint32(bytes.byteLength - 4, true) !== crc32(bytes.subarray(0, bytes.byteLength - 4))) {
    throw new Error('checksum mismatch');
  }
  const headerLength = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as { shape: number[]; description?: string; stage?: FeatureStage };
  const dataOffset = 4 + align4(headerLength);
  const count = header.shape.reduce((a, b) => a * b, 1);
  const stage = header.stage ?? 'frozen';
  const half = stage === 'media';
  const byteLength = count * (half ? 2 : 4);
  if (dataOffset + align4(byteLength) + 4 !== bytes.byteLength) throw new Error('size mismatch');
  const raw = new Uint8Array(bytes.subarray(dataOffset, dataOffset + byteLength));  // a copy: aligned, its own buffer
  const data = half ? f16ToF32(new Uint16Array(raw.buffer)) : new Float32Array(raw.buffer);
  return { branch, stage, shape: header.shape, units: header.shape[0]!, data, description: header.description };
}
