/**
 * Video-LLaMA's preprocessing constants, in one place. A projector file states its own values
 * (`vl.*` metadata, read into {@link ProjectorInfo}) and the encoders' processors take them from
 * there; these are the defaults of the standalone helpers and what `video-llama convert` writes.
 * @module
 */

/** The preprocessing constants of a projector: the matching fields of {@link ProjectorInfo}. */
export interface PreprocessingConstants {
  /** Side of the square frames of the vision encoder. */
  readonly imageSize: number;
  /** Per-channel RGB normalisation: `(x / 255 - mean) / std`. */
  readonly imageMean: readonly number[];
  /** See {@link PreprocessingInfo.imageMean}. */
  readonly imageStd: readonly number[];
  /** Mel bins of an fbank. */
  readonly melBins: number;
  /** Frames of an fbank (shorter clips are padded). */
  readonly targetFrames: number;
  /** Length of one audio clip in seconds. */
  readonly clipSeconds: number;
  /** fbank normalisation: `(fbank - fbankMean) / fbankStd`. */
  readonly fbankMean: number;
  /** See {@link PreprocessingInfo.fbankMean}. */
  readonly fbankStd: number;
}

/** What a processor is built from: the constants and the most frames and clips the encoders take. */
export interface PreprocessingInfo extends PreprocessingConstants {
  /** Most frames of a video. */
  readonly maxFrames: number;
  /** Most audio clips. */
  readonly maxClips: number;
}

/** The sample rate ImageBind's audio preprocessing runs at (its fbank is fixed to it). */
export const AUDIO_SAMPLE_RATE = 16000;

/** Frames sampled from a video unless asked otherwise (`load_video(n_frms=8)`). */
export const DEFAULT_FRAMES = 8;

/** Audio clips taken unless asked otherwise (`clips_per_video=8`). */
export const DEFAULT_CLIPS = 8;

/**
 * Video-LLaMA's settings: BLIP-2's image processor (224 px, CLIP's mean and std) and ImageBind's
 * audio preprocessing (128 mel bins, 204 frames of 2-second clips, its fbank mean and std).
 */
export const VIDEO_LLAMA_PREPROCESSING: PreprocessingConstants = Object.freeze({
  imageSize: 224,
  imageMean: Object.freeze([0.48145466, 0.4578275, 0.40821073]),
  imageStd: Object.freeze([0.26862954, 0.26130258, 0.27577711]),
  melBins: 128,
  targetFrames: 204,
  clipSeconds: 2,
  fbankMean: -4.268,
  fbankStd: 9.138,
});
