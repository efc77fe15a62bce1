/**
 * The unit of training data shared by the trainer (src/train/trainer.ts) and the data builders
 * (templates, manifests, feature caches): one prompt of one branch, with the frozen stage's
 * output already computed.
 * @module
 */

/** The label of a position that gets no loss (PyTorch's `ignore_index`, the original's targets). */
export const IGNORE_LABEL = -100;

/** The trainable branch an example trains: the video Q-Former path or the audio Q-Former path. */
export type TrainingBranch = 'video' | 'audio';

/**
 * What an example's `features` hold: the frozen stage's output (`'features'`, the paper's stages),
 * or the preprocessed media the whole branch reads (`'media'`), for a trainer that also trains an
 * encoder or the BLIP-2 Q-Former ({@link UnfreezePart}).
 */
export type ExampleInput = 'features' | 'media';

/** Parts of a branch a trainer may train beyond the paper's head: the encoder (EVA ViT or ImageBind audio), the BLIP-2 Q-Former (video). */
export type UnfreezePart = 'encoder' | 'qformer';

/** Values read when a training step needs them (e.g. from a disk cache), so that a run holds only its step's media in memory. */
export type LazyValues = () => Promise<Float32Array>;

/**
 * One training example, as the original's `VideoLLAMA.forward` consumes it after the frozen
 * encoders (`input: 'features'`, the default):
 *
 * - `video`: `features` is the frozen BLIP-2 Q-Former output of every frame,
 *   `[units = frames][queries = 32][qformerWidth = 768]` row-major (`encode_videoQformer_visual`
 *   adds the frame position embedding to it, runs the video Q-Former, then `llama_proj`).
 * - `audio`: `features` is the frozen ImageBind audio embedding of every clip,
 *   `[units = clips][imagebindWidth = 1024]` row-major (`encode_audioQformer` adds the audio
 *   position embedding, runs the audio Q-Former, then `audio_llama_proj`).
 *
 * With `input: 'media'` (a trainer that unfreezes an encoder or the BLIP-2 Q-Former), `features`
 * is the preprocessed media the encoder reads: video frames `[units][3][S][S]` normalised as
 * `Projector.encodeVideo`'s tensor input, or audio fbank clips `[units][melBins][targetFrames]`.
 *
 * The branch's Q-Former output (its query count of rows, 32 in the original) replaces the token
 * embeddings at positions `mediaOffset .. mediaOffset + queries - 1` of `tokens`.
 */
export interface TrainingExample {
  /** Which branch (and so which trainable tensors) this example trains. */
  branch: TrainingBranch;
  /** What `features` hold; default `'features'`. */
  input?: ExampleInput;
  /** The frozen stage's output or the media, laid out as the interface's description says; or a loader of them, called per step. */
  features: Float32Array | LazyValues;
  /** Frames (video) or clips (audio) in `features`. */
  units: number;
  /** The whole prompt's token ids; the values at the media positions are ignored. */
  tokens: Int32Array;
  /** First position of the media soft tokens (they take the branch's query count of positions). */
  mediaOffset: number;
  /**
   * One label per position of `tokens`: the token the model must predict there (from the previous
   * position's logits: the original's shifted loss), or {@link IGNORE_LABEL} (no loss there).
   */
  labels: Int32Array;
}
