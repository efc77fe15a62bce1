/**
 * Uploaded files, stored under the sha256 of their bytes: the same file uploaded twice is one
 * file with one id (`file-<sha256>`). A small JSON file beside each keeps its name and time, so
 * replicas sharing the folder see the same uploads.
 * @module
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** An upload as OpenAI's files API describes one. */
export interface UploadedFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
}

const ID = /^file-([0-9a-f]{64})$/;

/** The content-addressed upload folder. */
export class UploadStore {
  constructor(readonly dir: string) {}

  /** Stores a stream's bytes; resolves to the upload (an existing one when the bytes were seen before). */
  async save(stream: Readable, filename: string, purpose: string): Promise<UploadedFile> {
    await fs.mkdir(this.dir, { recursive: true });
    const partial = path.join(this.dir, `.partial-${randomUUID()}`);
    const hash = createHash('sha256');
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(stream, tap, createWriteStream(partial));
      // A stream cut short by a size limit ends without an error: the caller checks `truncated`.
      if ((stream as Readable & { truncated?: boolean }).truncated) throw Object.assign(new Error('file too large'), { code: 'FST_REQ_FILE_TOO_LARGE' });
      const sha = hash.digest('hex');
      const file: UploadedFile = { id: `file-${sha}`, object: 'file', bytes, created_at: Math.floor(Date.now() / 1000), filename, purpose };
      await fs.rename(partial, this.dataPath(sha));
      const existing = await this.get(file.id);
      if (existing) return existing;
      await fs.writeFile(this.metaPath(sha), JSON.stringify(file));
      return file;
    } finally {
      await fs.rm(partial, { force: true });
    }
  }

  /** The upload with this id, or undefined (also for a malformed id). */
  async get(id: string): Promise<UploadedFile | undefined> {
    const sha = ID.exec(id)?.[1];
    if (!sha) return undefined;
    try {
      return JSON.parse(await fs.readFile(this.metaPath(sha), 'utf8')) as UploadedFile;
    } catch {
      return undefined;
    }
  }

  /** Path of an upload's bytes, or undefined when there is no such upload. */
  async filePath(id: string): Promise<string | undefined> {
    const upload = await this.get(id);
    return upload && this.dataPath(ID.exec(upload.id)![1]!);
  }

  /** Every upload, newest first. */
  async list(): Promise<UploadedFile[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const files = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.get(`file-${n.slice(0, -5)}`)));
    return files.filter((f): f is UploadedFile => f !== undefined).sort((a, b) => b.created_at - a.created_at);
  }

  /** The sha256 of an upload id (its content address). */
  static sha256(id: string): string | undefined {
    return ID.exec(id)?.[1];
  }

  private dataPath(sha: string): string {
    return path.join(this.dir, sha);
  }

  private metaPath(sha: string): string {
    return path.join(this.dir, `${sha}.json`);
  }
}
