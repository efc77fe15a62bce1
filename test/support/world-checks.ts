/**
 * Independent readings of rendered or decoded world media, for the tests: objects found as
 * connected bright regions (not from the scene), their colour named from the pixels, tone
 * frequencies from zero crossings and beeps from energy bursts.
 */
import type { Colour } from '../../src/world/scene.js';

/** One bright region of a frame. */
export interface FoundObject {
  area: number;
  /** Centroid in pixels. */
  x: number;
  y: number;
  /** Mean colour of its pixels. */
  rgb: [number, number, number];
}

/**
 * Connected regions (4-neighbour) of pixels whose brightest channel is ≥ 150: every object colour
 * has a channel ≥ 200 and every background channel is ≤ 85 (+ noise), so this separates them.
 * Regions smaller than `minArea` pixels (compression speckle) are dropped.
 */
export function findObjects(rgb: Uint8Array, width: number, height: number, minArea = 12): FoundObject[] {
  const bright = new Uint8Array(width * height);
  for (let p = 0; p < bright.length; p++) bright[p] = Math.max(rgb[3 * p]!, rgb[3 * p + 1]!, rgb[3 * p + 2]!) >= 150 ? 1 : 0;
  const found: FoundObject[] = [];
  const stack: number[] = [];
  for (let seed = 0; seed < bright.length; seed++) {
    if (bright[seed] !== 1) continue;
    bright[seed] = 2;
    stack.push(seed);
    let area = 0; let sx = 0; let sy = 0; const sum = [0, 0, 0];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % width; const y = (p - x) / width;
      area++; sx += x; sy += y;
      for (let c = 0; c < 3; c++) sum[c]! += rgb[3 * p + c]!;
      for (const q of [x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1, y > 0 ? p - width : -1, y < height - 1 ? p + width : -1]) {
        if (q >= 0 && bright[q] === 1) { bright[q] = 2; stack.push(q); }
      }
    }
    if (area >= minArea) found.push({ area, x: sx / area + 0.5, y: sy / area + 0.5, rgb: sum.map((s) => s / area) as [number, number, number] });
  }
  return found;
}

/** The world colour an RGB value looks like. */
export function colourName([r, g, b]: readonly number[]): Colour | 'unknown' {
  if (r! > 170 && g! > 170 && b! > 170) return 'white';
  if (r! > 150 && g! > 150 && b! < 130) return 'yellow';
  if (r! > 150 && g! < 110 && b! < 110) return 'red';
  if (g! > 130 && r! < 120 && b! < 130) return 'green';
  if (b! > 150 && r! < 110 && g! < 150) return 'blue';
  return 'unknown';
}

/** A sounding stretch of audio, seconds. */
export interface Burst {
  start: number;
  end: number;
}

/**
 * Stretches where the RMS of 10 ms windows is above `threshold` (world tones have an RMS ≥ 0.17,
 * world noise ≤ 0.006), joining stretches less than 40 ms apart and dropping those under 40 ms.
 */
export function findBursts(samples: Float32Array, sampleRate: number, threshold = 0.05): Burst[] {
  const window = Math.round(sampleRate * 0.01);
  const bursts: Burst[] = [];
  for (let w = 0; w + window <= samples.length; w += window) {
    let energy = 0;
    for (let i = w; i < w + window; i++) energy += samples[i]! * samples[i]!;
    if (Math.sqrt(energy / window) < threshold) continue;
    const start = w / sampleRate; const end = (w + window) / sampleRate;
    const last = bursts.at(-1);
    if (last && start - last.end < 0.04) last.end = end;
    else bursts.push({ start, end });
  }
  return bursts.filter((burst) => burst.end - burst.start >= 0.04);
}

/** Frequency in Hz of a sine between `start` and `end` seconds, from its rising zero crossings. */
export function zeroCrossingFrequency(samples: Float32Array, sampleRate: number, start: number, end: number): number {
  const first = Math.round(start * sampleRate);
  const last = Math.min(samples.length, Math.round(end * sampleRate));
  const crossings: number[] = [];
  for (let i = first + 1; i < last; i++) {
    const a = samples[i - 1]!; const b = samples[i]!;
    if (a < 0 && b >= 0) crossings.push(i - 1 + a / (a - b)); // interpolated crossing time, in samples
  }
  return (crossings.length - 1) / ((crossings.at(-1)! - crossings[0]!) / sampleRate);
}

/** The mean centroid of the objects of a frame (all objects of a scene move together). */
export function meanCentroid(objects: readonly FoundObject[]): { x: number; y: number } {
  return {
    x: objects.reduce((sum, o) => sum + o.x, 0) / objects.length,
    y: objects.reduce((sum, o) => sum + o.y, 0) / objects.length,
  };
}
