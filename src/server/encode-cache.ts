/**
 * Encoded media by content: the sha256 of a file's bytes (and how it was encoded) to its
 * embeddings, so the second question about an upload costs no encode. In memory, least recently
 * used first out, bounded in bytes of embeddings.
 * @module
 */
import type { EncodedMedia } from './engine.js';

/** Bytes of embeddings an entry holds. */
function entryBytes(media: EncodedMedia): number {
  return media.embeddings.reduce((sum, e) => sum + e.data.byteLength, 0);
}

/** A least-recently-used map of finished encodes, at most `maxBytes` of embeddings. */
export class EncodeCache {
  private readonly entries = new Map<string, EncodedMedia>();
  private bytes = 0;
  /** Lookups that found an entry. */
  hits = 0;
  /** Lookups that did not. */
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  /** The entry for `key`, now the most recently used; undefined (a miss) when absent. */
  get(key: string): EncodedMedia | undefined {
    const media = this.entries.get(key);
    if (!media) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, media);
    return media;
  }

  /** Stores an entry, dropping the least recently used ones beyond the byte budget. */
  set(key: string, media: EncodedMedia): void {
    const size = entryBytes(media);
    if (size > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) this.bytes -= entryBytes(old);
    this.entries.delete(key);
    this.entries.set(key, media);
    this.bytes += size;
    for (const [oldest, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entryBytes(value);
    }
  }

  /** Entries held. */
  get size(): number {
    return this.entries.size;
  }
}
