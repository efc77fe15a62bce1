/**
 * The embeddings an encoder produces for one image, video or audio track.
 * @module
 */

/**
 * Soft-prompt embeddings for the LLM: `tokens` rows of `dim` floats, row-major.
 *
 * @example
 * ```ts
 * const embedding = await projector.encodeVideo({ tensor: frames, shape: [8, 3, 224, 224] });
 * const firstToken = embedding.data.subarray(0, embedding.dim);
 * ```
 */
export interface MediaEmbedding {
  /** What was encoded. */
  kind: 'video' | 'image' | 'audio';
  /** Number of embedding rows (the branch's query count, e.g. 32 for video, 8 for audio). */
  tokens: number;
  /** Width of each row: the LLM's embedding width. */
  dim: number;
  /** `tokens × dim` floats, row-major. */
  data: Float32Array;
}
