/**
 * Finding the ffmpeg executable and running it as a child process.
 *
 * ffmpeg always runs asynchronously (never blocking the event loop); its stdout is handed to a
 * consumer chunk by chunk so that large decodes can be streamed, and its stderr is kept only as a
 * short tail for error messages. ffprobe is never needed (ffmpeg-static does not ship one).
 * @internal
 * @module
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { abortedError, throwIfAborted, VideoLlamaError } from '../errors.js';

/** Environment variable naming the ffmpeg executable to use (when set, it is the only one tried). */
export const FFMPEG_PATH_ENV = 'FFMPEG_PATH';

/** How much of ffmpeg's stderr is kept, in characters: this much of its start and of its end. */
const STDERR_KEPT_CHARS = 64 * 1024;

let located: Promise<string> | undefined;

/**
 * The ffmpeg executable to use, looked up once: `$FFMPEG_PATH` when it is set (and then nothing
 * else: a wrong value is an error, not a silent fallback), else the optional dependency
 * `ffmpeg-static` (when its binary was actually downloaded), else `ffmpeg` on `PATH`.
 * @throws VideoLlamaError `FFMPEG_NOT_FOUND` when `$FFMPEG_PATH` is not an executable file, or
 *   when it is unset and neither of the others exists.
 */
export function locateFfmpeg(): Promise<string> {
  located ??= findFfmpeg();
  return located.catch((error: unknown) => {
    located = undefined; // a later call may succeed once ffmpeg is installed
    throw error;
  });
}

async function findFfmpeg(): Promise<string> {
  const fromEnv = process.env[FFMPEG_PATH_ENV];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new VideoLlamaError('FFMPEG_NOT_FOUND',
      `${FFMPEG_PATH_ENV} is set to ${fromEnv}, which is not an executable file; point it at an ffmpeg executable or unset it`,
      { variable: FFMPEG_PATH_ENV, file: fromEnv });
  }
  const candidates: Array<[string, string | undefined]> = [
    ['the ffmpeg-static package', await ffmpegStaticPath()],
    ['PATH', findOnPath(process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg')],
  ];
  for (const [, file] of candidates) {
    if (file !== undefined && isExecutable(file)) return file;
  }
  const tried = candidates.map(([where, file]) => `${where}${file ? ` (${file})` : ''}`).join(', ');
  throw new VideoLlamaError('FFMPEG_NOT_FOUND',
    `ffmpeg was not found; looked in ${tried}. Install ffmpeg (e.g. \`apt-get install ffmpeg\`) or set ${FFMPEG_PATH_ENV}.`,
    { tried: candidates.map(([where, file]) => ({ where, file })) });
}

/** The binary path exported by `ffmpeg-static`, if the package and its binary are installed. */
async function ffmpegStaticPath(): Promise<string | undefined> {
  const packageName = 'ffmpeg-static'; // a variable: the package is optional and has no types
  try {
    const module = (await import(packageName)) as { default?: unknown };
    return typeof module.default === 'string' ? module.default : undefined;
  } catch {
    return undefined;
  }
}

function findOnPath(executable: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, executable);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** How one ffmpeg run ended. */
export interface FfmpegResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  /**
   * stderr: all of it, or its first and last {@link STDERR_KEPT_CHARS} characters joined by a
   * `…` line (ffmpeg describes the input at the start and explains a failure at the end).
   */
  stderr: string;
}

/** Options of {@link runFfmpeg}. */
export interface RunFfmpegOptions {
  /** Receives stdout (`pipe:1`) chunk by chunk; throwing stops ffmpeg and rejects the run with that error. */
  onStdout?: (chunk: Buffer) => void;
  /** Receives a second output written to `pipe:3`, like {@link RunFfmpegOptions.onStdout}. */
  onPipe3?: (chunk: Buffer) => void;
  /** Kills ffmpeg and rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** What is being done, for error messages ("decoding video frames"). */
  what: string;
  /** Let ffmpeg print its banner (the version, remembered for {@link passthroughFrameArgs}); default false. */
  banner?: boolean;
}

/** Something told about every ffmpeg process started (see {@link observeFfmpegSpawns}). */
export type FfmpegSpawnListener = (args: readonly string[]) => void;

const spawnListeners = new Set<FfmpegSpawnListener>();

/**
 * Calls `listener` with the arguments of every ffmpeg process this module starts from now on,
 * until the returned function is called. This module is the only place that starts ffmpeg, so
 * the calls are an exact count (tests use it to hold the media path to its process budget).
 * @internal
 */
export function observeFfmpegSpawns(listener: FfmpegSpawnListener): () => void {
  spawnListeners.add(listener);
  return () => spawnListeners.delete(listener);
}

/**
 * Runs ffmpeg with `args` (after `-nostdin`, and `-hide_banner` unless `options.banner`) and
 * resolves when it exits, whatever its exit code: callers interpret failures (see
 * {@link decodeFailure}).
 */
export async function runFfmpeg(args: readonly string[], options: RunFfmpegOptions): Promise<FfmpegResult> {
  throwIfAborted(options.signal, options.what);
  const executable = await locateFfmpeg();
  const fullArgs = [...(options.banner ? [] : ['-hide_banner']), '-nostdin', ...args];
  for (const listener of spawnListeners) listener(fullArgs);
  const result = await new Promise<FfmpegResult>((resolve, reject) => {
    const child = spawn(executable, fullArgs, { stdio: ['ignore', 'pipe', 'pipe', ...(options.onPipe3 ? ['pipe' as const] : [])] });
    const stderr = new HeadAndTail(STDERR_KEPT_CHARS);
    let failure: unknown;
    const stop = (error: unknown): void => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const onAbort = (): void => stop(abortedError(options.what, options.signal));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort(); // aborted while ffmpeg was being located
    // Settles only once ffmpeg has exited, so an ABORTED rejection means the process is gone.
    const finish = (code: number | null): void => {
      options.signal?.removeEventListener('abort', onAbort);
      if (failure !== undefined) reject(failure);
      else resolve({ code, stderr: stderr.text() });
    };
    const consume = (consumer: ((chunk: Buffer) => void) | undefined) => (chunk: Buffer): void => {
      if (failure !== undefined) return;
      try {
        consumer?.(chunk);
      } catch (error) {
        stop(error);
      }
    };
    child.stdout!.on('data', consume(options.onStdout));
    (child.stdio[3] as Readable | undefined)?.on('data', consume(options.onPipe3));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => stderr.add(text));
    child.on('error', (error: NodeJS.ErrnoException) => {
      failure ??= new VideoLlamaError('FFMPEG_NOT_FOUND', `could not run ffmpeg at ${executable}: ${error.message}`,
        { executable }, { cause: error });
      if (child.pid === undefined) finish(null); // never started: no 'close' to wait for
    });
    child.on('close', finish);
  });
  if (options.banner) rememberVersion(result.stderr);
  return result;
}

/** Keeps the first and the last `limit` characters of a growing text. */
class HeadAndTail {
  private head = '';
  private tail = '';
  private dropped = false;

  constructor(private readonly limit: number) {}

  add(text: string): void {
    const room = this.limit - this.head.length;
    if (room > 0) {
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    const joined = this.tail + text;
    if (joined.length > this.limit) this.dropped = true;
    this.tail = joined.slice(-this.limit);
  }

  text(): string {
    return this.dropped ? `${this.head}\n…\n${this.tail}` : this.head + this.tail;
  }
}

/** The last meaningful line ffmpeg wrote to stderr (its own explanation of a failure). */
export function lastStderrLine(stderr: string): string {
  const lines = stderr.split(/\r?\n|\r/).map((line) => line.trim()).filter(Boolean);
  return lines.at(-1) ?? 'no message from ffmpeg';
}

/** The `MEDIA_DECODE` error for a failed ffmpeg run, quoting ffmpeg's last stderr line. */
export function decodeFailure(what: string, file: string, result: FfmpegResult): VideoLlamaError {
  const reason = lastStderrLine(result.stderr);
  return new VideoLlamaError('MEDIA_DECODE', `ffmpeg failed ${what} (${path.basename(file)}): ${reason}`,
    { file, exitCode: result.code, ffmpeg: reason });
}

/** [major, minor] of the ffmpeg release; null for builds from git (which are recent); undefined until seen. */
let version: [number, number] | null | undefined;

/** Notes the version from a banner or `-version` output (`ffmpeg version 5.1.9-0+deb12u1 ...`). */
function rememberVersion(stderr: string): void {
  const banner = /^ffmpeg version (\S+)/m.exec(stderr);
  if (!banner) return;
  const release = /^n?(\d+)\.(\d+)/.exec(banner[1]!);
  version = release ? [Number(release[1]), Number(release[2])] : null;
}

/**
 * The arguments that make ffmpeg pass every selected frame through unchanged (no frame
 * duplication or dropping to a constant rate): `-fps_mode passthrough` since FFmpeg 5.1,
 * `-vsync passthrough` before. The version comes from the banner of an earlier run (a probe);
 * only without one is `ffmpeg -version` run.
 */
export async function passthroughFrameArgs(signal?: AbortSignal): Promise<string[]> {
  if (version === undefined) {
    let stdout = '';
    await runFfmpeg(['-version'], { what: 'reading the ffmpeg version', signal, onStdout: (chunk) => { stdout += chunk.toString(); } });
    rememberVersion(stdout);
    version ??= null; // no version line: not a release build
  }
  return version && (version[0] < 5 || (version[0] === 5 && version[1] === 0))
    ? ['-vsync', 'passthrough']
    : ['-fps_mode', 'passthrough'];
}
