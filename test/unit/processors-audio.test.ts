import { describe, expect, test } from 'vitest';

import { AudioProcessor } from '../../src/processors/audio-processor.js';
import { constantClipRanges, mergeRanges } from '../../src/processors/clip-sampling.js';
import { VIDEO_LLAMA_PREPROCESSING } from '../../src/processors/constants.js';
import { KaldiFbank } from '../../src/processors/fbank.js';
import { audioToFbank } from '../../src/processors/melspec.js';
import { Rational } from '../../src/processors/rational.js';
import { SincResampler } from '../../src/processors/resample.js';

const LOG_FLOOR = Math.log(1.1920928955078125e-7);
/** The normalised value of a padded (zero) fbank column and of a floored (silent) bin. */
const PAD_VALUE = Math.fround(4.268 / 9.138);
const FLOOR_VALUE = (LOG_FLOOR + 4.268) / 9.138;

function sine(frequency: number, rate: number, samples: number, amplitude = 0.5): Float32Array {
  return Float32Array.from({ length: samples }, (_, i) => amplitude * Math.sin((2 * Math.PI * frequency * i) / rate));
}

describe('Rational (Python Fraction)', () => {
  test('Fraction(0.1) is the exact binary value 3602879701896397/36028797018963968', () => {
    expect(Rational.fromFloat(0.1).toString()).toBe('3602879701896397/36028797018963968');
  });

  test('integers, negatives, the smallest subnormal, and reduction', () => {
    expect(Rational.fromFloat(2).toString()).toBe('2');
    expect(Rational.fromFloat(-0.75).toString()).toBe('-3/4');
    expect(Rational.fromFloat(5e-324).toString()).toBe(`1/${2n ** 1074n}`);
    expect(new Rational(6n, -4n).toString()).toBe('-3/2');
    expect(Rational.fromFloat(0.25).mul(new Rational(16000n)).trunc()).toBe(4000n);
  });
});

describe('constantClipRanges (ConstantClipsPerVideoSampler)', () => {
  test('audio shorter than a clip: every clip is [0, clip duration)', () => {
    const clips = constantClipRanges(16000, 16000, 2, 8);
    expect(clips).toHaveLength(8);
    for (const clip of clips) expect([clip.start.toString(), clip.end.toString(), clip.sampleStart, clip.sampleEnd]).toEqual(['0', '2', 0, 32000]);
  });

  test('exactly 4 s with 4 clips: starts 0, 0.5, 1, 1.5 s', () => {
    expect(constantClipRanges(64000, 16000, 2, 4).map((c) => c.sampleStart)).toEqual([0, 8000, 16000, 24000]);
  });

  test('mergeRanges merges overlaps and keeps gaps', () => {
    expect(mergeRanges([{ start: 10, end: 20 }, { start: 0, end: 5 }, { start: 15, end: 30 }, { start: 40, end: 41 }]))
      .toEqual([{ start: 0, end: 5 }, { start: 10, end: 30 }, { start: 40, end: 41 }]);
  });
});

/**
 * torchaudio's sinc_interp_hann resampling written directly from its formula, in float64:
 * y[n] = Σ_i x[i] · sinc(π t) · cos²(π t / 12) · base/orig, t = clamp((i/orig − n/new) · base, ±6), base = 0.99 · min(orig, new).
 */
function directResample(x: Float32Array, inputRate: number, outputRate: number, outputs: number[]): number[] {
  const g = (a: number, b: number): number => (b === 0 ? a : g(b, a % b));
  const orig = inputRate / g(inputRate, outputRate);
  const next = outputRate / g(inputRate, outputRate);
  const base = 0.99 * Math.min(orig, next);
  return outputs.map((n) => {
    let y = 0;
    for (let i = 0; i < x.length; i++) {
      const t = Math.min(Math.max((i / orig - n / next) * base, -6), 6);
      const sinc = t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t);
      y += x[i]! * sinc * Math.cos((Math.PI * t) / 12) ** 2 * (base / orig);
    }
    return y;
  });
}

describe('SincResampler (torchaudio.functional.resample defaults)', () => {
  test.each([[48000, 16000], [44100, 16000], [8000, 16000], [22050, 16000]])('%i → %i Hz equals the direct float64 formula within 1e-5 (the kernel is float32, as torch builds it)', (from, to) => {
    const x = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 0.37) * 0.6 + Math.cos(i * 0.011) * 0.3);
    const resampler = new SincResampler(from, to);
    const y = resampler.resample(x);
    expect(y.length).toBe(Math.ceil((to * 2000) / from));
    const probes = [0, 1, 2, 3, 57, 158, y.length - 2, y.length - 1];
    const expected = directResample(x, from, to, probes);
    probes.forEach((n, k) => expect(Math.abs(y[n]! - expected[k]!)).toBeLessThan(1e-5));
  });

  test('a 1 kHz tone at 48 kHz comes out as the same tone at 16 kHz (away from the edges, < 2e-3)', () => {
    const y = new SincResampler(48000, 16000).resample(sine(1000, 48000, 48000));
    let worst = 0;
    for (let n = 200; n < y.length - 200; n++) worst = Math.max(worst, Math.abs(y[n]! - 0.5 * Math.sin((2 * Math.PI * 1000 * n) / 16000)));
    expect(worst).toBeLessThan(2e-3);
  });

  test('resampling a sub-range from only the input it needs equals the same range of the whole', () => {
    const x = Float32Array.from({ length: 44100 }, (_, i) => Math.sin(i * 0.05) + 0.1 * Math.sin(i * 1.3));
    const resampler = new SincResampler(44100, 16000);
    const whole = resampler.resample(x);
    for (const [start, end] of [[0, 500], [7001, 9000], [15500, resampler.outputLength(x.length)]] as const) {
      const range = resampler.inputRange(start, end, x.length);
      const part = resampler.resampleRange(x.slice(range.start, range.end), range.start, x.length, start, end);
      expect(part).toEqual(whole.subarray(start, end));
    }
  });
});

describe('KaldiFbank (torchaudio.compliance.kaldi.fbank as ImageBind calls it)', () => {
  const fbank = new KaldiFbank({ sampleFrequency: 16000, numMelBins: 128 });

  test('25 ms / 10 ms frames at 16 kHz: 400-sample windows every 160, FFT 512, 198 frames in 2 s', () => {
    expect([fbank.windowSize, fbank.windowShift, fbank.paddedWindowSize]).toEqual([400, 160, 512]);
    expect(fbank.frameCount(32000)).toBe(198);
    expect(fbank.frameCount(399)).toBe(0);
  });

  test('silence gives the log floor log(FLT_EPSILON) everywhere, never -Infinity or NaN', () => {
    const out = fbank.compute(new Float32Array(1000));
    expect(out.length).toBe(4 * 128);
    expect(Math.max(...out.map((value) => Math.abs(value - LOG_FLOOR)))).toBeLessThan(1e-6);
  });

  test('a 1 kHz tone peaks in the mel bin whose centre is nearest 1 kHz', () => {
    const out = fbank.compute(sine(1000, 16000, 4000));
    const frame = out.subarray(5 * 128, 6 * 128);
    const peak = frame.indexOf(Math.max(...frame));
    // centre of bin b: mel_low + (b + 1)·Δ in kaldi's mel scale
    const mel = (f: number): number => 1127 * Math.log(1 + f / 700);
    const delta = (mel(8000) - mel(20)) / 129;
    const nearest = Math.round((mel(1000) - mel(20)) / delta - 1);
    expect(Math.abs(peak - nearest)).toBeLessThanOrEqual(1);
  });
});

describe('audioToFbank', () => {
  test('all-zero audio: floor values for real frames, the normalised zero pad after 198 frames, no NaN', () => {
    const out = audioToFbank(new Float32Array(48000), { clips: 3 });
    expect(out.length).toBe(3 * 128 * 204);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - (i % 204 < 198 ? FLOOR_VALUE : PAD_VALUE)));
    expect(worst).toBeLessThan(1e-6);
  });

  test('audio shorter than 2 s: every clip is the whole waveform, padded after its 98 frames', () => {
    const audio = sine(440, 16000, 16000);
    const out = audioToFbank(audio, { clips: 4 });
    const clip = 128 * 204;
    for (let m = 1; m < 4; m++) {
      let worst = 0;
      for (let i = 0; i < clip; i++) worst = Math.max(worst, Math.abs(out[m * clip + i]! - out[i]!));
      expect(worst).toBeLessThan(1e-5); // later clips see the already mean-subtracted samples
    }
    // 1 + (16000 − 400) / 160 = 98 frames, then zero columns
    expect(out[98]).toBeCloseTo(PAD_VALUE, 6);
    expect(out[97]).not.toBeCloseTo(PAD_VALUE, 2);
  });

  test('does not modify its input and accepts channel-major multi-channel audio', () => {
    const mono = sine(300, 16000, 40000).map((v) => v + 0.25);
    const copy = mono.slice();
    const fromMono = audioToFbank(mono, { clips: 2 });
    expect(mono).toEqual(copy);
    const stereo = new Float32Array(80000);
    stereo.set(mono, 0);
    stereo.set(mono, 40000);
    // identical channels: the mean over both channels equals channel 0's mean, so the output is the same
    expect(audioToFbank({ samples: stereo, sampleRate: 16000, channels: 2 }, { clips: 2 })).toEqual(fromMono);
  });

  test('validates the audio and the options', () => {
    expect(() => audioToFbank(new Float32Array(399))).toThrow(/at least 400 samples/);
    expect(() => audioToFbank({ samples: new Float32Array(16000), sampleRate: 48000, channels: 1 })).toThrow(/for audio.sampleRate/);
    expect(() => audioToFbank({ samples: new Float32Array(3), sampleRate: 16000, channels: 2 })).toThrow(/divisible by audio.channels/);
    expect(() => audioToFbank(new Float32Array(16000), { clips: 0 })).toThrow(/for options.clips but received 0/);
    expect(() => audioToFbank(new Float32Array(16000), { melBins: 3 })).toThrow(/options.melBins/);
    expect(() => audioToFbank(new Float32Array(16000), { std: 0 })).toThrow(/options.std/);
    expect(() => audioToFbank([1, 2, 3] as unknown as Float32Array)).toThrow(/Expected a Float32Array/);
  });
});

describe('the audio processor built from a projector\'s metadata', () => {
  test('takes the clips bound, mel bins, frames and fbank mean and std of the projector', async () => {
    const info = { ...VIDEO_LLAMA_PREPROCESSING, maxFrames: 32, maxClips: 2, melBins: 64, targetFrames: 100, fbankMean: 0, fbankStd: 1 };
    const processor = new AudioProcessor(info);
    expect(processor.clips).toBe(2); // the default 8, capped
    expect(() => new AudioProcessor(info, 3)).toThrow(/an integer from 1 to 2 for options.clips/);
    const { tensor, shape } = await processor.fromPcm16k(new Float32Array(16000)); // 1 s of silence: 98 frames
    expect(shape).toEqual([2, 1, 64, 100]);
    expect(tensor[0]).toBeCloseTo(Math.log(1.1920928955078125e-7), 5); // kaldi's log floor, not normalised
    expect(tensor[98]).toBe(0); // padding, (0 - 0) / 1
  });
});

describe('non-finite PCM', () => {
  test.each([NaN, Infinity, -Infinity])('a sample of %s is INVALID_ARGUMENT naming its index, not a non-finite embedding', async (value) => {
    const pcm = new Float32Array(16000);
    pcm[1234] = value;
    const processor = new AudioProcessor({ ...VIDEO_LLAMA_PREPROCESSING, maxFrames: 32, maxClips: 8 });
    await expect(processor.fromPcm16k(pcm)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: `Expected finite samples for audio but element 1234 is ${value}`, details: { index: 1234 } });
    expect(() => audioToFbank(pcm)).toThrow(/element 1234/);
  });
});
