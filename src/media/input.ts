/**
 * Media inputs: a file path or URL, or the file's bytes in any of the shapes callers hold them
 * (a Uint8Array, an ArrayBuffer, a Blob, a Readable stream). ffmpeg needs a seekable file for
 * many containers (an mp4 whose index is at the end), so bytes are written to a private
 * temporary file that is removed when the work is done.
 * @internal
 * @module
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { abortedError, invalidArgument, VideoLlamaError } from '../errors.js';

/**
 * A media file: its path, a `file:` URL (or an `http:`/`https:` one, with `allowHttp`), or its
 * bytes as a Uint8Array (a Buffer), an ArrayBuffer, a Blob or a Readable stream (read to its end).
 */
export type MediaInput = string | URL | Uint8Array | ArrayBuffer | Blob | Readable;

/** A media file as the decoders take it: a path or the bytes. */
export type LocalMediaInput = string | Uint8Array;

/** How a {@link MediaInput} is fetched. */
export interface MediaFetchOptions {
  /** Accept `http:` and `https:` URLs (downloaded with `fetch`); default false: INVALID_ARGUMENT. */
  allowHttp?: boolean;
  /** Cancels a download. */
  signal?: AbortSignal;
}

/** Every shape of a {@link MediaInput}, for error messages. @internal */
export const MEDIA_INPUT_TEXT = 'a file path (non-empty string), a file: URL (http: or https: with allowHttp), or the file bytes (Uint8Array, ArrayBuffer, Blob or Readable)';

/** Throws `INVALID_ARGUMENT` unless `input` is one of the {@link MediaInput} shapes. */
export function validateMediaInput(input: unknown, name = 'input'): asserts input is MediaInput {
  const valid = typeof input === 'string' ? input.length > 0
    : input instanceof Uint8Array || input instanceof ArrayBuffer || input instanceof Blob || input instanceof Readable || input instanceof URL;
  if (!valid) throw invalidArgument(name, MEDIA_INPUT_TEXT, input);
}

/** Whether `input` is a {@link MediaInput} (not frames, PCM or a tensor). @internal */
export function isMediaInput(input: unknown): input is MediaInput {
  try {
    validateMediaInput(input);
    return true;
  } catch {
    return false;
  }
}

/**
 * A path or the bytes of any {@link MediaInput}: a stream is read to its end, a Blob or an
 * http(s) URL into memory, a `file:` URL becomes its path.
 * @throws VideoLlamaError `INVALID_ARGUMENT` for an http(s) URL without `allowHttp` or another
 *   protocol, `FILE_NOT_FOUND` for a download that fails, `MEDIA_DECODE` for a stream that errors.
 */
export async function localMediaInput(input: MediaInput, options: MediaFetchOptions = {}): Promise<LocalMediaInput> {
  if (typeof input === 'string' || input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (input instanceof Blob) return new Uint8Array(await input.arrayBuffer());
  if (input instanceof Readable) return readStream(input);
  if (input.protocol === 'file:') return fileURLToPath(input);
  if (input.protocol !== 'http:' && input.protocol !== 'https:') {
    throw invalidArgument('input', 'a file:, http: or https: URL', input.href);
  }
  if (options.allowHttp !== true) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `${input.href} is a remote URL: pass allowHttp: true to download it`, { url: input.href });
  }
  return download(input, options.signal);
}

async function readStream(stream: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
  } catch (error) {
    throw new VideoLlamaError('MEDIA_DECODE', `the media stream failed: ${(error as Error).message}`, {}, { cause: error });
  }
  return Buffer.concat(chunks);
}

async function download(url: URL, signal: AbortSignal | undefined): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    if (signal?.aborted) throw abortedError(`Downloading ${url.href}`, signal);
    throw new VideoLlamaError('FILE_NOT_FOUND', `${url.href} cannot be downloaded: ${(error as Error).message}`, { url: url.href }, { cause: error });
  }
  if (!response.ok) {
    throw new VideoLlamaError('FILE_NOT_FOUND', `${url.href} answered HTTP ${response.status}`, { url: url.href, status: response.status });
  }
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * The input argument ffmpeg gets for a local file: its absolute path behind `file:`, so that no
 * path is ever read as a protocol (a relative `12:30.mp4` or `http:x.png` would be otherwise).
 */
export function ffmpegInput(file: string): string {
  return `file:${path.resolve(file)}`;
}

/** Checks an `options.signal` (INVALID_ARGUMENT unless an AbortSignal or undefined); defined with the other argument errors. */
export { validateSignal } from '../errors.js';

/**
 * Runs `work` with a path ffmpeg can open: the given path once it is known to be a readable file,
 * or a temporary copy of the bytes (deleted afterwards, also when `work` fails).
 * @throws VideoLlamaError `FILE_NOT_FOUND` for a missing or unreadable path, `MEDIA_DECODE` for empty bytes.
 */
export async function withLocalFile<T>(media: MediaInput, work: (file: string) => Promise<T>, options: MediaFetchOptions = {}): Promise<T> {
  const input = await localMediaInput(media, options);
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
