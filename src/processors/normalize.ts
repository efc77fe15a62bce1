/**
 * uint8 RGB frames to the normalised float tensor the vision encoder reads, as torchvision does it
 * in float32: `x = u8 / 255`, then `(x - mean) / std` per channel (ToTensorVideo + NormalizeVideo
 * for videos, ToTensor + Normalize for images: the same arithmetic).
 * @module
 */
import { invalidArgument } from '../errors.js';
import { VIDEO_LLAMA_PREPROCESSING } from './constants.js';

/** CLIP's RGB mean, the default of BLIP-2 / Video-LLaMA processors. */
export const CLIP_MEAN: readonly number[] = VIDEO_LLAMA_PREPROCESSING.imageMean;
/** CLIP's RGB standard deviation, the default of BLIP-2 / Video-LLaMA processors. */
export const CLIP_STD: readonly number[] = VIDEO_LLAMA_PREPROCESSING.imageStd;

/**
 * Normalises `frames` square RGB frames.
 *
 * @param rgb Frames in T,H,W,C order (`frames * size * size * 3` bytes), e.g. from `decodeVideoFrames`.
 * @param mean Per-channel mean (3 numbers), default in Video-LLaMA {@link CLIP_MEAN}.
 * @param std Per-channel standard deviation (3 positive numbers), default {@link CLIP_STD}.
 * @returns Float32Array in [T, 3, size, size] C order (ggml: [size, size, 3, T]).
 * @example
 * ```ts
 * const tensor = normalizeFrames(video.rgb, video.frames, 224, CLIP_MEAN, CLIP_STD);
 * ```
 */
export function normalizeFrames(rgb: Uint8Array, frames: number, size: number,
  mean: readonly number[], std: readonly number[]): Float32Array {
  validatePositiveInteger(frames, 'frames');
  validatePositiveInteger(size, 'size');
  validateChannelTriple(mean, 'mean', false);
  validateChannelTriple(std, 'std', true);
  const plane = size * size;
  if (!(rgb instanceof Uint8Array) || rgb.length !== frames * plane * 3) {
    throw invalidArgument('rgb', `a Uint8Array of frames * size * size * 3 = ${frames * plane * 3} bytes`, rgb);
  }
  // float32 constants and float32 rounding after each operation, like torch on float32 tensors
  const mean32 = mean.map(Math.fround);
  const std32 = std.map(Math.fround);
  const out = new Float32Array(rgb.length);
  for (let t = 0; t < frames; t++) {
    const src = t * plane * 3;
    for (let c = 0; c < 3; c++) {
      const dst = (t * 3 + c) * plane;
      for (let p = 0; p < plane; p++) {
        const x = Math.fround(rgb[src + p * 3 + c]! / 255);
        out[dst + p] = Math.fround(x - mean32[c]!) / std32[c]!;
      }
    }
  }
  return out;
}

/** Throws `INVALID_ARGUMENT` unless `value` is an integer ≥ 1. @internal */
export function validatePositiveInteger(value: unknown, name: string): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 1) throw invalidArgument(name, 'an integer ≥ 1', value);
}

/** Throws `INVALID_ARGUMENT` unless `value` is 3 finite numbers (positive when `positive`). @internal */
export function validateChannelTriple(value: unknown, name: string, positive: boolean): asserts value is readonly number[] {
  const ok = Array.isArray(value) && value.length === 3
    && value.every((v) => typeof v === 'number' && Number.isFinite(v) && (!positive || v > 0));
  if (!ok) throw invalidArgument(name, `an array of 3 ${positive ? 'positive' : 'finite'} numbers (R, G, B)`, value);
}
