/**
 * Content addresses: SHA-256 of media inputs and of projector files, so that a cache key names
 * what was encoded and by which weights, never where a file happened to lie.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import { VideoLlamaError } from '../errors.js';

/** Identities already computed in this process, by file version (device, inode, size, mtime). */
const fileIdentities = new Map<string, Promise<string>>();

async function hashStream(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * SHA-256 (hex) of a file's content, computed once per version of the file in this process
 * (a changed size, mtime or inode hashes again). Reads the file in 1 MiB chunks, so the event
 * loop is never held for long. Rejects with FILE_NOT_FOUND when it cannot be read.
 */
export async function fileIdentity(file: string): Promise<string> {
  const resolved = path.resolve(file);
  let version: string;
  try {
    const stat = await fs.stat(resolved, { bigint: true });
    version = `${resolved}\0${stat.dev}\0${stat.ino}\0${stat.size}\0${stat.mtimeNs}`;
  } catch (error) {
    throw new VideoLlamaError('FILE_NOT_FOUND', `${file} cannot be read: ${(error as Error).message}`, { file }, { cause: error });
  }
  let identity = fileIdentities.get(version);
  if (!identity) {
    identity = hashStream(resolved);
    fileIdentities.set(version, identity);
    identity.catch(() => fileIdentities.delete(version));
  }
  return identity;
}

/**
 * The content address of an encoder input: SHA-256 (hex) of a file's bytes, of a byte array,
 * or of a typed array's bytes (decoded pixels, PCM, a tensor) together with its shape.
 */
export async function hashMediaInput(input: string | ArrayBufferView, shape?: readonly number[]): Promise<string> {
  if (typeof input === 'string') return fileIdentity(input);
  const hash = createHash('sha256');
  if (shape) hash.update(`${shape.join('x')}\0`);
  hash.update(new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  return hash.digest('hex');
}
