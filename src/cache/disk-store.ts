/**
 * The on-disk tier of the encode cache: one file per key under a folder that several processes
 * may share. Writes are atomic (a private temporary file, flushed, then renamed over the entry),
 * so a crash or kill never leaves a torn entry; readers check the format's checksum and drop
 * what fails it. Recency is the file's mtime (touched on every hit), and the folder is kept
 * under a byte bound by deleting the least recently used entries.
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { VideoLlamaError } from '../errors.js';

const ENTRY_SUFFIX = '.vlme';
const TEMP_SUFFIX = '.tmp';
/** A temporary file older than this was left by a writer that died; eviction removes it. */
const STALE_TEMP_MS = 10 * 60_000;

interface EntryFile {
  file: string;
  bytes: number;
  mtimeMs: number;
}

/** Counters of what the store did, for tests and metrics. */
export interface DiskStoreCounts {
  /** Entries dropped because their bytes failed the check. */
  corrupt: number;
  /** Entries deleted to keep the folder under its bound. */
  evicted: number;
}

export class DiskStore {
  readonly counts: DiskStoreCounts = { corrupt: 0, evicted: 0 };
  /** Bytes this process believes the folder holds; undefined until the first scan. */
  private knownBytes: number | undefined;

  constructor(readonly dir: string, readonly maxBytes: number) {}

  /** The entry's bytes when `check` accepts them; a rejected entry is deleted (and counted). */
  async read<T>(key: string, check: (bytes: Uint8Array) => T): Promise<T | undefined> {
    const file = this.entryPath(key);
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(file);
    } catch {
      return undefined; // missing, or evicted by another process meanwhile: a miss
    }
    try {
      const value = check(bytes);
      const now = new Date();
      await fs.utimes(file, now, now).catch(() => undefined);
      return value;
    } catch {
      this.counts.corrupt += 1;
      await fs.rm(file, { force: true });
      return undefined;
    }
  }

  /** Stores the entry atomically, then evicts the least recently used entries over the bound. */
  async write(key: string, bytes: Uint8Array): Promise<void> {
    const file = this.entryPath(key);
    const temp = `${file}.${process.pid}-${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      const handle = await fs.open(temp, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temp, file);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw new VideoLlamaError('WRITE_FAILED', `could not write a cache entry in ${this.dir}: ${(error as Error).message}`,
        { dir: this.dir }, { cause: error });
    }
    if (this.knownBytes !== undefined) this.knownBytes += bytes.byteLength;
    if (this.knownBytes === undefined || this.knownBytes > this.maxBytes) await this.evict();
  }

  /**
   * Scans the folder and deletes the least recently used entries until it fits the bound
   * (other processes' writes included), and temporary files left by dead writers.
   */
  async evict(): Promise<void> {
    const entries = await this.scan();
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const entry of entries) {
      if (total <= this.maxBytes) break;
      await fs.rm(entry.file, { force: true });
      total -= entry.bytes;
      this.counts.evicted += 1;
    }
    this.knownBytes = total;
  }

  /** Every entry file under the folder; stale temporary files are removed on the way. */
  private async scan(): Promise<EntryFile[]> {
    const entries: EntryFile[] = [];
    const shards = await fs.readdir(this.dir, { withFileTypes: true }).catch(() => []);
    for (const shard of shards.filter((d) => d.isDirectory())) {
      const shardDir = path.join(this.dir, shard.name);
      for (const name of await fs.readdir(shardDir).catch(() => [] as string[])) {
        const file = path.join(shardDir, name);
        const stat = await fs.stat(file).catch(() => undefined);
        if (!stat?.isFile()) continue;
        if (name.endsWith(ENTRY_SUFFIX)) entries.push({ file, bytes: stat.size, mtimeMs: stat.mtimeMs });
        else if (name.endsWith(TEMP_SUFFIX) && Date.now() - stat.mtimeMs > STALE_TEMP_MS) await fs.rm(file, { force: true });
      }
    }
    return entries;
  }

  /** Entries are spread over 256 sub-folders by the key's first two hex digits. */
  private entryPath(key: string): string {
    return path.join(this.dir, key.slice(0, 2), `${key}${ENTRY_SUFFIX}`);
  }
}
