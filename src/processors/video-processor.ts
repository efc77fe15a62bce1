/**
 * The vision encoder's input from decoded pictures: Video-LLaMA's `load_video` frame sampling and
 * `AlproVideoEvalProcessor` for videos, BLIP-2's `Blip2ImageEvalProcessor` for images, with the
 * sizes and normalisation of a projector file.
 * @module
 */
import { invalidArgument } from '../errors.js';
import type { RgbFrames } from '../media/source.js';
import { DEFAULT_FRAMES, type PreprocessingInfo } from './constants.js';
import { uniformFrameIndices } from './frame-sampling.js';
import { normalizeFrames, validatePositiveInteger } from './normalize.js';
import { BICUBIC, BILINEAR, resizeRgbSliced } from './resize.js';
import { checkCount, type TensorInput } from './tensor.js';

/** Which frames of a video are used: `indices` in sampling order (may repeat), `unique` ascending. */
export interface FrameSample {
  indices: number[];
  unique: number[];
}

/** Samples, resizes and normalises video frames for one projector. */
export class VideoProcessor {
  /** Frames asked for (the sampling may give one more, see {@link uniformFrameIndices}). */
  readonly frames: number;

  /**
   * @param frames - frames to sample; default 8 (or the projector's `maxFrames` if smaller); an
   *   integer from 1 to `maxFrames`, else INVALID_ARGUMENT.
   */
  constructor(private readonly info: PreprocessingInfo, frames?: number) {
    this.frames = checkCount(frames, 'options.frames', info.maxFrames, DEFAULT_FRAMES);
  }

  /** Side of the frames handed to {@link VideoProcessor.toTensor}. */
  get size(): number {
    return this.info.imageSize;
  }

  /** The frames `load_video` takes from a video of `totalFrames` frames. */
  sample(totalFrames: number): FrameSample {
    const indices = uniformFrameIndices(totalFrames, this.frames);
    // The original's sampling can yield one frame more than asked; the frame position
    // embedding bounds what the model accepts.
    if (indices.length > this.info.maxFrames) {
      throw invalidArgument('options.frames', `a count whose sampling gives at most ${this.info.maxFrames} frames`, this.frames);
    }
    return { indices, unique: [...new Set(indices)] };
  }

  /** The sampled frames in sampling order from the decoded `unique` ones (size × size each). */
  gather(decoded: Uint8Array, sample: FrameSample): Uint8Array {
    const frameBytes = this.size * this.size * 3;
    const out = new Uint8Array(sample.indices.length * frameBytes);
    sample.indices.forEach((index, t) => {
      const source = sample.unique.indexOf(index) * frameBytes;
      out.set(decoded.subarray(source, source + frameBytes), t * frameBytes);
    });
    return out;
  }

  /**
   * The sampled frames of already-decoded frames, resized to size × size with a triangle
   * (bilinear) filter: swscale's bilinear scaler up to fixed-point rounding (a few levels at most).
   * Resizes in slices: the event loop is never held for long.
   */
  async sampleRgbFrames(input: RgbFrames): Promise<{ rgb: Uint8Array; indices: number[] }> {
    validateRgbFrames(input, 'input');
    const { indices } = this.sample(input.frames);
    const size = this.size;
    const sourceBytes = input.width * input.height * 3;
    const rgb = new Uint8Array(indices.length * size * size * 3);
    for (const [t, index] of indices.entries()) {
      const frame = input.rgb.subarray(index * sourceBytes, (index + 1) * sourceBytes);
      const resized = input.width === size && input.height === size
        ? frame
        : await resizeRgbSliced(frame, input.width, input.height, size, size, BILINEAR);
      rgb.set(resized, t * size * size * 3);
    }
    return { rgb, indices };
  }

  /** T size × size frames (T,H,W,C) → the normalised tensor [T, 3, S, S]. */
  toTensor(rgb: Uint8Array, frames: number): TensorInput {
    const size = this.size;
    return { tensor: normalizeFrames(rgb, frames, size, this.info.imageMean, this.info.imageStd), shape: [frames, 3, size, size] };
  }

  /**
   * `load_video`'s message about the sampled frames, which the original puts after a video's
   * placeholder: "The video contains 8 frames sampled at 0.0, 0.5, … seconds. ".
   */
  describe(indices: readonly number[], fps: number): string | undefined {
    if (!(fps > 0)) return undefined;
    const seconds = indices.map((index) => (index / fps).toFixed(1)).join(', ');
    return `The video contains ${indices.length} frames sampled at ${seconds} seconds. `;
  }
}

/**
 * An image for the vision encoder, like BLIP-2's `Blip2ImageEvalProcessor` on
 * `Image.open(path).convert("RGB")`: resize to size × size with Pillow's bicubic filter (aspect
 * ratio not kept), `/255`, `(x − mean) / std`.
 */
export class ImageProcessor {
  constructor(private readonly info: Pick<PreprocessingInfo, 'imageSize' | 'imageMean' | 'imageStd'>) {}

  /** One RGB picture (any size) → the tensor [1, 3, S, S], resized in slices (the event loop keeps running). */
  async process(image: RgbFrames): Promise<TensorInput> {
    validateRgbFrames(image, 'input');
    if (image.frames !== 1) throw invalidArgument('input.frames', '1 (a single image)', image.frames);
    const size = this.info.imageSize;
    const resized = image.width === size && image.height === size
      ? image.rgb
      : await resizeRgbSliced(image.rgb, image.width, image.height, size, size, BICUBIC);
    return { tensor: normalizeFrames(resized, 1, size, this.info.imageMean, this.info.imageStd), shape: [1, 3, size, size] };
  }
}

/** Whether an input is decoded {@link RgbFrames} (rather than a path or file bytes). */
export function isRgbFrames(input: unknown): input is RgbFrames {
  return typeof input === 'object' && input !== null && !(input instanceof Uint8Array) && 'rgb' in input;
}

function validateRgbFrames(input: RgbFrames, name: string): void {
  validatePositiveInteger(input.width, `${name}.width`);
  validatePositiveInteger(input.height, `${name}.height`);
  validatePositiveInteger(input.frames, `${name}.frames`);
  const bytes = input.frames * input.width * input.height * 3;
  if (!(input.rgb instanceof Uint8Array) || input.rgb.length !== bytes) {
    throw invalidArgument(`${name}.rgb`, `a Uint8Array of frames × height × width × 3 = ${bytes} bytes`, input.rgb);
  }
}
