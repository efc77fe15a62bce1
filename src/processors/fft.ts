/**
 * A radix-2 FFT of real input, for the 512-point spectra of the fbank.
 * @module
 */

/**
 * Forward DFT of real signals of a fixed power-of-two length n:
 * X[k] = Σ_j x[j]·e^(−2πi·jk/n) for k = 0..n/2 (the non-redundant half, like `torch.fft.rfft`).
 *
 * The n real samples are packed as n/2 complex ones (even samples real, odd imaginary), transformed
 * by an iterative radix-2 complex FFT and then split into the spectrum of the real signal.
 *
 * @example
 * ```ts
 * const fft = new RealFft(512);
 * const re = new Float64Array(257), im = new Float64Array(257);
 * fft.forward(frame, re, im);
 * ```
 */
export class RealFft {
  readonly size: number;
  private readonly half: number;
  private readonly bitReversed: Uint32Array;
  /** cos/sin of −2πk/n for k < n/2: twiddles of the half-size FFT (even k) and of the split. */
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly zr: Float64Array;
  private readonly zi: Float64Array;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 4 || (size & (size - 1)) !== 0) {
      throw new RangeError(`RealFft size must be a power of two ≥ 4, got ${size}`);
    }
    this.size = size;
    this.half = size / 2;
    this.cos = new Float64Array(this.half);
    this.sin = new Float64Array(this.half);
    for (let k = 0; k < this.half; k++) {
      this.cos[k] = Math.cos((-2 * Math.PI * k) / size);
      this.sin[k] = Math.sin((-2 * Math.PI * k) / size);
    }
    const bits = Math.log2(this.half);
    this.bitReversed = new Uint32Array(this.half);
    for (let i = 0; i < this.half; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.bitReversed[i] = r;
    }
    this.zr = new Float64Array(this.half);
    this.zi = new Float64Array(this.half);
  }

  /**
   * Transforms `input` (length n; shorter inputs are zero-padded) into `re`/`im` (length ≥ n/2 + 1).
   */
  forward(input: ArrayLike<number>, re: Float64Array, im: Float64Array): void {
    const { half, zr, zi } = this;
    for (let j = 0; j < half; j++) {
      const target = this.bitReversed[j]!;
      zr[target] = 2 * j < input.length ? input[2 * j]! : 0;
      zi[target] = 2 * j + 1 < input.length ? input[2 * j + 1]! : 0;
    }
    this.complexFftInPlace();
    // Z[k] = E[k] + i·O[k] with E, O the spectra of the even and odd samples;
    // X[k] = E[k] + W^k·O[k], W = e^(−2πi/n).
    for (let k = 0; k <= half; k++) {
      const a = k % half;
      const b = (half - k) % half;
      const er = (zr[a]! + zr[b]!) / 2;
      const ei = (zi[a]! - zi[b]!) / 2;
      const or = (zi[a]! + zi[b]!) / 2;
      const oi = -(zr[a]! - zr[b]!) / 2;
      const wr = k === half ? -1 : this.cos[k]!;
      const wi = k === half ? 0 : this.sin[k]!;
      re[k] = er + wr * or - wi * oi;
      im[k] = ei + wr * oi + wi * or;
    }
  }

  /** Iterative decimation-in-time FFT of the bit-reversed (zr, zi), size n/2. */
  private complexFftInPlace(): void {
    const { half, zr, zi } = this;
    for (let span = 1; span < half; span *= 2) {
      // twiddle e^(−2πi·j/(2·span)) = table entry j·(n / (2·span)) of e^(−2πi·k/n)
      const stride = this.size / (2 * span);
      for (let start = 0; start < half; start += 2 * span) {
        for (let j = 0; j < span; j++) {
          const wr = this.cos[j * stride]!;
          const wi = this.sin[j * stride]!;
          const p = start + j;
          const q = p + span;
          const tr = zr[q]! * wr - zi[q]! * wi;
          const ti = zr[q]! * wi + zi[q]! * wr;
          zr[q] = zr[p]! - tr;
          zi[q] = zi[p]! - ti;
          zr[p] = zr[p]! + tr;
          zi[p] = zi[p]! + ti;
        }
      }
    }
  }
}
