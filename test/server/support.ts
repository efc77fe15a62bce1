/**
 * The server on the tiny models, listening on a loopback port, and the media the tests send:
 * the fixture clip (video with sound), a PNG frame of it, and its WAV sound track.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { cachedRandomProjector, tinyProjector } from '../../src/dev/random-projector.js';
import { runFfmpeg } from '../../src/media/ffmpeg.js';
import { Engine, type EngineOptions } from '../../src/server/engine.js';
import { createServer, type StandaloneOptions, type VideoLlamaServer } from '../../src/server/server.js';
import { fixture } from '../support/fixtures.js';
import { CACHE_DIR, tinyLlamaFile } from '../support/tiny-llama.js';

/** The tiny LLaMA's width: the projector is made for it. */
const WIDTH = 96;

export const CLIP = fixture('videollama-tiny-a', 'inputs/clip.mp4');
export const WAV = fixture('videollama-tiny-a', 'inputs/audio.wav');

/** Paths of the tiny LLM and of a tiny random projector of its width (made once in .cache). */
export async function tinyModelFiles(): Promise<{ llm: string; projector: string }> {
  const [llm, projector] = await Promise.all([tinyLlamaFile({ embeddingWidth: WIDTH }), cachedRandomProjector(CACHE_DIR, tinyProjector(WIDTH))]);
  return { llm, projector };
}

/** Loads the tiny models (one thread), with `options` over the defaults. */
export async function loadTinyEngine(options: Partial<EngineOptions> = {}): Promise<Engine> {
  return Engine.load({ ...await tinyModelFiles(), threads: 1, contextSize: 1024, ...options });
}

/** One reply as a {@link watchedEngine} saw it. */
export interface WatchedReply {
  /** Text pieces generated. */
  pieces: number;
  /** Pieces generated after the request's signal had aborted. */
  piecesAfterAbort: number;
  /** The reply has ended (resolved or rejected). */
  settled: boolean;
}

/**
 * The engine with each reply recorded in `log`. With `endless`, a reply never ends by itself:
 * the real generation starts again each time it finishes, so only an abort (the client gone, a
 * time limit, a shutdown) ends it.
 */
export function watchedEngine(inner: Engine, log: WatchedReply[], { endless = false } = {}): Engine {
  const watched = Object.create(inner) as Engine;
  watched.reply = async (request, onText) => {
    const entry: WatchedReply = { pieces: 0, piecesAfterAbort: 0, settled: false };
    log.push(entry);
    const counted = (text: string): void => {
      entry.pieces++;
      if (request.signal.aborted) entry.piecesAfterAbort++;
      onText(text);
    };
    try {
      for (;;) {
        const result = await inner.reply(request, counted);
        if (!endless) return result;
      }
    } finally {
      entry.settled = true;
    }
  };
  return watched;
}

/** A listening server and its base URL. */
export interface RunningServer {
  server: VideoLlamaServer;
  url: string;
}

/** Starts a server on a free loopback port, quiet unless `logger` says otherwise. */
export async function startServer(options: Omit<StandaloneOptions, 'engine'> & { engine: StandaloneOptions['engine'] }): Promise<RunningServer> {
  const server = await createServer({ logger: false, webRoot: false, ...options });
  const url = await server.listen(0, '127.0.0.1');
  return { server, url };
}

/** A PNG of the clip's first frame, made once in .cache. */
export async function pngFrame(): Promise<string> {
  const file = path.join(CACHE_DIR, 'server-test-frame.png');
  try {
    await fs.access(file);
  } catch {
    await fs.mkdir(CACHE_DIR, { recursive: true });
    const partial = `${file}.${process.pid}.png`;
    const result = await runFfmpeg(['-y', '-i', CLIP, '-frames:v', '1', partial], { what: 'making a test frame' });
    if (result.code !== 0) throw new Error(`ffmpeg failed: ${result.stderr.slice(-500)}`);
    await fs.rename(partial, file);
  }
  return file;
}

/** A file as a base64 data URL. */
export async function dataUrl(file: string, type: string): Promise<string> {
  return `data:${type};base64,${(await fs.readFile(file)).toString('base64')}`;
}

/** The server's Prometheus text, one metric's value (summed over its label sets). */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
