/**
 * Writing a scene to a real media file with ffmpeg: the rendered frames go to ffmpeg's stdin as raw
 * rgb24 and the PCM as raw float32 through a second pipe (file descriptor 3), so no temporary
 * frame files exist. Files are written under a temporary name and renamed when ffmpeg succeeded,
 * so a file that exists under its final name is complete.
 * @module
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';

import { abortedError, throwIfAborted, VideoLlamaError } from '../errors.js';
import { type FfmpegResult, lastStderrLine, locateFfmpeg } from '../media/ffmpeg.js';
import { frameSequence, renderAudio } from './render.js';
import type { Container, Scene } from './scene.js';

/** How ffmpeg writes one container: muxer, and codec arguments for its video and audio streams. */
interface ContainerCodecs {
  muxer: string;
  video?: readonly string[];
  audio?: readonly string[];
}

/** Still images are one frame of the image2 muxer. */
const IMAGE = { muxer: 'image2' } as const;

/**
 * The codecs of each container. The generator's own files use mp4 (H.264 + AAC), png/jpg, wav/mp3;
 * the other formats serve the other-tool clips.
 */
export const CONTAINER_CODECS: Readonly<Record<Container, ContainerCodecs>> = {
  mp4: { muxer: 'mp4', video: ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p'], audio: ['-c:a', 'aac', '-b:a', '96k'] },
  mov: { muxer: 'mov', video: ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '24', '-pix_fmt', 'yuv420p'], audio: ['-c:a', 'aac', '-b:a', '64k'] },
  webm: { muxer: 'webm', video: ['-c:v', 'libvpx', '-b:v', '800k', '-auto-alt-ref', '0', '-pix_fmt', 'yuv420p'], audio: ['-c:a', 'libopus', '-b:a', '64k', '-ar', '48000'] },
  mkv: { muxer: 'matroska', video: ['-c:v', 'mpeg4', '-q:v', '4', '-pix_fmt', 'yuv420p'], audio: ['-c:a', 'flac'] },
  avi: { muxer: 'avi', video: ['-c:v', 'mpeg4', '-q:v', '5', '-pix_fmt', 'yuv420p'], audio: ['-c:a', 'libmp3lame', '-q:a', '4'] },
  png: { ...IMAGE, video: ['-c:v', 'png', '-pix_fmt', 'rgb24'] },
  jpg: { ...IMAGE, video: ['-c:v', 'mjpeg', '-q:v', '3'] },
  bmp: { ...IMAGE, video: ['-c:v', 'bmp', '-pix_fmt', 'bgr24'] },
  webp: { ...IMAGE, video: ['-c:v', 'libwebp', '-quality', '85'] },
  wav: { muxer: 'wav', audio: ['-c:a', 'pcm_s16le'] },
  mp3: { muxer: 'mp3', audio: ['-c:a', 'libmp3lame', '-q:a', '4'] },
  flac: { muxer: 'flac', audio: ['-c:a', 'flac'] },
  ogg: { muxer: 'ogg', audio: ['-c:a', 'libvorbis', '-q:a', '4'] },
  m4a: { muxer: 'ipod', audio: ['-c:a', 'aac', '-b:a', '96k'] },
};

/**
 * ffmpeg's output arguments for a scene in its container: codecs of the streams the scene has,
 * one frame for images, one encoder thread (datasets run several ffmpegs side by side).
 * @internal
 */
export function outputArgs(scene: Scene): string[] {
  const codecs = CONTAINER_CODECS[scene.container];
  const args = ['-threads', '1'];
  if (scene.picture) args.push(...(codecs.video ?? []), ...(scene.kind === 'image' ? ['-frames:v', '1', '-update', '1'] : []));
  if (scene.audio) args.push(...(codecs.audio ?? []));
  if (!scene.picture) args.push('-vn');
  if (!scene.audio) args.push('-an');
  args.push('-f', codecs.muxer);
  return args;
}

/** The file name of a scene: `<id>.<container>`. */
export function sceneFileName(scene: Scene): string {
  return `${scene.id}.${scene.container}`;
}

/**
 * Runs `write(partialFile)` and renames the partial file to `file` only when it succeeded (the
 * partial file is removed otherwise), so a complete file is the only thing ever at `file`.
 * @internal
 */
export async function writeAtomically(file: string, write: (partialFile: string) => Promise<void>): Promise<void> {
  const partial = path.join(path.dirname(file), `.${path.basename(file)}.partial`);
  try {
    await write(partial);
    await fs.rename(partial, file);
  } catch (error) {
    await fs.rm(partial, { force: true });
    throw error;
  }
}

/** Options of {@link writeSceneFile}. */
export interface WriteSceneOptions {
  signal?: AbortSignal;
}

/**
 * Renders a scene and writes it to `file` with ffmpeg in the scene's container (see
 * {@link CONTAINER_CODECS}): mp4 H.264 + AAC for videos with sound, mp4 without audio for silent
 * videos, png/jpg for images, wav/mp3 for sounds (the other-tool formats work too). The frames are
 * rendered one at a time while ffmpeg encodes, so memory stays at a few frames.
 *
 * @example
 * ```ts
 * const scene = makeScene('train', 7, 0);
 * await writeSceneFile(scene, `out/${sceneFileName(scene)}`);
 * ```
 * @throws VideoLlamaError `WRITE_FAILED` (ffmpeg failed; its last message is quoted),
 *   `FFMPEG_NOT_FOUND`, `ABORTED`.
 */
export async function writeSceneFile(scene: Scene, file: string, options: WriteSceneOptions = {}): Promise<void> {
  const what = `writing ${path.basename(file)}`;
  throwIfAborted(options.signal, what);
  const executable = await locateFfmpeg();
  await writeAtomically(file, (partial) => encodeWithPipes(executable, scene, partial, what, options.signal));
}

/** ffmpeg's input arguments for the raw streams: video on stdin (pipe:0), audio on pipe:3 (or stdin when alone). */
function rawInputArgs(scene: Scene): string[] {
  const args: string[] = [];
  const { picture, audio } = scene;
  if (picture) {
    const rate = picture.fps > 0 ? picture.fps : 1;
    args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${picture.width}x${picture.height}`, '-framerate', String(rate), '-i', 'pipe:0');
  }
  if (audio) args.push('-f', 'f32le', '-ar', String(audio.sampleRate), '-ac', '1', '-i', picture ? 'pipe:3' : 'pipe:0');
  return args;
}

async function encodeWithPipes(executable: string, scene: Scene, output: string, what: string, signal?: AbortSignal): Promise<void> {
  const twoPipes = scene.picture !== undefined && scene.audio !== undefined;
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...rawInputArgs(scene), ...outputArgs(scene), output];
  const child = spawn(executable, args, { stdio: ['pipe', 'ignore', 'pipe', ...(twoPipes ? ['pipe' as const] : [])] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => { stderr = (stderr + text).slice(-8192); });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const onAbort = (): void => { child.kill('SIGKILL'); };
  signal?.addEventListener('abort', onAbort, { once: true });
  const audioPipe = twoPipes ? child.stdio[3] as Writable : child.stdin!;
  // Both pipes are fed at once: ffmpeg may read its inputs in any order without a deadlock.
  const feeding = Promise.allSettled([
    scene.picture ? feed(child.stdin!, frameSequence(scene)) : undefined,
    scene.audio ? feed(audioPipe, [pcmBytes(renderAudio(scene))]) : undefined,
  ]);
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new VideoLlamaError('FFMPEG_NOT_FOUND', `could not run ffmpeg at ${executable}: ${(error as Error).message}`, { executable }, { cause: error });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  await feeding; // a pipe closed early by a failing ffmpeg is reported through its exit code below
  if (signal?.aborted) throw abortedError(what, signal);
  if (code !== 0) throw writeFailed(what, output, scene, { code, stderr });
}

/** The `WRITE_FAILED` error of an ffmpeg run that wrote `file`, quoting ffmpeg's last message. @internal */
export function writeFailed(what: string, file: string, scene: Scene, result: FfmpegResult): VideoLlamaError {
  return new VideoLlamaError('WRITE_FAILED', `ffmpeg failed ${what}: ${lastStderrLine(result.stderr)}`,
    { file, scene: scene.id, container: scene.container, exitCode: result.code });
}

function pcmBytes(samples: Float32Array): Uint8Array {
  return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
}

/** Writes each chunk, waiting for the pipe to drain (rendering pauses while ffmpeg catches up), then ends it. */
async function feed(pipe: Writable, chunks: Iterable<Uint8Array>): Promise<void> {
  pipe.on('error', () => { /* EPIPE when ffmpeg exits early: its exit code tells why */ });
  for (const chunk of chunks) {
    if (pipe.destroyed) return;
    if (!pipe.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => { pipe.off('drain', done); pipe.off('close', done); resolve(); };
        pipe.on('drain', done);
        pipe.on('close', done);
      });
    }
  }
  pipe.end();
}
