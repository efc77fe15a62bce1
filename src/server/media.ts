/**
 * From a message's media reference to embeddings: fetching the bytes (data URL, base64, an
 * upload id, an operator-allowed remote or `file://` URL), checking what ffmpeg finds in them
 * against the limits, and encoding them (once per content: the engine's encode cache).
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import { ApiError, badRequest, unprocessableMedia } from './api-error.js';
import { isLibraryError, type EncodedMedia, type EncodeKind, type Engine, type MediaFacts } from './engine.js';
import type { ServerLimits } from './options.js';
import { UploadStore } from './uploads.js';

/** Where a message's media comes from. */
export type MediaSource =
  | { type: 'url'; url: string }
  | { type: 'base64'; data: string }
  | { type: 'upload'; id: string };

/** What a media reference asks for: the source, how to encode it, and the request field that named it. */
export interface MediaReference {
  source: MediaSource;
  /** `media` for an upload or video: decided from the file (a still image, a video with or without sound, audio). */
  kind: EncodeKind;
  /** The request field, for error messages (`messages[0].content[1]`). */
  param: string;
}

/** Bytes (or a local file) with their content address. */
interface LoadedMedia {
  input: string | Uint8Array;
  sha256: string;
}

const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/;

/** The settings of {@link MediaResolver} the server options give. */
export interface MediaResolverSettings {
  limits: ServerLimits;
  uploads: UploadStore;
  mediaRoot?: string;
  allowRemoteMedia: boolean;
}

/** Probes kept: what ffmpeg found is a few numbers per file, and finding it costs a process and a pass over the file. */
const KEPT_PROBES = 4096;

/** Resolves media references into encoded media, within the server's limits. */
export class MediaResolver {
  /**
   * What ffmpeg found in the files seen lately, by the sha256 of their bytes (least recently used
   * out). Not the encode cache (the engine's, which holds embeddings): the checks against the
   * limits, which every request makes, need only these facts.
   */
  private readonly probes = new Map<string, MediaFacts>();

  constructor(private readonly settings: MediaResolverSettings) {}

  /**
   * Fetches, checks and encodes one reference: every request's media is checked against the
   * limits (from ffmpeg's facts about the file, probed once per content); the encode is skipped
   * when the engine's encode cache holds the same content encoded the same way.
   */
  async encode(engine: Engine, reference: MediaReference, signal: AbortSignal, onProgress?: (fraction: number) => void): Promise<EncodedMedia> {
    const description = engine.describe();
    if (!description.vision && !description.audio) throw badRequest(reference.param, 'this server has no projector loaded, so it answers about text only');
    const media = await this.load(reference);
    const facts = await this.probe(engine, media, reference.param, signal);
    const kind = this.checkedKind(reference, facts);
    return libraryCall(reference.param, () => engine.encode(media.input, kind, facts, { signal, onProgress }));
  }

  /** What ffmpeg finds in the media, probed once per content. */
  private async probe(engine: Engine, media: LoadedMedia, param: string, signal: AbortSignal): Promise<MediaFacts> {
    let facts = this.probes.get(media.sha256);
    if (facts) this.probes.delete(media.sha256);
    else facts = await libraryCall(param, () => engine.probe(media.input, signal));
    this.probes.set(media.sha256, facts);
    if (this.probes.size > KEPT_PROBES) this.probes.delete(this.probes.keys().next().value!);
    return facts;
  }

  /** The encode kind a file gets, after checking it against the reference and the limits. */
  private checkedKind(reference: MediaReference, facts: MediaFacts): EncodeKind {
    const { limits } = this.settings;
    const { param } = reference;
    if (facts.width !== undefined && facts.height !== undefined && facts.width * facts.height > limits.mediaPixels) {
      throw unprocessableMedia(param, `frames of ${facts.width}x${facts.height} pixels exceed this server's limit of ${limits.mediaPixels} pixels`, 'media_too_large');
    }
    if (facts.durationSeconds !== undefined && facts.durationSeconds > limits.mediaSeconds) {
      throw unprocessableMedia(param, `${facts.durationSeconds} s of media exceed this server's limit of ${limits.mediaSeconds} s`, 'media_too_long');
    }
    if ((reference.kind === 'image' || reference.kind === 'video') && !facts.hasVideo) throw unprocessableMedia(param, 'the file has no picture');
    if (reference.kind === 'audio' && !facts.hasAudio) throw unprocessableMedia(param, 'the file has no sound');
    if (reference.kind !== 'media') return reference.kind;
    if (facts.hasVideo) return facts.still ? 'image' : 'media';
    if (facts.hasAudio) return 'audio';
    throw unprocessableMedia(param, 'the file has neither a picture nor sound');
  }

  /** The bytes (or local file) a source names. */
  private async load(reference: MediaReference): Promise<LoadedMedia> {
    const { source, param } = reference;
    if (source.type === 'upload') {
      const file = await this.settings.uploads.filePath(source.id);
      if (!file) throw badRequest(param, `no uploaded file has the id ${JSON.stringify(source.id.slice(0, 80))}`);
      return { input: file, sha256: UploadStore.sha256(source.id)! };
    }
    if (source.type === 'base64') return bytesMedia(decodeBase64(source.data, param));
    const url = source.url;
    if (url.startsWith('data:')) {
      const comma = url.indexOf(',');
      if (comma < 0 || !url.slice(0, comma).endsWith(';base64')) throw badRequest(param, 'expected a base64 data URL (data:<type>;base64,<data>)');
      return bytesMedia(decodeBase64(url.slice(comma + 1), param));
    }
    if (url.startsWith('file://')) return this.localFile(url, param);
    if (/^https?:\/\//i.test(url)) return bytesMedia(await this.remote(url, param));
    throw badRequest(param, 'expected a data: URL, base64 data or an uploaded file id');
  }

  /** A `file://` URL inside the operator's media root. */
  private async localFile(url: string, param: string): Promise<LoadedMedia> {
    const root = this.settings.mediaRoot;
    if (!root) throw badRequest(param, 'this server reads no local files (it has no media root)');
    let file: string;
    try {
      const realRoot = await fs.realpath(root);
      file = await fs.realpath(path.resolve(realRoot, decodeURIComponent(new URL(url).pathname).replace(/^\/+/, '')));
      if (!file.startsWith(realRoot + path.sep) || !(await fs.stat(file)).isFile()) throw new Error('outside');
    } catch {
      throw badRequest(param, 'no such file in the media root');
    }
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return { input: file, sha256: hash.digest('hex') };
  }

  /** A remote file, within the size and time limits. */
  private async remote(url: string, param: string): Promise<Uint8Array> {
    const { limits, allowRemoteMedia } = this.settings;
    if (!allowRemoteMedia) throw badRequest(param, 'this server does not fetch remote URLs; send the media as a data URL or upload it');
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(limits.remoteTimeoutMs), redirect: 'follow' });
      if (!response.ok || !response.body) throw new Error(`status ${response.status}`);
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      for await (const chunk of response.body) {
        bytes += chunk.byteLength;
        if (bytes > limits.remoteBytes) {
          throw unprocessableMedia(param, `the remote file is larger than this server's limit of ${limits.remoteBytes} bytes`, 'media_too_large');
        }
        chunks.push(chunk);
      }
      return Buffer.concat(chunks);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw unprocessableMedia(param, 'the remote file could not be fetched', 'media_fetch_failed');
    }
  }
}

function bytesMedia(bytes: Uint8Array): LoadedMedia {
  return { input: bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

function decodeBase64(data: string, param: string): Buffer {
  if (!BASE64.test(data)) throw badRequest(param, 'the data is not base64');
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length === 0) throw unprocessableMedia(param, 'the media is empty');
  return bytes;
}

/**
 * Runs a library call on client media, turning the library's media errors into a 422 that
 * names the request field (and nothing of the server: its messages name temporary files).
 */
async function libraryCall<T>(param: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isLibraryError(error, 'MEDIA_DECODE', 'NO_VIDEO_STREAM', 'NO_AUDIO_STREAM', 'INVALID_ARGUMENT')) {
      throw unprocessableMedia(param, 'the media could not be decoded (corrupt, empty, or a format ffmpeg cannot read)');
    }
    throw error;
  }
}
