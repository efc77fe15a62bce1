/**
 * Video frames and images from media files.
 *
 * Videos follow Video-LLaMA's `load_video(n_frms=8, height=224, width=224, sampling="uniform")`
 * with decord: `vlen` = packets of the video stream, indices from {@link uniformFrameIndices}, and
 * each chosen frame converted and resized in one swscale call (`scale=S:S:flags=bilinear` to rgb24,
 * aspect ratio not kept) — what decord's FFmpeg 4 filter graph does.
 *
 * Images follow BLIP-2's eval processor: decoded to RGB at their own size, then resized with
 * Pillow's bicubic filter (implemented in TypeScript), then normalised.
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { uniformFrameIndices } from '../processors/frame-sampling.js';
import { CLIP_MEAN, CLIP_STD, normalizeFrames, validateChannelTriple, validatePositiveInteger } from '../processors/normalize.js';
import { BICUBIC, BILINEAR, resizeRgb } from '../processors/resize.js';
import { decodeFailure, passthroughFrameArgs, runFfmpeg } from './ffmpeg.js';
import { type MediaInput, validateMediaInput, validateSignal, withLocalFile } from './input.js';
import { countPackets, probeFile, requireVideoStream } from './probe.js';

/**
 * Already-decoded RGB frames: `frames` images of width × height, H,W,C order, one after the
 * other. A size that does not match `rgb` is INVALID_ARGUMENT.
 *
 * @example
 * ```ts
 * const image: RgbFrames = { rgb: new Uint8Array(640 * 480 * 3), width: 640, height: 480, frames: 1 };
 * ```
 */
export interface RgbFrames {
  /** `frames × height × width × 3` bytes, 8-bit RGB. */
  rgb: Uint8Array;
  /** Width of each frame in pixels. */
  width: number;
  /** Height of each frame in pixels. */
  height: number;
  /** Number of frames (1 for an image). */
  frames: number;
  /** Frame rate, when known (reported back as `fps`). */
  fps?: number;
}

/** Frames chosen from a video, decoded and resized. */
export interface DecodedVideo {
  /** T frames of size × size RGB, T,H,W,C order (T·H·W·3 bytes). */
  rgb: Uint8Array;
  /** T: the number of frames returned (normally `options.frames`; see {@link uniformFrameIndices}). */
  frames: number;
  width: number;
  height: number;
  /** The source frame index of each returned frame. */
  indices: number[];
  /** vlen: frames in the source. */
  totalFrames: number;
  /** Average frame rate of the source (0 when unknown). */
  fps: number;
}

/** Options of {@link decodeVideoFrames}. */
export interface DecodeVideoOptions {
  /** Frames to sample uniformly (Video-LLaMA: 8). */
  frames?: number;
  /** Output side in pixels (224). */
  size?: number;
  signal?: AbortSignal;
}

/**
 * Samples and decodes frames of a video as Video-LLaMA's `load_video` does.
 *
 * Already-decoded frames are accepted too: the same indices are taken and frames that are not
 * already size × size are resized with a triangle (bilinear) filter in TypeScript. That filter is
 * swscale's bilinear scaler up to fixed-point rounding (a few levels at most; frames decoded by
 * this function from a file use swscale itself).
 *
 * @example
 * ```ts
 * const video = await decodeVideoFrames('clip.mp4', { frames: 8, size: 224 });
 * const tensor = normalizeFrames(video.rgb, video.frames, 224, CLIP_MEAN, CLIP_STD); // [8,3,224,224]
 * ```
 * @throws VideoLlamaError `NO_VIDEO_STREAM`, `MEDIA_DECODE`, `FILE_NOT_FOUND`, `FFMPEG_NOT_FOUND`, `ABORTED`, `INVALID_ARGUMENT`.
 */
export async function decodeVideoFrames(input: MediaInput | RgbFrames, options: DecodeVideoOptions = {}): Promise<DecodedVideo> {
  const { frames = 8, size = 224, signal } = options;
  validatePositiveInteger(frames, 'options.frames');
  validatePositiveInteger(size, 'options.size');
  validateSignal(signal);
  if (isRgbFrames(input)) return sampleRgbFrames(input, frames, size);
  validateMediaInput(input, 'input');
  return withLocalFile(input, async (file) => {
    const stream = requireVideoStream(await probeFile(file, signal), file);
    const totalFrames = await countPackets(file, stream.index, signal);
    if (totalFrames === 0) throw new VideoLlamaError('MEDIA_DECODE', `the video stream of ${file} has no frames`, { file });
    const indices = uniformFrameIndices(totalFrames, frames);
    const unique = [...new Set(indices)];
    const decoded = await decodeSelectedFrames(file, stream.index, unique, size, signal);
    return {
      rgb: gatherFrames(decoded, unique, indices, size * size * 3),
      frames: indices.length, width: size, height: size, indices, totalFrames, fps: stream.fps ?? 0,
    };
  });
}

/** Decodes the frames with the given (ascending, distinct) indices, scaled to size × size rgb24. */
async function decodeSelectedFrames(file: string, streamIndex: number, indices: readonly number[], size: number,
  signal?: AbortSignal): Promise<Uint8Array> {
  const frameBytes = size * size * 3;
  const out = new Uint8Array(indices.length * frameBytes);
  let received = 0;
  // select's n counts decoded frames in presentation order; quoted so its commas stay inside
  const select = `select='${indices.map((i) => `eq(n,${i})`).join('+')}'`;
  const result = await runFfmpeg([
    '-loglevel', 'error', '-i', file, '-map', `0:${streamIndex}`,
    '-vf', `${select},scale=${size}:${size}:flags=bilinear,format=rgb24`,
    ...(await passthroughFrameArgs(signal)), '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-',
  ], {
    what: 'decoding video frames',
    signal,
    onStdout: (chunk) => {
      if (received + chunk.length > out.length) throw new VideoLlamaError('MEDIA_DECODE', `ffmpeg returned more frames than requested from ${file}`, { file });
      out.set(chunk, received);
      received += chunk.length;
    },
  });
  if (result.code !== 0) throw decodeFailure('to decode the video frames', file, result);
  if (received !== out.length) {
    const decodedFrames = Math.floor(received / frameBytes);
    throw new VideoLlamaError('MEDIA_DECODE',
      `only ${decodedFrames} of the ${indices.length} requested frames of ${file} could be decoded (last requested index ${indices.at(-1)})`,
      { file, requested: indices, decodedFrames });
  }
  return out;
}

/** Lays out the decoded distinct frames in the order (and with the repeats) of `indices`. */
function gatherFrames(decoded: Uint8Array, unique: readonly number[], indices: readonly number[], frameBytes: number): Uint8Array {
  const out = new Uint8Array(indices.length * frameBytes);
  indices.forEach((index, t) => {
    const source = unique.indexOf(index) * frameBytes;
    out.set(decoded.subarray(source, source + frameBytes), t * frameBytes);
  });
  return out;
}

function isRgbFrames(input: unknown): input is RgbFrames {
  return typeof input === 'object' && input !== null && !(input instanceof Uint8Array) && 'rgb' in input;
}

function validateRgbImages(input: RgbFrames, name: string): void {
  validatePositiveInteger(input.width, `${name}.width`);
  validatePositiveInteger(input.height, `${name}.height`);
  validatePositiveInteger(input.frames, `${name}.frames`);
  const bytes = input.frames * input.width * input.height * 3;
  if (!(input.rgb instanceof Uint8Array) || input.rgb.length !== bytes) {
    throw invalidArgument(`${name}.rgb`, `a Uint8Array of frames × height × width × 3 = ${bytes} bytes`, input.rgb);
  }
}

function sampleRgbFrames(input: RgbFrames, frames: number, size: number): DecodedVideo {
  validateRgbImages(input, 'input');
  const indices = uniformFrameIndices(input.frames, frames);
  const sourceBytes = input.width * input.height * 3;
  const frameBytes = size * size * 3;
  const rgb = new Uint8Array(indices.length * frameBytes);
  indices.forEach((index, t) => {
    const frame = input.rgb.subarray(index * sourceBytes, (index + 1) * sourceBytes);
    const resized = input.width === size && input.height === size ? frame : resizeRgb(frame, input.width, input.height, size, size, BILINEAR);
    rgb.set(resized, t * frameBytes);
  });
  return { rgb, frames: indices.length, width: size, height: size, indices, totalFrames: input.frames, fps: input.fps ?? 0 };
}

/** Options of {@link loadImageTensor}. */
export interface LoadImageOptions {
  /** Output side in pixels (224). */
  size?: number;
  /** Per-channel mean, default {@link CLIP_MEAN}. */
  mean?: readonly number[];
  /** Per-channel standard deviation, default {@link CLIP_STD}. */
  std?: readonly number[];
  signal?: AbortSignal;
}

/**
 * An image as the vision encoder's input, like BLIP-2's `Blip2ImageEvalProcessor` on
 * `Image.open(path).convert("RGB")`: resize to size × size with Pillow's bicubic filter (aspect
 * ratio not kept), `/255`, `(x − mean) / std`.
 *
 * Any image (or the first frame of any video) ffmpeg reads is accepted, as are raw RGB pixels
 * (`{ rgb, width, height, frames: 1 }`). Pixels decoded by ffmpeg can differ slightly from
 * Pillow's decoder for JPEG (chroma upsampling); EXIF orientation is ignored, as Pillow does.
 *
 * @returns Float32Array [1, 3, size, size].
 * @example
 * ```ts
 * const tensor = await loadImageTensor('cat.png'); // [1,3,224,224]
 * ```
 * @throws VideoLlamaError `NO_VIDEO_STREAM` (no picture), `MEDIA_DECODE`, `FILE_NOT_FOUND`, `FFMPEG_NOT_FOUND`, `ABORTED`, `INVALID_ARGUMENT`.
 */
export async function loadImageTensor(input: MediaInput | RgbFrames, options: LoadImageOptions = {}): Promise<Float32Array> {
  const { size = 224, mean = CLIP_MEAN, std = CLIP_STD, signal } = options;
  validatePositiveInteger(size, 'options.size');
  validateChannelTriple(mean, 'options.mean', false);
  validateChannelTriple(std, 'options.std', true);
  validateSignal(signal);
  let image: RgbFrames;
  if (isRgbFrames(input)) {
    validateRgbImages(input, 'input');
    if (input.frames !== 1) throw invalidArgument('input.frames', '1 (a single image)', input.frames);
    image = input;
  } else {
    validateMediaInput(input, 'input');
    image = await withLocalFile(input, (file) => decodeImage(file, signal));
  }
  const resized = image.width === size && image.height === size
    ? image.rgb
    : resizeRgb(image.rgb, image.width, image.height, size, size, BICUBIC);
  return normalizeFrames(resized, 1, size, mean, std);
}

/** The first picture of a file as RGB at its own size. */
async function decodeImage(file: string, signal?: AbortSignal): Promise<RgbFrames> {
  const probe = await probeFile(file, signal);
  // an attached picture (cover art) is an image too
  const stream = probe.streams.find((s) => s.type === 'video') ?? requireVideoStream(probe, file);
  const { width, height } = stream;
  if (!width || !height) {
    throw new VideoLlamaError('MEDIA_DECODE', `cannot read the picture size of ${file}`, { file, stream });
  }
  const chunks: Buffer[] = [];
  const result = await runFfmpeg([
    '-loglevel', 'error', '-noautorotate', '-i', file, '-map', `0:${stream.index}`, '-frames:v', '1',
    '-sws_flags', 'accurate_rnd+full_chroma_int', '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-',
  ], { what: 'decoding the image', signal, onStdout: (chunk) => chunks.push(chunk) });
  if (result.code !== 0) throw decodeFailure('to decode the image', file, result);
  const rgb = new Uint8Array(Buffer.concat(chunks));
  if (rgb.length !== width * height * 3) {
    throw new VideoLlamaError('MEDIA_DECODE', `decoding ${file} gave ${rgb.length} bytes, expected ${width}×${height}×3`, { file });
  }
  return { rgb, width, height, frames: 1 };
}
