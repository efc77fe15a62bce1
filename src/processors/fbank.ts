/**
 * Log mel filterbank features exactly as `torchaudio.compliance.kaldi.fbank` computes them with
 * the arguments ImageBind passes (`htk_compat=True, use_energy=False, window_type="hanning",
 * dither=0`) and kaldi's defaults for the rest: frames of 25 ms every 10 ms (snip_edges: only
 * whole frames), per frame DC-offset removal, pre-emphasis 0.97 (first sample replicated), a
 * symmetric Hann window, zero-padding to the next power of two (512 at 16 kHz), power spectrum,
 * kaldi's triangular mel banks between 20 Hz and Nyquist, and `log(max(energy, FLT_EPSILON))`.
 *
 * Arithmetic is float64 on the float32 samples; results are rounded to float32.
 * @module
 */
import { RealFft } from './fft.js';
import { runToEnd, type Sliced } from './slices.js';

/** `torch.finfo(torch.float32).eps`, kaldi's floor before the log. */
const FLOAT32_EPSILON = 1.1920928955078125e-7;
const PREEMPHASIS = 0.97;
const LOW_FREQ = 20;
const MILLISECONDS_TO_SECONDS = 0.001;
/** Frames between two pauses of {@link KaldiFbank.computeSteps} (about 2 ms of work). */
const FRAMES_PER_SLICE = 16;

/** Settings of {@link KaldiFbank}. */
export interface KaldiFbankOptions {
  /** Sample rate in Hz (ImageBind: 16000). */
  sampleFrequency: number;
  /** Number of mel bins (ImageBind: 128); more than 3. */
  numMelBins: number;
  /** Frame length in milliseconds (kaldi default 25). */
  frameLengthMs?: number;
  /** Frame shift in milliseconds (kaldi default 10). */
  frameShiftMs?: number;
}

/** A triangular mel filter: weights for FFT bins first .. first + weights.length − 1. */
interface MelFilter {
  first: number;
  weights: Float64Array;
}

/** kaldi's mel scale, `1127 · ln(1 + f / 700)`. */
function melScale(freq: number): number {
  return 1127 * Math.log(1 + freq / 700);
}

/** A reusable fbank computer for one configuration. */
export class KaldiFbank {
  /** Samples per frame (400 at 16 kHz). */
  readonly windowSize: number;
  /** Samples between frame starts (160 at 16 kHz). */
  readonly windowShift: number;
  /** FFT length: windowSize rounded up to a power of two (512). */
  readonly paddedWindowSize: number;
  readonly numMelBins: number;
  private readonly window: Float64Array;
  private readonly filters: MelFilter[];
  private readonly fft: RealFft;

  constructor(options: KaldiFbankOptions) {
    const { sampleFrequency, numMelBins, frameLengthMs = 25, frameShiftMs = 10 } = options;
    // int(sample_frequency * frame_length * 0.001) as in _get_waveform_and_window_properties
    this.windowShift = Math.trunc(sampleFrequency * frameShiftMs * MILLISECONDS_TO_SECONDS);
    this.windowSize = Math.trunc(sampleFrequency * frameLengthMs * MILLISECONDS_TO_SECONDS);
    this.paddedWindowSize = 2 ** Math.ceil(Math.log2(this.windowSize));
    this.numMelBins = numMelBins;
    this.window = hannWindow(this.windowSize);
    this.filters = melBanks(numMelBins, this.paddedWindowSize, sampleFrequency);
    this.fft = new RealFft(this.paddedWindowSize);
  }

  /** Frames of a waveform of `samples` samples (snip_edges): 1 + ⌊(samples − windowSize) / windowShift⌋, 0 if too short. */
  frameCount(samples: number): number {
    return samples < this.windowSize ? 0 : 1 + Math.floor((samples - this.windowSize) / this.windowShift);
  }

  /** Log mel energies of `waveform` (one channel): Float32Array [frames, numMelBins] C order. */
  compute(waveform: Float32Array): Float32Array {
    return runToEnd(this.computeSteps(waveform));
  }

  /** {@link KaldiFbank.compute} pausing every {@link FRAMES_PER_SLICE} frames (see `runSliced`). */
  *computeSteps(waveform: Float32Array): Sliced<Float32Array> {
    const frames = this.frameCount(waveform.length);
    const out = new Float32Array(frames * this.numMelBins);
    const frame = new Float64Array(this.windowSize);
    const half = this.paddedWindowSize / 2;
    const re = new Float64Array(half + 1);
    const im = new Float64Array(half + 1);
    const power = new Float64Array(half + 1);
    for (let f = 0; f < frames; f++) {
      this.prepareFrame(waveform, f * this.windowShift, frame);
      this.fft.forward(frame, re, im);
      for (let k = 0; k <= half; k++) power[k] = re[k]! * re[k]! + im[k]! * im[k]!;
      for (let b = 0; b < this.numMelBins; b++) {
        const { first, weights } = this.filters[b]!;
        let energy = 0;
        for (let i = 0; i < weights.length; i++) energy += power[first + i]! * weights[i]!;
        out[f * this.numMelBins + b] = Math.log(Math.max(energy, FLOAT32_EPSILON));
      }
      if (f % FRAMES_PER_SLICE === FRAMES_PER_SLICE - 1) yield;
    }
    return out;
  }

  /** _get_window: DC offset removal, pre-emphasis, window (padding is left to the FFT). */
  private prepareFrame(waveform: Float32Array, start: number, frame: Float64Array): void {
    const n = this.windowSize;
    let sum = 0;
    for (let j = 0; j < n; j++) sum += waveform[start + j]!;
    const mean = sum / n;
    for (let j = 0; j < n; j++) frame[j] = waveform[start + j]! - mean;
    // strided_input[j] -= 0.97 · strided_input[max(0, j − 1)], from the last sample down
    for (let j = n - 1; j > 0; j--) frame[j] = frame[j]! - PREEMPHASIS * frame[j - 1]!;
    frame[0] = frame[0]! - PREEMPHASIS * frame[0]!;
    for (let j = 0; j < n; j++) frame[j] = frame[j]! * this.window[j]!;
  }
}

/** `torch.hann_window(n, periodic=False)`: 0.5 − 0.5·cos(2πj / (n − 1)). */
function hannWindow(n: number): Float64Array {
  const window = new Float64Array(n);
  for (let j = 0; j < n; j++) window[j] = 0.5 - 0.5 * Math.cos((2 * Math.PI * j) / (n - 1));
  return window;
}

/**
 * `get_mel_banks` without VTLN warping (vtln_warp = 1): bin b is the triangle over
 * [left, centre, right] = mel_low + (b, b+1, b+2)·Δ, Δ = (mel_high − mel_low)/(bins + 1),
 * evaluated at the mel value of each FFT bin k·fs/n for k < n/2 (the Nyquist bin gets weight 0).
 */
function melBanks(numBins: number, paddedWindowSize: number, sampleFrequency: number): MelFilter[] {
  const numFftBins = paddedWindowSize / 2;
  const highFreq = 0.5 * sampleFrequency; // high_freq = 0 → Nyquist
  const fftBinWidth = sampleFrequency / paddedWindowSize;
  const melLow = melScale(LOW_FREQ);
  const melDelta = (melScale(highFreq) - melLow) / (numBins + 1);
  const fftMel = Array.from({ length: numFftBins }, (_, k) => melScale(fftBinWidth * k));
  const filters: MelFilter[] = [];
  for (let b = 0; b < numBins; b++) {
    const left = melLow + b * melDelta;
    const center = melLow + (b + 1) * melDelta;
    const right = melLow + (b + 2) * melDelta;
    const weights = fftMel.map((mel) => Math.max(0, Math.min((mel - left) / (center - left), (right - mel) / (right - center))));
    const first = Math.max(weights.findIndex((w) => w > 0), 0);
    let end = weights.length;
    while (end > first && weights[end - 1] === 0) end--;
    filters.push({ first, weights: Float64Array.from(weights.slice(first, end)) });
  }
  return filters;
}
