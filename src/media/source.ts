/**
 * A media file opened for decoding: probed once (see {@link probeFile}), then asked for what the
 * preprocessing needs — frames at given indices and size, PCM of given sample ranges, or a still
 * picture at its own size — each request one ffmpeg process. Nothing here samples, resizes beyond
 * ffmpeg's scaler, normalises or resamples: that is `processors/`.
 *
 * Rotation metadata (a video's display matrix, a JPEG's EXIF orientation) is applied by ffmpeg
 * the same way to video frames and to pictures.
 * @internal
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { decodeFailure, passthroughFrameArgs, runFfmpeg } from './ffmpeg.js';
import { ffmpegInput, validateSignal } from './input.js';
import { type MediaProbe, probeFile, validateAudioStream, requireAudioStream, requireMediaContent, requirePictureStream, requireVideoStream } from './probe.js';

/**
 * Default of {@link DecodeOptions.limitInputPixels}: 100 megapixels (a 10000 × 10000 picture, an
 * 8K frame is 33). Above it a picture costs gigabytes of memory to decode.
 */
export const DEFAULT_LIMIT_INPUT_PIXELS = 100_000_000;

/** Options of opening a media file. */
export interface DecodeOptions {
  /** Cancels probing and decoding; the promise rejects with ABORTED. */
  signal?: AbortSignal;
  /**
   * Most pixels (width × height) a picture or video frame may have; larger ones are rejected
   * with MEDIA_DECODE before anything is decoded. Default {@link DEFAULT_LIMIT_INPUT_PIXELS};
   * `false` removes the limit.
   */
  limitInputPixels?: number | false;
  /** The audio stream decoded: its index among the file's audio streams; default 0 (see {@link ProbeOptions.audioStream}). */
  audioStream?: number;
}

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

/** Throws `INVALID_ARGUMENT` for a bad signal or pixel limit. */
export function validateDecodeOptions(options: DecodeOptions): void {
  validateSignal(options.signal);
  const { limitInputPixels } = options;
  if (limitInputPixels !== undefined && limitInputPixels !== false && !(Number.isInteger(limitInputPixels) && limitInputPixels > 0)) {
    throw invalidArgument('options.limitInputPixels', 'a positive integer or false', limitInputPixels);
  }
  validateAudioStream(options.audioStream);
}

/** A half-open range of samples (per channel) at the audio stream's own rate. */
export interface PcmRange {
  start: number;
  end: number;
}

/** The PCM of one {@link PcmRange}: one Float32Array per channel. */
export interface PcmWindow {
  start: number;
  channels: Float32Array[];
}

/** What {@link MediaSource.decode} is asked for. */
export interface DecodeRequest {
  /** Frames with these ascending, distinct indices, scaled to size × size rgb24 by swscale's bilinear filter. */
  frames?: { indices: readonly number[]; size: number };
  /** The PCM of these ascending, non-overlapping ranges. */
  pcm?: readonly PcmRange[];
}

/** What {@link MediaSource.decode} returns: the frames (T,H,W,C) and PCM windows asked for. */
export interface DecodeResult {
  frames?: Uint8Array;
  pcm?: PcmWindow[];
}

/** A probed media file that hands out frames, PCM and pictures. */
export class MediaSource {
  private constructor(
    /** The local file. */
    readonly file: string,
    /** What the one probe found. */
    readonly probe: MediaProbe,
    private readonly options: DecodeOptions,
  ) {}

  /** Probes `file` (one ffmpeg process); MEDIA_DECODE for a file that holds no media at all (see {@link requireMediaContent}). */
  static async open(file: string, options: DecodeOptions = {}): Promise<MediaSource> {
    validateDecodeOptions(options);
    const probe = await probeFile(file, options.signal, options.audioStream);
    requireMediaContent(probe, file);
    return new MediaSource(file, probe, options);
  }

  /**
   * Decodes frames and PCM in one ffmpeg process: frames to `pipe:1`, PCM as interleaved float32
   * at the stream's own rate and channel count (stated, so the byte layout is certain) to `pipe:3`.
   */
  async decode(request: DecodeRequest): Promise<DecodeResult> {
    const args = ['-loglevel', 'error', '-i', ffmpegInput(this.file)];
    const frames = request.frames && await this.frameOutput(request.frames, args);
    const pcm = request.pcm && this.pcmOutput(request.pcm, args);
    const result = await runFfmpeg(args, {
      what: frames && pcm ? 'decoding video frames and audio' : frames ? 'decoding video frames' : 'decoding audio',
      signal: this.options.signal,
      onStdout: frames?.add,
      onPipe3: pcm?.add,
    });
    if (result.code !== 0) throw decodeFailure(`to decode ${frames ? 'the video frames' : 'the audio'}`, this.file, result);
    return { frames: frames?.finish(), pcm: pcm?.finish() };
  }

  /** The first picture of the file at its own (display-rotated) size, as RGB. */
  async decodeImage(): Promise<RgbFrames> {
    const stream = requirePictureStream(this.probe, this.file); // a cover picture is an image too
    this.checkPixels(stream.width, stream.height);
    const chunks: Buffer[] = [];
    // PPM states the size of the picture after rotation; swscale's exact rounding to rgb24
    const result = await runFfmpeg([
      '-loglevel', 'error', '-i', ffmpegInput(this.file), '-map', `0:${stream.index}`, '-frames:v', '1',
      '-sws_flags', 'accurate_rnd+full_chroma_int', '-pix_fmt', 'rgb24', '-c:v', 'ppm', '-f', 'image2pipe', 'pipe:1',
    ], { what: 'decoding the image', signal: this.options.signal, onStdout: (chunk) => chunks.push(chunk) });
    if (result.code !== 0) throw decodeFailure('to decode the image', this.file, result);
    return parsePpm(Buffer.concat(chunks), this.file);
  }

  private checkPixels(width: number | undefined, height: number | undefined): void {
    const limit = this.options.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS;
    if (limit === false || !width || !height || width * height <= limit) return;
    throw new VideoLlamaError('MEDIA_DECODE',
      `${this.file} has pictures of ${width}×${height} = ${width * height} pixels, more than limitInputPixels (${limit}); ` +
      'raise options.limitInputPixels (or set it to false) to decode it', { file: this.file, width, height, limitInputPixels: limit });
  }

  /** Adds the frame output's arguments; returns its collector. */
  private async frameOutput(request: { indices: readonly number[]; size: number }, args: string[]): Promise<OutputCollector<Uint8Array>> {
    const stream = requireVideoStream(this.probe, this.file);
    this.checkPixels(stream.width, stream.height);
    const { indices, size } = request;
    // select's n counts decoded frames in presentation order; quoted so its commas stay inside
    const select = `select='${indices.map((i) => `eq(n,${i})`).join('+')}'`;
    args.push('-map', `0:${stream.index}`, '-vf', `${select},scale=${size}:${size}:flags=bilinear,format=rgb24`,
      ...(await passthroughFrameArgs(this.options.signal)), '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1');
    return new FrameCollector(indices, size * size * 3, this.file);
  }

  /** Adds the PCM output's arguments; returns its collector. */
  private pcmOutput(ranges: readonly PcmRange[], args: string[]): OutputCollector<PcmWindow[]> {
    const stream = requireAudioStream(this.probe, this.file);
    args.push('-map', `0:${stream.index}`, '-ar', String(stream.sampleRate), '-ac', String(stream.channels),
      '-c:a', 'pcm_f32le', '-f', 'f32le', 'pipe:3');
    return new WindowCollector(ranges, stream.channels);
  }
}

/** Takes one ffmpeg output chunk by chunk and gives the result once ffmpeg has exited. */
interface OutputCollector<T> {
  add: (chunk: Buffer) => void;
  finish(): T;
}

/** Raw rgb24 frames, all of one size. */
class FrameCollector implements OutputCollector<Uint8Array> {
  private readonly out: Uint8Array;
  private received = 0;

  constructor(private readonly indices: readonly number[], private readonly frameBytes: number, private readonly file: string) {
    this.out = new Uint8Array(indices.length * frameBytes);
  }

  add = (chunk: Buffer): void => {
    if (this.received + chunk.length > this.out.length) {
      throw new VideoLlamaError('MEDIA_DECODE', `ffmpeg returned more frames than requested from ${this.file}`, { file: this.file });
    }
    this.out.set(chunk, this.received);
    this.received += chunk.length;
  };

  finish(): Uint8Array {
    if (this.received !== this.out.length) {
      const decodedFrames = Math.floor(this.received / this.frameBytes);
      throw new VideoLlamaError('MEDIA_DECODE',
        `only ${decodedFrames} of the ${this.indices.length} requested frames of ${this.file} could be decoded (last requested index ${this.indices.at(-1)})`,
        { file: this.file, requested: this.indices, decodedFrames });
    }
    return this.out;
  }
}

/**
 * Keeps the samples of a few ranges out of a stream of interleaved float32 PCM, per channel: a
 * long file is never held whole, only the windows are copied out of the pipe chunks.
 */
class WindowCollector implements OutputCollector<PcmWindow[]> {
  private readonly windows: Array<PcmRange & PcmWindow>;
  private carry = Buffer.alloc(0);
  private frames = 0;

  constructor(ranges: readonly PcmRange[], private readonly channelCount: number) {
    this.windows = ranges.map((range) => ({
      ...range,
      channels: Array.from({ length: channelCount }, () => new Float32Array(range.end - range.start)),
    }));
  }

  add = (chunk: Buffer): void => {
    const frameBytes = 4 * this.channelCount;
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const chunkFrames = Math.floor(data.length / frameBytes);
    const firstFrame = this.frames;
    const chunkEnd = firstFrame + chunkFrames;
    for (const window of this.windows) {
      const from = Math.max(window.start, firstFrame);
      const to = Math.min(window.end, chunkEnd);
      for (let c = 0; c < this.channelCount; c++) {
        const channel = window.channels[c]!;
        for (let i = from; i < to; i++) channel[i - window.start] = data.readFloatLE(((i - firstFrame) * this.channelCount + c) * 4);
      }
    }
    this.frames = chunkEnd;
    this.carry = Buffer.from(data.subarray(chunkFrames * frameBytes));
  };

  finish(): PcmWindow[] {
    const short = this.windows.find((window) => window.end > this.frames);
    if (short) {
      throw new VideoLlamaError('MEDIA_DECODE',
        `the audio decoded to ${this.frames} samples, fewer than the probe counted (a window ends at ${short.end})`, { samples: this.frames });
    }
    return this.windows.map(({ start, channels }) => ({ start, channels }));
  }
}

/** A binary PPM (`P6 <width> <height> 255` then rgb24) as {@link RgbFrames}. */
function parsePpm(data: Buffer, file: string): RgbFrames {
  const header = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(data.subarray(0, 64).toString('latin1'));
  const width = Number(header?.[1]);
  const height = Number(header?.[2]);
  // a view, not a copy: copying a 48-megapixel picture stalls the event loop for ~0.1 s
  const rgb = header ? data.subarray(header[0].length) : new Uint8Array(0);
  if (!header || rgb.length !== width * height * 3) {
    throw new VideoLlamaError('MEDIA_DECODE', `decoding ${file} gave no complete ${header ? `${width}×${height} ` : ''}picture`, { file });
  }
  return { rgb, width, height, frames: 1 };
}
