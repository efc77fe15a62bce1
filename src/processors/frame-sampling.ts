/**
 * Which frames of a video are used: Video-LLaMA's `load_video(sampling="uniform")`
 * (video_llama/processors/video_processor.py) takes `np.arange(0, vlen, vlen / n_frms).astype(int)`.
 * @module
 */

/**
 * The frame indices `np.arange(0, vlen, vlen / frames).astype(int)`, computed with the same float64
 * arithmetic as NumPy (length `ceil(vlen / step)`, element i = `trunc(i * step)`).
 *
 * NumPy's float arange can yield `frames + 1` indices for some (vlen, frames) (e.g. vlen 61, 7
 * frames → 8 indices); this never happens for frames ∈ {2, 5, 8, 16, 32} and vlen ≤ 3000. When
 * the extra index is a real frame the original passes `frames + 1` frames on, and so does this
 * function. When it equals `vlen` (e.g. vlen 17, 7 frames → index 17) decord would fail with an
 * out-of-bounds error; such indices are dropped instead. When vlen < frames some indices repeat
 * (vlen 5, 8 frames → 0,0,1,1,2,3,3,4), as in the original.
 *
 * @param vlen Number of frames of the video (≥ 1).
 * @param frames Number of frames wanted (≥ 1); default in Video-LLaMA: 8.
 * @example
 * ```ts
 * uniformFrameIndices(100, 8); // [0, 12, 25, 37, 50, 62, 75, 87]
 * ```
 */
export function uniformFrameIndices(vlen: number, frames: number): number[] {
  const step = vlen / frames;
  const length = Math.ceil(vlen / step);
  const indices: number[] = [];
  for (let i = 0; i < length; i++) {
    const index = Math.trunc(i * step);
    if (index < vlen) indices.push(index);
  }
  return indices;
}
