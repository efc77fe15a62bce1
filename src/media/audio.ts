/**
 * Audio from media files: ffmpeg decodes the first audio stream to float32 PCM at its native rate
 * with all its channels (as `torchaudio.load` returns it), then the TypeScript processors resample
 * to 16 kHz and build ImageBind's fbank clips.
 *
 * Long files are never held in memory whole: the PCM is streamed from ffmpeg's stdout, and when it
 * exceeds a small budget a second decoding pass keeps only the samples the clips need (plus the
 * resampler's margins). The clip positions depend on the exact sample count, which the first pass
 * measures, so the result is exact for any length.
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { mergeRanges, type SampleRange } from '../processors/clip-sampling.js';
import {
  AUDIO_SAMPLE_RATE, clipRanges, clipsToFbank, type FbankClipOptions, MIN_SAMPLES, resolveFbankClipOptions,
  type ResolvedFbankClipOptions, type WaveformSegment,
} from '../processors/melspec.js';
import { SincResampler } from '../processors/resample.js';
import { decodeFailure, runFfmpeg } from './ffmpeg.js';
import { type MediaInput, validateMediaInput, validateSignal, withLocalFile } from './input.js';
import { probeFile, requireAudioStream } from './probe.js';

/** Default of {@link LoadAudioFbankOptions.maxBufferedBytes}: 16 MiB of native PCM. */
const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** Decoded audio at 16 kHz. */
export interface DecodedAudio {
  /** All samples, channel-major ([channels, samples]: channel 0 first, then channel 1, ...). */
  samples: Float32Array;
  sampleRate: 16000;
  channels: number;
}

/** The audio stream being decoded: where it is and its native format. */
interface AudioSource {
  file: string;
  streamIndex: number;
  sampleRate: number;
  channels: number;
  signal?: AbortSignal;
}

/**
 * Decodes the first audio stream of a media file, all channels, resampled to 16 kHz like
 * `torchaudio.functional.resample` (no-op for 16 kHz sources). Holds the whole audio in memory;
 * for long files prefer {@link loadAudioFbank}, which keeps only the clips.
 *
 * @example
 * ```ts
 * const audio = await decodeAudio('clip.mp4');
 * const tensor = audioToFbank(audio, { clips: 8 });
 * ```
 * @throws VideoLlamaError `NO_AUDIO_STREAM`, `MEDIA_DECODE`, `FILE_NOT_FOUND`, `FFMPEG_NOT_FOUND`, `ABORTED`.
 */
export async function decodeAudio(input: MediaInput, options: { signal?: AbortSignal } = {}): Promise<DecodedAudio> {
  validateMediaInput(input);
  validateSignal(options.signal);
  return withLocalFile(input, async (file) => {
    const source = await openAudioSource(file, options.signal);
    const chunks: Float32Array[] = [];
    const frames = await streamPcm(source, (data) => chunks.push(toFloat32(data)));
    if (frames === 0) throw noSamples(file);
    const native = deinterleave(chunks, source.channels, frames);
    const resampler = source.sampleRate === AUDIO_SAMPLE_RATE ? undefined : new SincResampler(source.sampleRate, AUDIO_SAMPLE_RATE);
    const channels = resampler ? native.map((channel) => resampler.resample(channel)) : native;
    const length = channels[0]!.length;
    const samples = new Float32Array(length * channels.length);
    channels.forEach((channel, c) => samples.set(channel, c * length));
    return { samples, sampleRate: AUDIO_SAMPLE_RATE, channels: channels.length };
  });
}

/** Options of {@link loadAudioFbank}: the fbank settings plus decoding controls. */
export interface LoadAudioFbankOptions extends FbankClipOptions {
  signal?: AbortSignal;
  /**
   * Native PCM (bytes of float32 samples, all channels) kept from the first decoding pass; longer
   * audio is decoded a second time keeping only the clip windows. Default 16 MiB (87 s of 48 kHz
   * stereo).
   */
  maxBufferedBytes?: number;
}

/**
 * The audio encoder's input straight from a media file: ImageBind's
 * `load_and_transform_audio_data(clips_per_video=clips)` on the file's first audio stream.
 *
 * @returns `tensor`: Float32Array [clips, 1, melBins, targetFrames] (default [8, 1, 128, 204]);
 *   `clips`: M; `totalSamples`: length of the 16 kHz waveform the clips were taken from.
 * @example
 * ```ts
 * const { tensor, clips } = await loadAudioFbank('clip.mp4', { clips: 8 });
 * ```
 * @throws VideoLlamaError `NO_AUDIO_STREAM`, `MEDIA_DECODE` (also for audio shorter than 25 ms),
 *   `FILE_NOT_FOUND`, `FFMPEG_NOT_FOUND`, `ABORTED`, `INVALID_ARGUMENT`.
 */
export async function loadAudioFbank(input: MediaInput, options: LoadAudioFbankOptions = {}):
Promise<{ tensor: Float32Array; clips: number; totalSamples: number }> {
  validateMediaInput(input);
  validateSignal(options.signal);
  const { signal, maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES, ...fbankOptions } = options;
  if (!Number.isInteger(maxBufferedBytes) || maxBufferedBytes < 0) {
    throw invalidArgument('options.maxBufferedBytes', 'an integer ≥ 0', maxBufferedBytes);
  }
  const resolved = resolveFbankClipOptions(fbankOptions);
  return withLocalFile(input, async (file) => {
    const source = await openAudioSource(file, signal);
    const segments = await decodeClipSegments(source, resolved, maxBufferedBytes);
    return { tensor: clipsToFbank(segments.segments, segments.totalSamples, resolved), clips: resolved.clips, totalSamples: segments.totalSamples };
  });
}

async function openAudioSource(file: string, signal?: AbortSignal): Promise<AudioSource> {
  const stream = requireAudioStream(await probeFile(file, signal), file);
  return { file, streamIndex: stream.index, sampleRate: stream.sampleRate, channels: stream.channels, signal };
}

/**
 * Decodes only what the clips need: pass 1 measures the sample count (keeping the PCM if it fits
 * the budget), pass 2 (long audio only) keeps the native samples of the clip windows; each window
 * is then resampled to 16 kHz on its own, which gives exactly the samples a whole-file resampling
 * would (the windows include the resampler's reach).
 */
async function decodeClipSegments(source: AudioSource, options: ResolvedFbankClipOptions, maxBufferedBytes: number):
Promise<{ segments: WaveformSegment[]; totalSamples: number }> {
  const first = await measureAudio(source, maxBufferedBytes);
  const resampler = source.sampleRate === AUDIO_SAMPLE_RATE ? undefined : new SincResampler(source.sampleRate, AUDIO_SAMPLE_RATE);
  const totalSamples = resampler ? resampler.outputLength(first.frames) : first.frames;
  if (totalSamples < MIN_SAMPLES) {
    throw new VideoLlamaError('MEDIA_DECODE',
      `the audio of ${source.file} is too short: ${totalSamples} samples at 16 kHz, at least ${MIN_SAMPLES} (25 ms) are needed`,
      { file: source.file, samples: totalSamples });
  }
  // Clip windows at 16 kHz, and the native samples each one reads.
  const windows = mergeRanges(clipRanges(totalSamples, options).map((clip) => ({ start: clip.sampleStart, end: clip.sampleEnd })));
  const nativeRanges = windows.map((w) => (resampler ? resampler.inputRange(w.start, w.end, first.frames) : w));
  const collector = await collectWindows(source, mergeRanges(nativeRanges), first);
  const segments = windows.map((window, i): WaveformSegment => {
    const native = collector.windowHolding(nativeRanges[i]!);
    const channels = native.channels.map((channel) => (resampler
      ? resampler.resampleRange(channel, native.start, first.frames, window.start, window.end)
      : channel.subarray(window.start - native.start, window.end - native.start)));
    return { start: window.start, channels };
  });
  return { segments, totalSamples };
}

/** Pass 1: the exact number of frames, and the PCM itself while it stays within the budget. */
async function measureAudio(source: AudioSource, maxBufferedBytes: number): Promise<{ frames: number; buffered?: Float32Array[] }> {
  let buffered: Float32Array[] | undefined = [];
  let bufferedBytes = 0;
  const frames = await streamPcm(source, (data) => {
    if (!buffered) return;
    bufferedBytes += data.length;
    if (bufferedBytes <= maxBufferedBytes) buffered.push(toFloat32(data));
    else buffered = undefined; // too long to keep: only count, decode again later
  });
  if (frames === 0) throw noSamples(source.file);
  return { frames, buffered };
}

/** The native samples of `ranges`, from the buffered PCM or from a second decoding pass. */
async function collectWindows(source: AudioSource, ranges: readonly SampleRange[],
  first: { frames: number; buffered?: Float32Array[] }): Promise<WindowCollector> {
  const collector = new WindowCollector(ranges, source.channels);
  if (first.buffered) {
    let position = 0;
    for (const chunk of first.buffered) {
      collector.push((i) => chunk[i]!, chunk.length, position);
      position += chunk.length / source.channels;
    }
    return collector;
  }
  // read in place from the pipe chunks: only the samples inside the windows are copied
  const frames = await streamPcm(source, (data, firstFrame) => collector.push((i) => data.readFloatLE(4 * i), data.length / 4, firstFrame));
  if (frames !== first.frames) {
    throw new VideoLlamaError('MEDIA_DECODE',
      `decoding the audio of ${source.file} twice gave ${first.frames} and then ${frames} samples`, { file: source.file });
  }
  return collector;
}

/** Keeps the samples of a few sample ranges out of a stream of interleaved PCM chunks, per channel. */
class WindowCollector {
  private readonly windows: Array<SampleRange & { channels: Float32Array[] }>;

  constructor(ranges: readonly SampleRange[], private readonly channelCount: number) {
    this.windows = ranges.map((range) => ({
      ...range,
      channels: Array.from({ length: channelCount }, () => new Float32Array(range.end - range.start)),
    }));
  }

  /**
   * Takes a chunk of `sampleCount` interleaved samples, read through `sample(i)`, whose first frame
   * is frame `firstFrame` of the stream.
   */
  push(sample: (index: number) => number, sampleCount: number, firstFrame: number): void {
    const chunkEnd = firstFrame + sampleCount / this.channelCount;
    for (const window of this.windows) {
      const from = Math.max(window.start, firstFrame);
      const to = Math.min(window.end, chunkEnd);
      for (let c = 0; c < this.channelCount; c++) {
        const channel = window.channels[c]!;
        for (let i = from; i < to; i++) channel[i - window.start] = sample((i - firstFrame) * this.channelCount + c);
      }
    }
  }

  /** The collected window that contains `range`. */
  windowHolding(range: SampleRange): { start: number; channels: Float32Array[] } {
    const window = this.windows.find((w) => w.start <= range.start && range.end <= w.end);
    if (!window) throw new RangeError(`no collected window holds [${range.start}, ${range.end})`);
    return window;
  }
}

/** Copies whole float32 little-endian samples into a fresh (aligned) Float32Array. */
function toFloat32(data: Buffer): Float32Array {
  const samples = new Float32Array(data.length / 4);
  for (let i = 0; i < samples.length; i++) samples[i] = data.readFloatLE(i * 4);
  return samples;
}

/**
 * Decodes the audio stream to interleaved float32 little-endian frames at its native rate and
 * channel count (stated explicitly so that the byte layout is certain), handing over whole frames
 * as they come with the index of their first frame.
 * @returns the number of frames (samples per channel).
 */
async function streamPcm(source: AudioSource, consume: (data: Buffer, firstFrame: number) => void): Promise<number> {
  const frameBytes = 4 * source.channels;
  let carry = Buffer.alloc(0);
  let frames = 0;
  const result = await runFfmpeg([
    '-loglevel', 'error', '-i', source.file, '-map', `0:${source.streamIndex}`,
    '-ar', String(source.sampleRate), '-ac', String(source.channels), '-acodec', 'pcm_f32le', '-f', 'f32le', '-',
  ], {
    what: 'decoding audio',
    signal: source.signal,
    onStdout: (chunk) => {
      const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const usable = data.length - (data.length % frameBytes);
      if (usable > 0) {
        consume(data.subarray(0, usable), frames);
        frames += usable / frameBytes;
      }
      carry = Buffer.from(data.subarray(usable));
    },
  });
  if (result.code !== 0) throw decodeFailure('to decode the audio', source.file, result);
  return frames;
}

/** Interleaved chunks → one Float32Array per channel. */
function deinterleave(chunks: readonly Float32Array[], channelCount: number, frames: number): Float32Array[] {
  const channels = Array.from({ length: channelCount }, () => new Float32Array(frames));
  let position = 0;
  for (const chunk of chunks) {
    const chunkFrames = chunk.length / channelCount;
    for (let i = 0; i < chunkFrames; i++) {
      for (let c = 0; c < channelCount; c++) channels[c]![position + i] = chunk[i * channelCount + c]!;
    }
    position += chunkFrames;
  }
  return channels;
}

function noSamples(file: string): VideoLlamaError {
  return new VideoLlamaError('MEDIA_DECODE', `the audio stream of ${file} decoded to 0 samples`, { file });
}
