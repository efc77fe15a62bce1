/**
 * The processors' output and the encoders' input: a float tensor with its shape.
 * @module
 */
import { invalidArgument } from '../errors.js';

/**
 * A preprocessed input: a float tensor in C order with its shape, already resized and
 * normalised (see {@link ProjectorInfo}). The tensor is read in place while the encode runs:
 * do not modify it until the promise settles. A wrong shape or length is INVALID_ARGUMENT.
 *
 * @example
 * ```ts
 * const { imageSize: s } = projector.info;
 * const frames = new Float32Array(8 * 3 * s * s); // fill with (x / 255 - imageMean) / imageStd per channel
 * const video = await projector.encodeVideo({ tensor: frames, shape: [8, 3, s, s] });
 * ```
 */
export interface TensorInput {
  /** The values, C order (last dimension contiguous). */
  tensor: Float32Array;
  /** Its dimensions, outermost first (PyTorch order). */
  shape: readonly number[];
}

/** Whether an encoder input is a {@link TensorInput} (rather than a file, bytes, frames or PCM). */
export function isTensorInput(input: unknown): input is TensorInput {
  return typeof input === 'object' && input !== null && 'tensor' in input && 'shape' in input;
}

/** A frame or clip count: `value` if it is an integer from 1 to `max`, else the fallback capped at `max`. */
export function checkCount(value: number | undefined, name: string, max: number, fallback: number): number {
  const count = value === undefined ? Math.min(fallback, max) : value;
  if (!Number.isInteger(count) || count < 1 || count > max) throw invalidArgument(name, `an integer from 1 to ${max}`, value);
  return count;
}
