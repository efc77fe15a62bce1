/**
 * Audio clips to the audio encoder's input: ImageBind's `load_and_transform_audio_data` after the
 * waveform is at 16 kHz (models/ImageBind/data.py): clip sampling, `waveform2melspec` per clip,
 * `Normalize(mean, std)`, stacked to [M, 1, melBins, targetFrames].
 * @module
 */
import { invalidArgument, requireFinite, VideoLlamaError } from '../errors.js';
import { type AudioClipRange, constantClipRanges } from './clip-sampling.js';
import { AUDIO_SAMPLE_RATE, DEFAULT_CLIPS, VIDEO_LLAMA_PREPROCESSING as DEFAULTS } from './constants.js';
import { KaldiFbank } from './fbank.js';
import { validatePositiveInteger } from './normalize.js';
import { runToEnd, type Sliced } from './slices.js';

/** The shortest waveform kaldi's fbank accepts: one 25 ms frame at 16 kHz. */
export const MIN_SAMPLES = 400;

/** Options of the audio clips → fbank step (defaults: Video-LLaMA's ImageBind settings). */
export interface FbankClipOptions {
  /** Number of clips M (Video-LLaMA: 8; the audio Q-Former has 8 position rows). */
  clips?: number;
  /** Mel bins (128). */
  melBins?: number;
  /** Frames per clip after padding with 0 or cropping (204). */
  targetFrames?: number;
  /** Clip duration in seconds (2). */
  clipSeconds?: number;
  /** Normalisation mean (−4.268). */
  mean?: number;
  /** Normalisation standard deviation (9.138). */
  std?: number;
}

/** {@link FbankClipOptions} with every default filled in. */
export type ResolvedFbankClipOptions = Required<FbankClipOptions>;

/** Validates the options and fills in the defaults. @internal */
export function resolveFbankClipOptions(options: FbankClipOptions = {}, prefix = 'options'): ResolvedFbankClipOptions {
  const resolved = {
    clips: DEFAULT_CLIPS, melBins: DEFAULTS.melBins, targetFrames: DEFAULTS.targetFrames, clipSeconds: DEFAULTS.clipSeconds,
    mean: DEFAULTS.fbankMean, std: DEFAULTS.fbankStd, ...dropUndefined(options),
  };
  validatePositiveInteger(resolved.clips, `${prefix}.clips`);
  if (!Number.isInteger(resolved.melBins) || resolved.melBins < 4) {
    throw invalidArgument(`${prefix}.melBins`, 'an integer ≥ 4', resolved.melBins);
  }
  validatePositiveInteger(resolved.targetFrames, `${prefix}.targetFrames`);
  if (typeof resolved.clipSeconds !== 'number' || !(resolved.clipSeconds > 0) || !Number.isFinite(resolved.clipSeconds)) {
    throw invalidArgument(`${prefix}.clipSeconds`, 'a positive finite number', resolved.clipSeconds);
  }
  if (typeof resolved.mean !== 'number' || !Number.isFinite(resolved.mean)) {
    throw invalidArgument(`${prefix}.mean`, 'a finite number', resolved.mean);
  }
  if (typeof resolved.std !== 'number' || !(resolved.std > 0) || !Number.isFinite(resolved.std)) {
    throw invalidArgument(`${prefix}.std`, 'a positive finite number', resolved.std);
  }
  return resolved;
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A contiguous stretch of a 16 kHz waveform (all channels) starting at sample `start`. A whole
 * waveform is one segment starting at 0; a long file is a few segments around its clips.
 * Segments are modified in place (see {@link clipsToFbank}).
 */
export interface WaveformSegment {
  start: number;
  /** One Float32Array per channel, all of the same length. */
  channels: Float32Array[];
}

/** The clip sample ranges of a 16 kHz waveform of `totalSamples` samples, limited to the waveform. @internal */
export function clipRanges(totalSamples: number, options: ResolvedFbankClipOptions): AudioClipRange[] {
  return constantClipRanges(totalSamples, AUDIO_SAMPLE_RATE, options.clipSeconds, options.clips)
    .map((clip) => ({ ...clip, sampleEnd: Math.min(clip.sampleEnd, totalSamples) }));
}

/**
 * Computes the normalised fbank of every clip of a 16 kHz waveform of `totalSamples` samples whose
 * clip ranges are covered by `segments`.
 *
 * Clips are processed in order and, like the original's `waveform -= waveform.mean()` on a view
 * of the shared waveform, each clip's mean (over all channels) is subtracted **in place**, so a
 * later overlapping clip sees the already-shifted samples. The fbank uses channel 0 only.
 *
 * @returns Float32Array [clips, 1, melBins, targetFrames] C order.
 */
export function clipsToFbank(segments: readonly WaveformSegment[], totalSamples: number, options: ResolvedFbankClipOptions): Float32Array {
  return runToEnd(clipsToFbankSteps(segments, totalSamples, options));
}

/** {@link clipsToFbank} pausing every few fbank frames (see `runSliced`). @internal */
export function* clipsToFbankSteps(segments: readonly WaveformSegment[], totalSamples: number, options: ResolvedFbankClipOptions):
Sliced<Float32Array> {
  const fbank = new KaldiFbank({ sampleFrequency: AUDIO_SAMPLE_RATE, numMelBins: options.melBins });
  if (totalSamples < MIN_SAMPLES) throw new RangeError(`${totalSamples} samples are fewer than one fbank frame`);
  const { clips, melBins, targetFrames } = options;
  const out = new Float32Array(clips * melBins * targetFrames);
  const ranges = clipRanges(totalSamples, options);
  for (const [clip, range] of ranges.entries()) {
    const channels = clipViews(segments, range);
    subtractMeanInPlace(channels);
    writeNormalizedMelspec(yield* fbank.computeSteps(channels[0]!), out.subarray(clip * melBins * targetFrames), options);
  }
  return out;
}

/** Views (not copies) of every channel of the segment holding the clip. */
function clipViews(segments: readonly WaveformSegment[], range: AudioClipRange): Float32Array[] {
  const segment = segments.find((s) => s.start <= range.sampleStart && range.sampleEnd <= s.start + s.channels[0]!.length);
  if (!segment) throw new RangeError(`no waveform segment holds samples [${range.sampleStart}, ${range.sampleEnd})`);
  return segment.channels.map((channel) => channel.subarray(range.sampleStart - segment.start, range.sampleEnd - segment.start));
}

/** `waveform -= waveform.mean()` on float32 data: the mean over all channels, rounded to float32. */
function subtractMeanInPlace(channels: Float32Array[]): void {
  let sum = 0;
  let count = 0;
  for (const channel of channels) {
    for (let i = 0; i < channel.length; i++) sum += channel[i]!;
    count += channel.length;
  }
  const mean = Math.fround(sum / count);
  for (const channel of channels) for (let i = 0; i < channel.length; i++) channel[i] = channel[i]! - mean;
}

/**
 * [frames, melBins] → transposed to [melBins, targetFrames] (right-padded with 0 or cropped), then
 * `(x − mean) / std` in float32 (torchvision Normalize on the float32 tensor).
 */
function writeNormalizedMelspec(frames: Float32Array, out: Float32Array, options: ResolvedFbankClipOptions): void {
  const { melBins, targetFrames } = options;
  const frameCount = frames.length / melBins;
  const mean32 = Math.fround(options.mean);
  const std32 = Math.fround(options.std);
  for (let bin = 0; bin < melBins; bin++) {
    for (let t = 0; t < targetFrames; t++) {
      const value = t < frameCount ? frames[t * melBins + bin]! : 0;
      out[bin * targetFrames + t] = Math.fround(value - mean32) / std32;
    }
  }
}

/**
 * 16 kHz audio accepted by {@link audioToFbank}: mono samples, or decoded audio with the
 * channels one after the other (channel-major, [channels, samples]).
 */
export type Audio16k = Float32Array | { samples: Float32Array; sampleRate: number; channels: number };

/**
 * The audio encoder's input from 16 kHz audio: ImageBind's `load_and_transform_audio_data` with
 * Video-LLaMA's settings. The input is not modified (the in-place mean subtraction works on a copy).
 *
 * @param audio Mono Float32Array at 16 kHz, or `{ samples, sampleRate: 16000, channels }` as
 *   returned by `decodeAudio` (channel-major).
 * @returns Float32Array [clips, 1, melBins, targetFrames] (defaults [8, 1, 128, 204]) C order.
 * @example
 * ```ts
 * const tensor = audioToFbank(await decodeAudio('talk.wav'), { clips: 8 });
 * ```
 */
export function audioToFbank(audio: Audio16k, options: FbankClipOptions = {}): Float32Array {
  const resolved = resolveFbankClipOptions(options);
  const segment = checkedSegment(toSegment(audio));
  return clipsToFbank([segment], segment.channels[0]!.length, resolved);
}

/** A copy of 16 kHz mono PCM as a waveform segment, checked (length, finite samples). @internal */
export function pcm16kSegment(samples: Float32Array): WaveformSegment {
  return checkedSegment(toSegment(samples));
}

function checkedSegment(segment: WaveformSegment): WaveformSegment {
  const length = segment.channels[0]!.length;
  if (length < MIN_SAMPLES) {
    throw new VideoLlamaError('INVALID_ARGUMENT',
      `Expected at least ${MIN_SAMPLES} samples (one 25 ms fbank frame at 16 kHz) for audio but received ${length} samples`,
      { name: 'audio', samples: length });
  }
  for (const channel of segment.channels) requireFinite(channel, 'audio', 'samples');
  return segment;
}

function toSegment(audio: Audio16k): WaveformSegment {
  if (audio instanceof Float32Array) return { start: 0, channels: [audio.slice()] };
  if (typeof audio !== 'object' || audio === null || !(audio.samples instanceof Float32Array)) {
    throw invalidArgument('audio', 'a Float32Array of 16 kHz mono samples or { samples: Float32Array, sampleRate: 16000, channels }', audio);
  }
  if (audio.sampleRate !== AUDIO_SAMPLE_RATE) throw invalidArgument('audio.sampleRate', '16000 (resample first, e.g. with decodeAudio)', audio.sampleRate);
  validatePositiveInteger(audio.channels, 'audio.channels');
  if (audio.samples.length % audio.channels !== 0) {
    throw invalidArgument('audio.samples', `a length divisible by audio.channels (${audio.channels})`, audio.samples);
  }
  const length = audio.samples.length / audio.channels;
  const channels = Array.from({ length: audio.channels }, (_, c) => audio.samples.slice(c * length, (c + 1) * length));
  return { start: 0, channels };
}
