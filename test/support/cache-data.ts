/** Deterministic embeddings for the cache tests. */
import type { MediaEmbedding } from '../../src/media-embedding.js';

export function testEmbedding(seed: number, tokens = 8, dim = 96, kind: MediaEmbedding['kind'] = 'video'): MediaEmbedding {
  const data = Float32Array.from({ length: tokens * dim }, (_, i) => Math.sin(seed * 1000 + i) * 3);
  return { kind, tokens, dim, data };
}
