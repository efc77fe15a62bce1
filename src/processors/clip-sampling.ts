/**
 * Which stretches of audio become the audio encoder's clips: ImageBind's
 * `load_and_transform_audio_data` with pytorchvideo's `ConstantClipsPerVideoSampler`.
 * @module
 */
import { Rational } from './rational.js';

/** One clip: its time span (exact, as pytorchvideo computes it) and its sample range. */
export interface AudioClipRange {
  /** Start time in seconds, exact. */
  start: Rational;
  /** End time in seconds (start + clip duration), exact. */
  end: Rational;
  /** `int(start * sampleRate)`: the first sample. */
  sampleStart: number;
  /** `int(end * sampleRate)`: one past the last sample, not yet limited to the waveform length. */
  sampleEnd: number;
}

/**
 * The clips of a waveform of `totalSamples` samples at `sampleRate`.
 *
 * Replays the original arithmetic: `duration = totalSamples / sampleRate` (float64),
 * `max_start = Fraction(max(duration - clip_duration, 0))` (a float subtraction, then the float's
 * exact binary value), `step = max_start / clips`, clip i = `[step·i, step·i + clip_duration)`,
 * samples `[int(start·rate), int(end·rate))`. The sampler always yields exactly `clips` clips;
 * a waveform shorter than one clip gives `clips` copies of `[0, clip_duration)`.
 *
 * @param clipSeconds Clip duration in seconds (ImageBind: 2).
 * @example
 * ```ts
 * constantClipRanges(64171, 16000, 2, 8)[1].sampleStart; // 4021
 * ```
 */
export function constantClipRanges(totalSamples: number, sampleRate: number, clipSeconds: number, clips: number): AudioClipRange[] {
  const duration = totalSamples / sampleRate;
  const clipDuration = Rational.fromFloat(clipSeconds);
  const maxStart = Rational.fromFloat(Math.max(duration - clipSeconds, 0));
  const step = maxStart.divInt(clips);
  const rate = new Rational(BigInt(sampleRate));
  const ranges: AudioClipRange[] = [];
  for (let i = 0; i < clips; i++) {
    const start = step.mul(new Rational(BigInt(i)));
    const end = start.add(clipDuration);
    ranges.push({ start, end, sampleStart: Number(start.mul(rate).trunc()), sampleEnd: Number(end.mul(rate).trunc()) });
  }
  return ranges;
}

/** A half-open range [start, end) of sample positions. */
export interface SampleRange {
  start: number;
  end: number;
}

/** Sorts ranges and merges the overlapping or touching ones. */
export function mergeRanges(ranges: readonly SampleRange[]): SampleRange[] {
  const sorted = [...ranges].filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const merged: SampleRange[] = [];
  for (const range of sorted) {
    const last = merged.at(-1);
    if (last && range.start <= last.end) last.end = Math.max(last.end, range.end);
    else merged.push({ ...range });
  }
  return merged;
}
