/**
 * Media inputs: a file path or the file's bytes. ffmpeg needs a seekable file for many containers
 * (an mp4 whose index is at the end), so bytes are written to a private temporary file that is
 * removed when the work is done.
 * @internal
 * @module
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { invalidArgument, VideoLlamaError } from '../errors.js';

/** A media file: its path, or its bytes. */
export type MediaInput = string | Uint8Array;

/** Throws `INVALID_ARGUMENT` unless `input` is a non-empty path string or a Uint8Array. */
export function validateMediaInput(input: unknown, name = 'input'): asserts input is MediaInput {
  if (typeof input === 'string' ? input.length === 0 : !(input instanceof Uint8Array)) {
    throw invalidArgument(name, 'a file path (non-empty string) or the file bytes (Uint8Array)', input);
  }
}

/**
 * The input argument ffmpeg gets for a local file: its absolute path behind `file:`, so that no
 * path is ever read as a protocol (a relative `12:30.mp4` or `http:x.png` would be otherwise).
 */
export function ffmpegInput(file: string): string {
  return `file:${path.resolve(file)}`;
}

/** Throws `INVALID_ARGUMENT` unless `signal` is undefined or an AbortSignal. */
export function validateSignal(signal: unknown, name = 'options.signal'): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument(name, 'an AbortSignal', signal);
}

/**
 * Runs `work` with a path ffmpeg can open: the given path once it is known to be a readable file,
 * or a temporary copy of the bytes (deleted afterwards, also when `work` fails).
 * @throws VideoLlamaError `FILE_NOT_FOUND` for a missing or unreadable path, `MEDIA_DECODE` for empty bytes.
 */
export async function withLocalFile<T>(input: MediaInput, work: (file: string) => Promise<T>): Promise<T> {
  if (typeof input === 'string') {
    await assertReadableFile(input);
    return work(input);
  }
  if (input.byteLength === 0) {
    throw new VideoLlamaError('MEDIA_DECODE', 'the media bytes are empty (0 bytes)', { bytes: 0 });
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'video-llama-media-'));
  try {
    const file = path.join(dir, 'input');
    await fs.writeFile(file, input);
    return await work(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function assertReadableFile(file: string): Promise<void> {
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) throw new Error('it is not a regular file');
    await fs.access(file, fs.constants.R_OK);
  } catch (error) {
    throw new VideoLlamaError('FILE_NOT_FOUND', `media file ${file} cannot be read: ${(error as Error).message}`,
      { file }, { cause: error });
  }
}
