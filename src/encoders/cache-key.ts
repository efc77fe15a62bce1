/**
 * What an encode's cache key is made of (docs/caching.md): the input's content and the options
 * that change the result, with their defaults resolved so that `frames: 8` and the default 8
 * are one entry. Options that only refuse inputs (`limitInputPixels`) or fetch them
 * (`allowHttp`, `signal`) are left out.
 * @internal
 * @module
 */
import { isMediaInput, localMediaInput, type LocalMediaInput } from '../media/input.js';
import { AudioProcessor } from '../processors/audio-processor.js';
import type { PreprocessingInfo } from '../processors/constants.js';
import { isTensorInput } from '../processors/tensor.js';
import { isRgbFrames, VideoProcessor } from '../processors/video-processor.js';
import type { MediaRouteOptions } from './inputs.js';

/** The parts of a key an input gives, and the input to encode (a stream or URL read into bytes or a path). @internal */
export interface CacheKeyInput {
  /** The input handed to the encoder: the caller's, except that media is a path or bytes. */
  local: unknown;
  /** What is hashed: a file path (its content is hashed), or bytes. */
  bytes: LocalMediaInput | ArrayBufferView;
  /** The shape of decoded pixels, PCM or a tensor, hashed with its bytes. */
  shape?: readonly number[];
  /** The options that change the result, defaults resolved. */
  options: Record<string, unknown>;
}

/**
 * The key parts of one encode of `input` (reads a stream, Blob or URL input once); undefined for
 * an input no encoder takes (the encode then fails with its typed error, uncached).
 * @internal
 */
export async function cacheKeyInput(operation: 'video' | 'image' | 'audio' | 'media', input: unknown,
  info: PreprocessingInfo & { hasAudio: boolean; hasVision: boolean }, options: MediaRouteOptions): Promise<CacheKeyInput | undefined> {
  const frames = (): number => new VideoProcessor(info, options.frames).frames;
  const clips = (): number => new AudioProcessor(info, options.clips).clips;
  // left out at its default, so that the keys of files with one audio stream stay as they were
  const audioStream = options.audioStream ? { audioStream: options.audioStream } : {};
  if (isTensorInput(input)) return { local: input, bytes: input.tensor, shape: input.shape, options: {} };
  if (isRgbFrames(input)) {
    const shape = [input.frames, input.height, input.width];
    return { local: input, bytes: input.rgb, shape, options: operation === 'video' ? { frames: frames(), fps: input.fps ?? 0 } : {} };
  }
  if (input instanceof Float32Array) {
    return { local: input, bytes: input, shape: [input.length], options: { clips: clips(), sampleRate: options.sampleRate ?? 16000 } };
  }
  if (!isMediaInput(input)) return undefined;
  const local = await localMediaInput(input, options);
  const byOperation: Record<typeof operation, () => Record<string, unknown>> = {
    video: () => ({ frames: frames() }),
    image: () => ({}),
    audio: () => ({ clips: clips(), ...audioStream }),
    media: () => {
      const audio = info.hasAudio && options.audio !== false;
      return { audio, frames: info.hasVision ? frames() : undefined, clips: audio ? clips() : undefined, ...(audio ? audioStream : {}) };
    },
  };
  return { local, bytes: local, options: byOperation[operation]() };
}
