/**
 * Encode once, ask many: a content-addressed cache of media embeddings, in memory and
 * optionally in a folder that survives restarts and is shared by the processes of one machine
 * (docs/caching.md).
 * @module
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

import { invalidArgument } from '../errors.js';
import type { MediaEmbedding } from '../media-embedding.js';
import { DiskStore } from './disk-store.js';
import { deserializeMediaEmbeddings, serializeMediaEmbeddings } from './embedding-format.js';
import { MemoryStore } from './memory-store.js';

/** Options of {@link EncodeCache}; a bad value throws INVALID_ARGUMENT. */
export interface EncodeCacheOptions {
  /** Bytes of embeddings kept in memory; default 256 MiB (a 7B video is 0.5 MiB); 0 keeps none. */
  memoryBytes?: number;
  /**
   * Folder of the on-disk store (created when missing); default none (memory only). Several
   * processes may share it: entries are written atomically and checked on every read.
   */
  cacheDir?: string;
  /**
   * Bound on the bytes of the on-disk store; default 4 GiB. Least recently used entries are
   * deleted past it (checked after each write; other processes' writes are seen at the next scan).
   */
  diskBytes?: number;
}

/** What an {@link EncodeCache} did since it was made. */
export interface EncodeCacheStats {
  /** Lookups answered from memory. */
  memoryHits: number;
  /** Lookups answered from the on-disk store. */
  diskHits: number;
  /** Lookups that found nothing: the encoder ran. */
  misses: number;
  /** On-disk entries that failed their checksum (or were unreadable) and were dropped. */
  corrupt: number;
  /** On-disk entries deleted to stay under `diskBytes`. */
  evicted: number;
  /** Results that could not be written to the on-disk store (full disk, permissions); they stay in memory. */
  writeFailures: number;
}

/** What decides an encode's result: the cache key is a hash over all of it. */
export interface EncodeKeyParts {
  /** The projector's identity (see {@link fileIdentity}), never its path. */
  projector: string;
  /** The encode: `'video'`, `'image'`, `'audio'` or `'media'`. */
  operation: string;
  /** A hash of the input's bytes (see {@link hashMediaInput}). */
  input: string;
  /** Every option that changes the result (frames, clips, audio on or off, …); undefined values are left out. */
  options: Record<string, unknown>;
}

const MiB = 1024 * 1024;

function checkBytes(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)) {
    throw invalidArgument(name, 'a whole number of bytes >= 0', value);
  }
}

/** JSON with sorted keys and no undefined values, so equal options hash equally. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const fields = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The cache key of an encode: SHA-256 (hex) over every part that decides its result. */
export function encodeCacheKey(parts: EncodeKeyParts): string {
  return createHash('sha256').update(canonicalJson({ format: 1, ...parts })).digest('hex');
}

/**
 * A content-addressed cache of media embeddings. Pass one to the projector (`cache` option) to
 * encode each input once: a second question about the same video costs a hash, not an encode.
 *
 * @example
 * ```ts
 * const cache = new EncodeCache({ cacheDir: '/var/cache/video-llama', diskBytes: 2 ** 30 });
 * const projector = await Projector.load('video-llama.gguf', { cache });
 * await projector.encodeMedia('clip.mp4'); // encodes
 * await projector.encodeMedia('clip.mp4'); // from the cache
 * console.log(cache.stats); // { memoryHits: 1, misses: 1, ... }
 * ```
 */
export class EncodeCache {
  private readonly memory: MemoryStore;
  private readonly disk: DiskStore | undefined;
  private readonly counts = { memoryHits: 0, diskHits: 0, misses: 0, writeFailures: 0 };

  constructor(options: EncodeCacheOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
    checkBytes(options.memoryBytes, 'options.memoryBytes');
    checkBytes(options.diskBytes, 'options.diskBytes');
    if (options.cacheDir !== undefined && (typeof options.cacheDir !== 'string' || options.cacheDir === '')) {
      throw invalidArgument('options.cacheDir', 'a folder path', options.cacheDir);
    }
    this.memory = new MemoryStore(options.memoryBytes ?? 256 * MiB);
    this.disk = options.cacheDir === undefined ? undefined : new DiskStore(path.resolve(options.cacheDir), options.diskBytes ?? 4096 * MiB);
  }

  /** Counters since this cache was made. */
  get stats(): EncodeCacheStats {
    return { ...this.counts, corrupt: this.disk?.counts.corrupt ?? 0, evicted: this.disk?.counts.evicted ?? 0 };
  }

  /**
   * The cached embeddings of `key`, else those `compute` makes (then stored in memory and on
   * disk). A failed disk write does not fail the call: it is counted in
   * {@link EncodeCacheStats.writeFailures} and the result is still returned.
   */
  async getOrCompute(key: string, compute: () => Promise<MediaEmbedding[]>): Promise<MediaEmbedding[]> {
    const cached = await this.get(key);
    if (cached) return cached;
    this.counts.misses += 1;
    const media = await compute();
    await this.set(key, media);
    return media;
  }

  /** The cached embeddings of `key` (copies of the array, same data), or undefined. */
  async get(key: string): Promise<MediaEmbedding[] | undefined> {
    const inMemory = this.memory.get(key);
    if (inMemory) {
      this.counts.memoryHits += 1;
      return [...inMemory];
    }
    const onDisk = await this.disk?.read(key, deserializeMediaEmbeddings);
    if (!onDisk) return undefined;
    this.counts.diskHits += 1;
    this.memory.set(key, onDisk);
    return [...onDisk];
  }

  /** Stores embeddings under `key` in memory and, with a `cacheDir`, on disk. */
  async set(key: string, media: readonly MediaEmbedding[]): Promise<void> {
    this.memory.set(key, media);
    await this.disk?.write(key, serializeMediaEmbeddings(media)).catch(() => {
      this.counts.writeFailures += 1;
    });
  }
}
