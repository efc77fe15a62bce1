/**
 * {@link ProjectorInfo}: the object native AddonProjector's `info()` returns. Its fields are made
 * in C++ from one list (native/core/projector_info.h, exported as `projectorInfoFields`), which a
 * test checks against {@link PROJECTOR_INFO_FIELDS}; the compiler checks the list against the
 * interface, both ways.
 * @module
 */

/**
 * Sizes and constants of a projector file (`Projector.info`), for preparing its inputs.
 * The sizes come from the file: nothing here is fixed by the library.
 */
export interface ProjectorInfo {
  /** Width of the produced embeddings (the LLM's hidden size). */
  readonly llmWidth: number;
  /** `general.file_type`: 0 f32, 1 f16, 7 q8_0, 32 bf16. */
  readonly fileType: number;
  /** Whether the file holds the vision branch (video and image encoders). */
  readonly hasVision: boolean;
  /** Whether the file holds the audio branch. */
  readonly hasAudio: boolean;
  /** Side of the square frames the vision encoder takes (0 without vision). */
  readonly imageSize: number;
  /** Embedding rows of a video or image. */
  readonly videoQueries: number;
  /** Most frames a video may have (rows of the frame position embedding). */
  readonly maxFrames: number;
  /** Per-channel RGB normalisation: `(x / 255 - mean) / std`. */
  readonly imageMean: readonly [number, number, number];
  /** See {@link ProjectorInfo.imageMean}. */
  readonly imageStd: readonly [number, number, number];
  /** Embedding rows of an audio track. */
  readonly audioQueries: number;
  /** Most audio clips (rows of the audio position embedding). */
  readonly maxClips: number;
  /** Sample rate (Hz) the fbanks are computed at. */
  readonly sampleRate: number;
  /** Mel bins of an fbank (its second-to-last dimension). */
  readonly melBins: number;
  /** Frames of an fbank (its last dimension; shorter clips are padded). */
  readonly targetFrames: number;
  /** Length of one audio clip in seconds. */
  readonly clipSeconds: number;
  /** fbank normalisation: `(fbank - fbankMean) / fbankStd`. */
  readonly fbankMean: number;
  /** See {@link ProjectorInfo.fbankMean}. */
  readonly fbankStd: number;
  /** The ggml backend the encoders run on, e.g. `"CPU"`. */
  readonly backend: string;
  /**
   * Linear layers running on the library's own CPU kernels rather than ggml's: f16, bf16 and q8_0
   * weights on an x86-64 CPU with AVX2 (or AVX-512 BF16 / VNNI); 0 otherwise, on a GPU, or when
   * `VIDEO_LLAMA_CPU_ISA=none` is set at load (`avx2` keeps to the AVX2 kernels).
   */
  readonly ownKernelLayers: number;
  /** Bytes of the loaded weights. */
  readonly weightBytes: number;
}

/** The fields of {@link ProjectorInfo}, in the order native/core/projector_info.h lists them. */
export const PROJECTOR_INFO_FIELDS = [
  'llmWidth', 'fileType', 'hasVision', 'hasAudio', 'imageSize', 'videoQueries', 'maxFrames', 'imageMean', 'imageStd',
  'audioQueries', 'maxClips', 'sampleRate', 'melBins', 'targetFrames', 'clipSeconds', 'fbankMean', 'fbankStd', 'backend',
  'ownKernelLayers', 'weightBytes',
] as const satisfies readonly (keyof ProjectorInfo)[];

/** A named intermediate tensor (C order). */
export interface StageTensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** Values, C order. */
  data: Float32Array;
}

// Compile-time check of the other direction: every ProjectorInfo field is in PROJECTOR_INFO_FIELDS.
type UnlistedInfoFields = Exclude<keyof ProjectorInfo, (typeof PROJECTOR_INFO_FIELDS)[number]>;
const everyFieldListed: [UnlistedInfoFields] extends [never] ? true : false = true;
void everyFieldListed;
