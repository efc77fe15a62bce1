import { describe, expect, test } from 'vitest';

import { RealFft } from '../../src/processors/fft.js';

/** Textbook O(n²) DFT of a real signal, bins 0..n/2. */
function naiveDft(x: ArrayLike<number>, n: number): { re: Float64Array; im: Float64Array } {
  const re = new Float64Array(n / 2 + 1);
  const im = new Float64Array(n / 2 + 1);
  for (let k = 0; k <= n / 2; k++) {
    for (let j = 0; j < x.length; j++) {
      re[k] += x[j]! * Math.cos((2 * Math.PI * j * k) / n);
      im[k] -= x[j]! * Math.sin((2 * Math.PI * j * k) / n);
    }
  }
  return { re, im };
}

function randomSignal(length: number, seed: number): Float64Array {
  let state = seed;
  return Float64Array.from({ length }, () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

describe('RealFft', () => {
  test.each([4, 8, 16, 64, 256, 512])('matches a naive DFT for n = %i (max error < 1e-10 of the signal energy scale)', (n) => {
    const x = randomSignal(n, n);
    const fft = new RealFft(n);
    const re = new Float64Array(n / 2 + 1);
    const im = new Float64Array(n / 2 + 1);
    fft.forward(x, re, im);
    const expected = naiveDft(x, n);
    for (let k = 0; k <= n / 2; k++) {
      expect(Math.abs(re[k]! - expected.re[k]!)).toBeLessThan(1e-10 * n);
      expect(Math.abs(im[k]! - expected.im[k]!)).toBeLessThan(1e-10 * n);
    }
  });

  test('zero-pads a shorter input (400 samples into 512, as the fbank does)', () => {
    const x = randomSignal(400, 7);
    const re = new Float64Array(257);
    const im = new Float64Array(257);
    new RealFft(512).forward(x, re, im);
    const expected = naiveDft(x, 512);
    let worst = 0;
    for (let k = 0; k <= 256; k++) worst = Math.max(worst, Math.abs(re[k]! - expected.re[k]!), Math.abs(im[k]! - expected.im[k]!));
    expect(worst).toBeLessThan(1e-9);
  });

  test('a cosine at bin 5 puts n/2 into bin 5 and (numerically) nothing elsewhere', () => {
    const n = 512;
    const x = Float64Array.from({ length: n }, (_, j) => Math.cos((2 * Math.PI * 5 * j) / n));
    const re = new Float64Array(257);
    const im = new Float64Array(257);
    new RealFft(n).forward(x, re, im);
    expect(re[5]).toBeCloseTo(n / 2, 9);
    for (let k = 0; k <= 256; k++) if (k !== 5) expect(Math.hypot(re[k]!, im[k]!)).toBeLessThan(1e-9);
  });

  test('rejects sizes that are not powers of two', () => {
    expect(() => new RealFft(400)).toThrow(RangeError);
    expect(() => new RealFft(2)).toThrow(RangeError);
  });
});
