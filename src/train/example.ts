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
 * One training example, as the original's `VideoLLAMA.forward` consumes it after the frozen
 * encoders:
 *
 * - `video`: `features` is the frozen BLIP-2 Q-Former output of every frame,
 *   `[units = frames][queries = 32][qformerWidth = 768]` row-major (`encode_videoQformer_visual`
 *   adds the frame position embedding to it, runs the video Q-Former, then `llama_proj`).
 * - `audio`: `features` is the frozen ImageBind audio embedding of every clip,
 *   `[units = clips][imagebindWidth = 1024]` row-major (`encode_audioQformer` adds the audio
 *   position embedding, runs the audio Q-Former, then `audio_llama_proj`).
 *
 * The branch's Q-Former output (its query count of rows, 32 in the original) replaces the token
 * embeddings at positions `mediaOffset .. mediaOffset + queries - 1` of `tokens`.
 */
export interface TrainingExample {
  /** Which branch (and so which trainable tensors) this example trains. */
  branch: TrainingBranch;
  /** The frozen stage's output, laid out as the interface's description says. */
  features: Float32Array;
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
