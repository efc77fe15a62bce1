import { describe, expect, test } from 'vitest';

import { VideoLlamaError } from '../../src/errors.js';
import { VIDEO_LLAMA_PREPROCESSING } from '../../src/processors/constants.js';
import { uniformFrameIndices } from '../../src/processors/frame-sampling.js';
import { CLIP_MEAN, CLIP_STD, normalizeFrames } from '../../src/processors/normalize.js';
import { BICUBIC, resizeRgb } from '../../src/processors/resize.js';
import { ImageProcessor, VideoProcessor } from '../../src/processors/video-processor.js';

describe('uniformFrameIndices (np.arange(0, vlen, vlen / n).astype(int))', () => {
  test('100 frames, 8 wanted: every 12.5th frame truncated', () => {
    expect(uniformFrameIndices(100, 8)).toEqual([0, 12, 25, 37, 50, 62, 75, 87]);
  });

  test('the float arange quirk keeps a real extra frame (vlen 61, n 7 → 8 indices)', () => {
    // 61 / (61 / 7) = 7.000000000000001 in float64, so arange has 8 elements; the 8th is 7 · 8.714… = 60.99…
    expect(61 / (61 / 7)).toBeGreaterThan(7);
    const indices = uniformFrameIndices(61, 7);
    expect(indices).toHaveLength(8);
    expect(indices.at(-1)).toBe(60);
  });

  test('an extra index equal to vlen (decord would fail: out of bounds) is dropped (vlen 17, n 7)', () => {
    expect(Math.trunc(7 * (17 / 7))).toBe(17);
    expect(uniformFrameIndices(17, 7)).toEqual([0, 2, 4, 7, 9, 12, 14]);
  });

  test('fewer frames than wanted repeats frames, as the original does', () => {
    expect(uniformFrameIndices(5, 8)).toEqual([0, 0, 1, 1, 2, 3, 3, 4]);
  });

  test('exactly n ascending in-range indices for n ∈ {2, 5, 8, 16, 32} and vlen ≤ 3000', () => {
    for (const n of [2, 5, 8, 16, 32]) {
      for (let vlen = 1; vlen <= 3000; vlen++) {
        const indices = uniformFrameIndices(vlen, n);
        expect(indices.length).toBe(n);
        expect(indices.every((index, i) => index < vlen && (i === 0 || index >= indices[i - 1]!))).toBe(true);
      }
    }
  });
});

describe('normalizeFrames', () => {
  test('maps 0 and 255 to (0 − mean)/std and (1 − mean)/std in float32, HWC → CHW', () => {
    const size = 2;
    const rgb = new Uint8Array(size * size * 3);
    rgb.set([0, 255, 0], 0); // pixel (0,0): R=0, G=255, B=0
    rgb.set([255, 0, 255], 9); // pixel (1,1)
    const out = normalizeFrames(rgb, 1, size, CLIP_MEAN, CLIP_STD);
    const expected = (value: number, c: number): number => Math.fround((value - Math.fround(CLIP_MEAN[c]!)) / Math.fround(CLIP_STD[c]!));
    expect(out[0]).toBeCloseTo(expected(0, 0), 6); // R plane, pixel 0
    expect(out[4]).toBeCloseTo(expected(1, 1), 6); // G plane, pixel 0
    expect(out[3]).toBeCloseTo(expected(1, 0), 6); // R plane, pixel 3
    expect(out[11]).toBeCloseTo(expected(1, 2), 6); // B plane, pixel 3
    expect(out[9]).toBeCloseTo(expected(0, 2), 6); // B plane, pixel 1 (value 0)
  });

  test('validates its arguments', () => {
    const rgb = new Uint8Array(12);
    expect(() => normalizeFrames(rgb, 1, 3, CLIP_MEAN, CLIP_STD)).toThrow(/Expected a Uint8Array of frames \* size \* size \* 3 = 27 bytes for rgb/);
    expect(() => normalizeFrames(rgb, 0, 2, CLIP_MEAN, CLIP_STD)).toThrow(/for frames but received 0/);
    expect(() => normalizeFrames(rgb, 1, 2, [0.5, 0.5], CLIP_STD)).toThrow(VideoLlamaError);
    expect(() => normalizeFrames(rgb, 1, 2, CLIP_MEAN, [1, 0, 1])).toThrow(/3 positive numbers/);
  });
});

/** Pillow's bicubic kernel written out independently (a = −0.5). */
function cubic(x: number): number {
  const d = Math.abs(x);
  if (d < 1) return 1.5 * d ** 3 - 2.5 * d ** 2 + 1;
  if (d < 2) return -0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2;
  return 0;
}

describe('resizeRgb with BICUBIC (Pillow Image.resize)', () => {
  test('a constant image stays exactly constant when shrinking or enlarging', () => {
    for (const [w, h] of [[448, 448], [320, 240], [100, 50], [37, 500]] as const) {
      const rgb = new Uint8Array(w * h * 3);
      for (let i = 0; i < rgb.length; i += 3) rgb.set([17, 128, 250], i);
      const out = resizeRgb(rgb, w, h, 224, 224, BICUBIC);
      let wrong = 0;
      for (let i = 0; i < out.length; i += 3) if (out[i] !== 17 || out[i + 1] !== 128 || out[i + 2] !== 250) wrong++;
      expect(wrong).toBe(0);
    }
  });

  test('448 → 224 equals the antialiased cubic filter (support 2·2 input pixels) within 1 level', () => {
    // columns vary, rows do not: the vertical pass must leave values unchanged, the horizontal
    // pass must be Σ w_j·p_j with w_j = cubic((j + 0.5 − centre)/2) over the taps inside the image, normalised
    const width = 448;
    const height = 448;
    const column = Uint8Array.from({ length: width }, (_, x) => (x * 37 + ((x * x) % 23) * 5) % 256);
    const rgb = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.fill(column[x]!, (y * width + x) * 3, (y * width + x) * 3 + 3);
    const out = resizeRgb(rgb, width, height, 224, 224, BICUBIC);
    let exact = 0;
    for (let xx = 0; xx < 224; xx++) {
      const centre = (xx + 0.5) * 2;
      let sum = 0;
      let weights = 0;
      for (let j = 0; j < width; j++) {
        const w = cubic((j + 0.5 - centre) / 2);
        sum += w * column[j]!;
        weights += w;
      }
      const expected = Math.min(255, Math.max(0, Math.round(sum / weights)));
      for (const y of [0, 100, 223]) {
        const got = out[(y * 224 + xx) * 3 + 1]!;
        expect(Math.abs(got - expected)).toBeLessThanOrEqual(1);
        if (got === expected && y === 0) exact++;
      }
    }
    expect(exact).toBeGreaterThanOrEqual(220); // fixed-point rounding differs only at near-ties
  });

  test('same size returns an equal copy', () => {
    const rgb = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => i * 5);
    const out = resizeRgb(rgb, 4, 4, 4, 4, BICUBIC);
    expect(out).toEqual(rgb);
    expect(out).not.toBe(rgb);
  });
});

describe('processors built from a projector\'s metadata', () => {
  const info = { ...VIDEO_LLAMA_PREPROCESSING, imageSize: 2, imageMean: [0, 0, 0], imageStd: [1, 1, 1], maxFrames: 4, maxClips: 8 };

  test('the image processor takes the size, mean and std of the projector, not the defaults', async () => {
    const image = { rgb: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]), width: 2, height: 2, frames: 1 };
    const { tensor, shape } = await new ImageProcessor(info).process(image);
    expect(shape).toEqual([1, 3, 2, 2]);
    expect(Array.from(tensor)).toEqual([1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1]);
  });

  test('the video processor bounds the frames by the projector\'s maxFrames', () => {
    expect(new VideoProcessor(info).frames).toBe(4); // the default 8, capped
    expect(() => new VideoProcessor(info, 5)).toThrow(/an integer from 1 to 4 for options.frames but received 5/);
    const video = new VideoProcessor(info, 2);
    expect(video.sample(10)).toEqual({ indices: [0, 5], unique: [0, 5] });
    expect(video.toTensor(new Uint8Array(2 * 2 * 2 * 3).fill(51), 2).tensor.every((v) => Math.abs(v - 0.2) < 1e-7)).toBe(true);
  });
});
