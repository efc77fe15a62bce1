/**
 * The embeddings an encoder produces for one image, video or audio track: the hand-over
 * between the projector and the language model, a run of vectors in the LLM's embedding
 * space that takes the place of one `<ImageHere>` in the prompt.
 * @module
 */
import { invalidArgument, requireFinite, VideoLlamaError } from './errors.js';

/** What a {@link MediaEmbedding} was made from; decides the wording around its placeholder (docs/chat.md). */
export type MediaKind = 'video' | 'audio' | 'image';

const MEDIA_KINDS: readonly MediaKind[] = ['video', 'audio', 'image'];

/**
 * Soft-prompt embeddings for the LLM: `tokens` vectors of `dim` floats each, row after row
 * (`data[t * dim + i]`), spliced into the prompt where the media's placeholder is. `dim` must
 * equal the language model's {@link LlmModel.embeddingWidth} (else DIMENSION_MISMATCH); a
 * malformed one, or one holding NaN or infinity, is INVALID_ARGUMENT. The chat keeps a reference to `data` for later turns: do
 * not modify it after sending. It is plain data: it can be made by a {@link Projector} in
 * another process and sent over (e.g. `data` as bytes, the rest as JSON).
 *
 * @example
 * ```ts
 * const video = await projector.encodeVideo('clip.mp4');
 * const firstVector = video.data.subarray(0, video.dim);
 * await chat.send({ text: 'What happens in this video?', media: [video] });
 * ```
 */
export interface MediaEmbedding {
  /** What the vectors encode. */
  kind: MediaKind;
  /** Number of vectors (prompt positions) this media occupies: the branch's query count, e.g. 32 for video, 8 for audio. */
  tokens: number;
  /** Width of each vector: the LLM's embedding width (the projector's {@link ProjectorInfo.llmWidth}). */
  dim: number;
  /** `tokens * dim` floats, one vector after another. */
  data: Float32Array;
  /**
   * Text the original places right after a video's placeholder: `load_video`'s
   * `"The video contains 8 frames sampled at 0.0, 1.2, … seconds. "`. Optional; used for
   * videos without audio only, as in the original.
   */
  description?: string;
  /**
   * Identity of the projector that made the vectors (the SHA-256 of its file, hex), when known:
   * embeddings of different projectors are not interchangeable. Optional.
   */
  projector?: string;
}

/**
 * Checks the shape of a {@link MediaEmbedding} and, when `width` is given, that its vectors
 * have that width (DIMENSION_MISMATCH otherwise).
 * @internal
 */
export function validateMediaEmbedding(value: unknown, name: string, width?: number): MediaEmbedding {
  if (typeof value !== 'object' || value === null) throw invalidArgument(name, 'a MediaEmbedding object', value);
  const media = value as Partial<MediaEmbedding>;
  if (!MEDIA_KINDS.includes(media.kind as MediaKind)) {
    throw invalidArgument(`${name}.kind`, `one of ${MEDIA_KINDS.map((k) => `'${k}'`).join(', ')}`, media.kind);
  }
  if (!Number.isInteger(media.tokens) || (media.tokens as number) < 1) throw invalidArgument(`${name}.tokens`, 'a positive integer', media.tokens);
  if (!Number.isInteger(media.dim) || (media.dim as number) < 1) throw invalidArgument(`${name}.dim`, 'a positive integer', media.dim);
  if (!(media.data instanceof Float32Array)) throw invalidArgument(`${name}.data`, 'a Float32Array', media.data);
  if (media.description !== undefined && typeof media.description !== 'string') {
    throw invalidArgument(`${name}.description`, 'a string', media.description);
  }
  if (media.projector !== undefined && typeof media.projector !== 'string') {
    throw invalidArgument(`${name}.projector`, 'a string', media.projector);
  }
  const tokens = media.tokens as number;
  const dim = media.dim as number;
  if (media.data.length !== tokens * dim) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `Expected a Float32Array of tokens * dim = ${tokens} * ${dim} = ${tokens * dim} ` +
      `values for ${name}.data but received one of ${media.data.length} values`, { name: `${name}.data`, expected: tokens * dim });
  }
  requireFinite(media.data, `${name}.data`);
  if (width !== undefined && dim !== width) {
    throw new VideoLlamaError('DIMENSION_MISMATCH',
      `${name} (${media.kind}) has vectors of width ${dim}, but the language model's embedding width is ${width}: ` +
      'the projector was made for another LLM', { name, expected: width, received: dim });
  }
  return media as MediaEmbedding;
}
