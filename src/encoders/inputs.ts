/**
 * Turns whatever a caller hands an encoder (a media file, its bytes, decoded pixels or PCM, or a
 * preprocessed tensor) into the tensor the projector takes, with the sizes and normalisation
 * constants of that projector file.
 * @internal
 * @module
 */
import { invalidArgument } from '../errors.js';
import {
  audioToFbank, decodeVideoFrames, loadAudioFbank, loadImageTensor, normalizeFrames,
  type MediaInput, type RgbFrames,
} from '../media/index.js';
import type { ProjectorInfo, TensorInput } from '../projector.js';

/**
 * A video for {@link Projector.encodeVideo}: a file path, the file's bytes, decoded RGB frames
 * (any size; sampled and resized), or a normalised tensor [T, 3, S, S] (S = {@link ProjectorInfo.imageSize}).
 */
export type VideoInput = MediaInput | RgbFrames | TensorInput;
/**
 * An image for {@link Projector.encodeImage}: a file path, the file's bytes, one decoded RGB
 * frame (any size; resized), or a normalised tensor [1, 3, S, S] or [3, S, S].
 */
export type ImageInput = MediaInput | RgbFrames | TensorInput;
/**
 * Audio for {@link Projector.encodeAudio}: a media file path (any container with an audio
 * stream, any sample rate), its bytes, 16 kHz mono PCM in [-1, 1] (a Float32Array), or a
 * normalised fbank tensor [M, 1, melBins, targetFrames].
 */
export type AudioInput = MediaInput | Float32Array | TensorInput;

/** Options of the video decoding step (ignored for a tensor input). */
export interface VideoInputOptions {
  /**
   * Frames sampled uniformly from a video file or decoded frames, as the original
   * `load_video`; default 8 (or the projector's `maxFrames` if smaller). An integer from 1 to
   * {@link ProjectorInfo.maxFrames}, else INVALID_ARGUMENT.
   */
  frames?: number;
  /** Cancels decoding and encoding; the promise rejects with ABORTED. */
  signal?: AbortSignal;
}

/** Options of the audio decoding step (ignored for a tensor input). */
export interface AudioInputOptions {
  /**
   * 2-second clips placed like ImageBind's clip sampler; default 8 (or the projector's
   * `maxClips` if smaller). An integer from 1 to {@link ProjectorInfo.maxClips}, else INVALID_ARGUMENT.
   */
  clips?: number;
  /** Cancels decoding and encoding; the promise rejects with ABORTED. */
  signal?: AbortSignal;
}

/** Whether an encoder input is a {@link TensorInput} (rather than a file, bytes, frames or PCM). */
export function isTensorInput(input: unknown): input is TensorInput {
  return typeof input === 'object' && input !== null && 'tensor' in input && 'shape' in input;
}

function checkCount(value: number | undefined, name: string, max: number, fallback: number): number {
  const count = value === undefined ? Math.min(fallback, max) : value;
  if (!Number.isInteger(count) || count < 1 || count > max) throw invalidArgument(name, `an integer from 1 to ${max}`, value);
  return count;
}

/**
 * `load_video`'s message about the sampled frames, which the original puts after a video's
 * placeholder: "The video contains 8 frames sampled at 0.0, 0.5, … seconds. ".
 */
function framesDescription(indices: readonly number[], fps: number): string | undefined {
  if (!(fps > 0)) return undefined;
  const seconds = indices.map((index) => (index / fps).toFixed(1)).join(', ');
  return `The video contains ${indices.length} frames sampled at ${seconds} seconds. `;
}

/** The [T, 3, S, S] tensor of a video input, and the description of its frames when decoded from a file. */
export async function videoTensor(input: VideoInput, info: ProjectorInfo, options: VideoInputOptions): Promise<{ input: TensorInput; description?: string }> {
  if (isTensorInput(input)) return { input };
  const frames = checkCount(options.frames, 'options.frames', info.maxFrames, 8);
  const size = info.imageSize;
  const video = await decodeVideoFrames(input, { frames, size, signal: options.signal });
  // The original's frame sampling can yield one frame more than asked (see uniformFrameIndices);
  // the frame position embedding bounds what the model accepts.
  if (video.frames > info.maxFrames) {
    throw invalidArgument('options.frames', `a count whose sampling gives at most ${info.maxFrames} frames`, frames);
  }
  return {
    input: { tensor: normalizeFrames(video.rgb, video.frames, size, info.imageMean, info.imageStd), shape: [video.frames, 3, size, size] },
    description: framesDescription(video.indices, video.fps),
  };
}

/** The [1, 3, S, S] tensor of an image input (BLIP-2's image processor). */
export async function imageTensor(input: ImageInput, info: ProjectorInfo, options: { signal?: AbortSignal }): Promise<TensorInput> {
  if (isTensorInput(input)) return input;
  const size = info.imageSize;
  const tensor = await loadImageTensor(input, { size, mean: info.imageMean, std: info.imageStd, signal: options.signal });
  return { tensor, shape: [1, 3, size, size] };
}

/** The [M, 1, melBins, targetFrames] fbank tensor of an audio input. */
export async function audioTensor(input: AudioInput, info: ProjectorInfo, options: AudioInputOptions): Promise<TensorInput> {
  if (isTensorInput(input)) return input;
  const clips = checkCount(options.clips, 'options.clips', info.maxClips, 8);
  const fbank = {
    clips, melBins: info.melBins, targetFrames: info.targetFrames, clipSeconds: info.clipSeconds, mean: info.fbankMean, std: info.fbankStd,
  };
  const tensor = input instanceof Float32Array
    ? audioToFbank(input, fbank)
    : (await loadAudioFbank(input, { ...fbank, signal: options.signal })).tensor;
  return { tensor, shape: [clips, 1, info.melBins, info.targetFrames] };
}
