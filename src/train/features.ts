/**
 * The frozen stages' outputs, computed once per sample and kept on disk: what the trainable part
 * of a branch reads every epoch. Vision: the BLIP-2 Q-Former's output per frame (the projector's
 * `qformer` stage, [frames × queries × width]); audio: ImageBind's audio embedding per clip
 * (`audio_imagebind`, [clips × width]), which the audio Q-Former reads after adding its position
 * rows.
 *
 * Entries are content-addressed (the media file's SHA-256, the projector file's, the branch, the
 * input kind and the frames/clips count), written atomically and checked by CRC-32 when read (a
 * torn or corrupted entry is recomputed), through the encode cache's disk store.
 *
 * ```
 * u32 header length H | H bytes of JSON { shape, description? } | zero padding to 4 | f32 data | u32 CRC-32 of all before
 * ```
 * @module
 */
import { crc32 } from 'node:zlib';

import { DiskStore } from '../cache/disk-store.js';
import { encodeCacheKey } from '../cache/encode-cache.js';
import { fileIdentity } from '../cache/hashing.js';
import { audioTensor, imageTensor, type KindTensor, videoTensor } from '../encoders/inputs.js';
import { invalidArgument, VideoLlamaError } from '../errors.js';
import type { Projector } from '../projector.js';
import type { TrainingBranch } from './example.js';

/** The trainable branches: video (also images, as 1-frame videos) and audio. */
export type Branch = TrainingBranch;

/** How a media file enters a branch: a video's frames, an image, or a sound's clips. */
export type FeatureInput = 'video' | 'image' | 'audio';

/** The projector stage whose output is the frozen features of each branch. */
export const FROZEN_STAGE: Readonly<Record<Branch, string>> = Object.freeze({ video: 'qformer', audio: 'audio_imagebind' });

/** The frozen features of one media file for one branch. */
export interface FrozenFeatures {
  /** The branch that reads them. */
  branch: Branch;
  /** C-order shape: [frames, queries, width] (video) or [clips, width] (audio). */
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
  /** Cancels decoding and encoding (ABORTED). */
  signal?: AbortSignal;
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
    const { media, input, signal } = request;
    if (input !== 'video' && input !== 'image' && input !== 'audio') throw invalidArgument('input', "'video', 'image' or 'audio'", input);
    const branch: Branch = input === 'audio' ? 'audio' : 'video';
    const counts = {
      frames: input === 'video' ? request.frames ?? Math.min(8, projector.info.maxFrames) : undefined,
      clips: input === 'audio' ? request.clips ?? Math.min(8, projector.info.maxClips) : undefined,
    };
    const key = encodeCacheKey({
      projector: await fileIdentity(projector.file),
      operation: `features-${input}`,
      input: await fileIdentity(media),
      options: { ...counts, stage: FROZEN_STAGE[branch], version: FORMAT_VERSION },
    });
    const cached = await this.store.read(key, (bytes) => readFeatures(bytes, branch));
    if (cached) {
      this.counts.hits += 1;
      return cached;
    }
    const features = await computeFeatures(projector, branch, input, media, { ...counts, signal });
    this.counts.misses += 1;
    await this.store.write(key, writeFeatures(features));
    return features;
  }
}

/** Decodes the media and runs the projector, keeping the branch's frozen stage. */
async function computeFeatures(projector: Projector, branch: Branch, input: FeatureInput, media: string,
  options: { frames?: number; clips?: number; signal?: AbortSignal }): Promise<FrozenFeatures> {
  const info = projector.info;
  let tensor: KindTensor;
  if (input === 'video') tensor = await videoTensor(media, info, options);
  else if (input === 'image') tensor = await imageTensor(media, info, options);
  else tensor = await audioTensor(media, info, options);
  const { stages } = await projector.encodeWithStages(tensor.kind, tensor.input, { signal: options.signal });
  const stage = stages[FROZEN_STAGE[branch]];
  if (!stage) throw new VideoLlamaError('NATIVE', `the projector returned no ${FROZEN_STAGE[branch]} stage`);
  return { branch, shape: stage.shape, units: stage.shape[0]!, data: stage.data, description: tensor.description };
}

const align4 = (n: number): number => (n + 3) & ~3;

function writeFeatures(features: FrozenFeatures): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ shape: features.shape, description: features.description }));
  const dataOffset = 4 + align4(header.byteLength);
  const bytes = new Uint8Array(dataOffset + features.data.byteLength + 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, header.byteLength, true);
  bytes.set(header, 4);
  new Float32Array(bytes.buffer, dataOffset, features.data.length).set(features.data);
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
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as { shape: number[]; description?: string };
  const dataOffset = 4 + align4(headerLength);
  const count = header.shape.reduce((a, b) => a * b, 1);
  if (dataOffset + count * 4 + 4 !== bytes.byteLength) throw new Error('size mismatch');
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(bytes.subarray(dataOffset, dataOffset + count * 4));
  return { branch, shape: header.shape, units: header.shape[0]!, data, description: header.description };
}
