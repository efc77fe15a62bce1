/**
 * Separable image resampling with Pillow's algorithm (libImaging/Resample.c): for each output
 * pixel a filter centred on it in input coordinates, with its support widened by the scale factor
 * when shrinking (antialiasing), coefficients normalised to sum 1 and turned into 22-bit fixed
 * point, a horizontal pass first (rounded and clipped to uint8) and then a vertical pass.
 * @module
 */
import { runSliced, runToEnd, type Sliced } from './slices.js';

/** A resampling filter: a weight function of the distance in (scaled) input pixels. */
export interface ResampleFilter {
  /** Radius of the filter at scale 1, in input pixels. */
  readonly support: number;
  readonly weight: (x: number) => number;
}

/** Pillow's `Image.BICUBIC`: the cubic convolution kernel with a = -0.5. */
export const BICUBIC: ResampleFilter = {
  support: 2,
  weight(x) {
    const a = -0.5;
    const d = Math.abs(x);
    if (d < 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
    if (d < 2) return (((d - 5) * d + 8) * d - 4) * a;
    return 0;
  },
};

/**
 * The triangle filter (Pillow's `Image.BILINEAR`). Used to stand in for swscale's bilinear scaler
 * on already-decoded RGB frames; swscale's own fixed-point arithmetic differs by a few levels.
 */
export const BILINEAR: ResampleFilter = {
  support: 1,
  weight(x) {
    const d = Math.abs(x);
    return d < 1 ? 1 - d : 0;
  },
};

/** Fixed-point precision of the coefficients for 8-bit images (Resample.c PRECISION_BITS). */
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;

/** Per output pixel: the first input pixel, the tap count, and fixed-point weights (ksize per row). */
interface Coefficients {
  first: Int32Array;
  count: Int32Array;
  ksize: number;
  weights: Int32Array;
}

/** Resample.c precompute_coeffs + normalize_coeffs_8bpc for the whole input range. */
function precomputeCoefficients(inSize: number, outSize: number, filter: ResampleFilter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const row = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      row[x] = filter.weight((x + xmin - center + 0.5) / filterScale);
      sum += row[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? row[x]! / sum : row[x]!;
      // C's (int) cast truncates toward zero after adding ±0.5: round half away from zero
      weights[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { first, count, ksize, weights };
}

/** Resample.c clip8: fixed-point accumulator to uint8. */
function clip8(accumulator: number): number {
  if (accumulator >= ONE * 256) return 255;
  if (accumulator <= 0) return 0;
  return Math.floor(accumulator / ONE);
}

/**
 * Resizes an interleaved RGB image (H,W,3 bytes) to `outWidth × outHeight` exactly like Pillow's
 * `Image.resize((outWidth, outHeight), filter)` on an "RGB" image (no reducing_gap, full box).
 * A pass whose size does not change is skipped, as in Pillow; same size returns a copy.
 *
 * @example
 * ```ts
 * const small = resizeRgb(rgb, 640, 480, 224, 224, BICUBIC);
 * ```
 */
export function resizeRgb(rgb: Uint8Array, width: number, height: number,
  outWidth: number, outHeight: number, filter: ResampleFilter): Uint8Array {
  return runToEnd(resizeRgbSteps(rgb, width, height, outWidth, outHeight, filter));
}

/** {@link resizeRgb} in slices: the event loop runs between rows (see {@link runSliced}). */
export function resizeRgbSliced(rgb: Uint8Array, width: number, height: number,
  outWidth: number, outHeight: number, filter: ResampleFilter): Promise<Uint8Array> {
  return runSliced(resizeRgbSteps(rgb, width, height, outWidth, outHeight, filter));
}

function* resizeRgbSteps(rgb: Uint8Array, width: number, height: number,
  outWidth: number, outHeight: number, filter: ResampleFilter): Sliced<Uint8Array> {
  if (outWidth === width && outHeight === height) return rgb.slice();
  // Each pass writes a new buffer: the input is only read (copying a big picture costs ~1 s).
  let image = rgb;
  const vertical = precomputeCoefficients(height, outHeight, filter);
  if (outWidth !== width) {
    // Only the rows the vertical pass reads are resampled horizontally (Pillow's ybox).
    const firstRow = outHeight !== height ? vertical.first[0]! : 0;
    const lastRow = outHeight !== height ? vertical.first[outHeight - 1]! + vertical.count[outHeight - 1]! : height;
    image = yield* resampleHorizontal(image, width, firstRow, lastRow, outWidth, precomputeCoefficients(width, outWidth, filter));
    if (firstRow !== 0) for (let i = 0; i < outHeight; i++) vertical.first[i] -= firstRow;
  }
  if (outHeight !== height) image = yield* resampleVertical(image, outWidth, outHeight, vertical);
  return image;
}

function* resampleHorizontal(src: Uint8Array, width: number, firstRow: number, lastRow: number,
  outWidth: number, k: Coefficients): Sliced<Uint8Array> {
  const out = new Uint8Array((lastRow - firstRow) * outWidth * 3);
  for (let y = firstRow; y < lastRow; y++) {
    horizontalRow(src, y * width * 3, out, (y - firstRow) * outWidth * 3, outWidth, k);
    yield;
  }
  return out;
}

// The per-row loops live in plain functions: V8 optimizes those, not a loop inside a generator.
function horizontalRow(src: Uint8Array, srcRow: number, out: Uint8Array, dstRow: number, outWidth: number, k: Coefficients): void {
  for (let xx = 0; xx < outWidth; xx++) {
    const base = xx * k.ksize;
    for (let c = 0; c < 3; c++) {
      let acc = ONE / 2;
      for (let x = 0; x < k.count[xx]!; x++) acc += src[srcRow + (k.first[xx]! + x) * 3 + c]! * k.weights[base + x]!;
      out[dstRow + xx * 3 + c] = clip8(acc);
    }
  }
}

function* resampleVertical(src: Uint8Array, width: number, outHeight: number, k: Coefficients): Sliced<Uint8Array> {
  const rowBytes = width * 3;
  const out = new Uint8Array(outHeight * rowBytes);
  for (let yy = 0; yy < outHeight; yy++) {
    verticalRow(src, rowBytes, out, yy, k);
    yield;
  }
  return out;
}

function verticalRow(src: Uint8Array, rowBytes: number, out: Uint8Array, yy: number, k: Coefficients): void {
  const base = yy * k.ksize;
  for (let i = 0; i < rowBytes; i++) {
    let acc = ONE / 2;
    for (let y = 0; y < k.count[yy]!; y++) acc += src[(k.first[yy]! + y) * rowBytes + i]! * k.weights[base + y]!;
    out[yy * rowBytes + i] = clip8(acc);
  }
}
