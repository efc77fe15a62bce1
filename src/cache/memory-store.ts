/**
 * The in-memory tier of the encode cache: least recently used entries leave first once the
 * stored embeddings exceed a byte bound.
 * @internal
 * @module
 */
import type { MediaEmbedding } from '../media-embedding.js';

const bytesOf = (media: readonly MediaEmbedding[]): number => media.reduce((n, m) => n + m.data.byteLength, 0);

export class MemoryStore {
  /** A Map iterates in insertion order: re-inserting on every hit keeps the oldest use first. */
  private readonly entries = new Map<string, readonly MediaEmbedding[]>();
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  get(key: string): readonly MediaEmbedding[] | undefined {
    const media = this.entries.get(key);
    if (media) {
      this.entries.delete(key);
      this.entries.set(key, media);
    }
    return media;
  }

  set(key: string, media: readonly MediaEmbedding[]): void {
    const size = bytesOf(media);
    if (size > this.maxBytes) return;
    this.delete(key);
    this.entries.set(key, media);
    this.bytes += size;
    for (const [oldest, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= bytesOf(value);
    }
  }

  /** Bytes of the embeddings held now. */
  get size(): number {
    return this.bytes;
  }

  private delete(key: string): void {
    const old = this.entries.get(key);
    if (!old) return;
    this.entries.delete(key);
    this.bytes -= bytesOf(old);
  }
}
