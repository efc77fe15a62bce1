/**
 * Band-limited resampling exactly like `torchaudio.functional.resample` with its defaults
 * (`sinc_interp_hann`, lowpass_filter_width 6, rolloff 0.99): `_get_sinc_resample_kernel` builds
 * one windowed-sinc filter per output phase and `_apply_sinc_resample_kernel` runs them as a
 * strided conv1d over the zero-padded waveform.
 *
 * The kernel is built with float32 rounding after every step, as torch does for a float32
 * waveform; each output sample is accumulated in float64 and rounded once to float32.
 * Outputs can be produced for any sub-range, from only the input samples that range needs, which
 * is what lets long files be resampled window by window.
 * @module
 */

const LOWPASS_FILTER_WIDTH = 6;
const ROLLOFF = 0.99;
const f32 = Math.fround;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** A resampler from one integer rate to another. */
export class SincResampler {
  /** Input rate divided by gcd(input, output). */
  readonly origFreq: number;
  /** Output rate divided by gcd(input, output). */
  readonly newFreq: number;
  /** Input samples the filter reaches on each side (`width` in torchaudio). */
  readonly width: number;
  /** [newFreq, 2·width + origFreq] filter taps, one row per output phase. */
  private readonly kernel: Float32Array;
  private readonly taps: number;
  /**
   * Per phase, the taps [first, end) inside the filter's ±6 zero crossings. Taps outside are
   * clamped to the filter's edge, where the Hann window is cos²(π/2) ≈ 2e-15 and the weight below
   * 1e-20; skipping them changes nothing at float32 precision and saves most of the work when the
   * reduced input rate is large (441 taps per phase for 44.1 kHz → 16 kHz, 35 of them inside).
   */
  private readonly tapFirst: Int32Array;
  private readonly tapEnd: Int32Array;

  constructor(inputRate: number, outputRate: number) {
    const divisor = gcd(inputRate, outputRate);
    this.origFreq = inputRate / divisor;
    this.newFreq = outputRate / divisor;
    const baseFreq = Math.min(this.origFreq, this.newFreq) * ROLLOFF;
    this.width = Math.ceil((LOWPASS_FILTER_WIDTH * this.origFreq) / baseFreq);
    this.taps = 2 * this.width + this.origFreq;
    this.tapFirst = new Int32Array(this.newFreq);
    this.tapEnd = new Int32Array(this.newFreq);
    this.kernel = this.buildKernel(baseFreq);
  }

  /** `_get_sinc_resample_kernel` in float32. */
  private buildKernel(baseFreq: number): Float32Array {
    const kernel = new Float32Array(this.newFreq * this.taps);
    const base32 = f32(baseFreq);
    const pi32 = f32(Math.PI);
    const scale32 = f32(baseFreq / this.origFreq);
    for (let phase = 0; phase < this.newFreq; phase++) {
      const shift = f32(-phase / this.newFreq);
      this.tapFirst[phase] = this.taps;
      for (let m = 0; m < this.taps; m++) {
        const idx = f32((m - this.width) / this.origFreq);
        let t = f32(f32(shift + idx) * base32);
        if (Math.abs(t) < LOWPASS_FILTER_WIDTH) {
          this.tapFirst[phase] = Math.min(this.tapFirst[phase]!, m);
          this.tapEnd[phase] = m + 1;
        }
        t = Math.min(Math.max(t, -LOWPASS_FILTER_WIDTH), LOWPASS_FILTER_WIDTH);
        const cosine = f32(Math.cos(f32(f32(f32(t * pi32) / LOWPASS_FILTER_WIDTH) / 2)));
        const window = f32(cosine * cosine);
        t = f32(t * pi32);
        const sinc = t === 0 ? 1 : f32(f32(Math.sin(t)) / t);
        kernel[phase * this.taps + m] = f32(sinc * f32(window * scale32));
      }
    }
    return kernel;
  }

  /** Number of output samples for `inputLength` input samples: `ceil(new · length / orig)`. */
  outputLength(inputLength: number): number {
    return Math.ceil((this.newFreq * inputLength) / this.origFreq);
  }

  /** The input samples [start, end) that outputs [outStart, outEnd) read, within [0, inputLength). */
  inputRange(outStart: number, outEnd: number, inputLength: number): { start: number; end: number } {
    const firstBlock = Math.floor(outStart / this.newFreq);
    const lastBlock = Math.floor((outEnd - 1) / this.newFreq);
    return {
      start: Math.max(firstBlock * this.origFreq - this.width, 0),
      end: Math.min(lastBlock * this.origFreq - this.width + this.taps, inputLength),
    };
  }

  /**
   * Output samples [outStart, outEnd) of resampling a signal of `inputLength` samples, of which
   * `input` holds the ones from `inputOffset` on (at least {@link inputRange}); the signal is zero
   * outside [0, inputLength), as torchaudio's padding makes it.
   */
  resampleRange(input: Float32Array, inputOffset: number, inputLength: number, outStart: number, outEnd: number): Float32Array {
    const out = new Float32Array(outEnd - outStart);
    for (let n = outStart; n < outEnd; n++) {
      const block = Math.floor(n / this.newFreq);
      const phase = n - block * this.newFreq;
      const row = phase * this.taps;
      // output n = Σ_m x[block·orig + m − width] · kernel[phase][m]
      const origin = block * this.origFreq - this.width;
      const mFirst = Math.max(this.tapFirst[phase]!, -origin);
      const mLast = Math.min(this.tapEnd[phase]!, inputLength - origin);
      let acc = 0;
      for (let m = mFirst; m < mLast; m++) acc += input[origin + m - inputOffset]! * this.kernel[row + m]!;
      out[n - outStart] = acc;
    }
    return out;
  }

  /** The whole resampled signal. */
  resample(input: Float32Array): Float32Array {
    return this.resampleRange(input, 0, input.length, 0, this.outputLength(input.length));
  }
}
