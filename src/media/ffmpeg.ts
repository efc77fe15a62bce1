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

import { abortedError, throwIfAborted, VideoLlamaError } from '../errors.js';

/** Environment variable naming an ffmpeg executable (checked after the `ffmpeg-static` package). */
export const FFMPEG_PATH_ENV = 'FFMPEG_PATH';

/** How much of ffmpeg's stderr is kept (the end of it), in characters. */
const STDERR_TAIL_CHARS = 64 * 1024;

let located: Promise<string> | undefined;

/**
 * The ffmpeg executable to use, looked up once: the optional dependency `ffmpeg-static` (when its
 * binary was actually downloaded), then `$FFMPEG_PATH`, then `ffmpeg` on `PATH`.
 * @throws VideoLlamaError `FFMPEG_NOT_FOUND` when none of them exists.
 */
export function locateFfmpeg(): Promise<string> {
  located ??= findFfmpeg();
  return located.catch((error: unknown) => {
    located = undefined; // a later call may succeed once ffmpeg is installed
    throw error;
  });
}

async function findFfmpeg(): Promise<string> {
  const candidates: Array<[string, string | undefined]> = [
    ['the ffmpeg-static package', await ffmpegStaticPath()],
    [`$${FFMPEG_PATH_ENV}`, process.env[FFMPEG_PATH_ENV] || undefined],
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
  /** The last {@link STDERR_TAIL_CHARS} characters of stderr. */
  stderr: string;
}

/** Options of {@link runFfmpeg}. */
export interface RunFfmpegOptions {
  /** Receives stdout chunk by chunk; throwing stops ffmpeg and rejects the run with that error. */
  onStdout?: (chunk: Buffer) => void;
  /** Kills ffmpeg and rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** What is being done, for error messages ("decoding video frames"). */
  what: string;
}

/**
 * Runs ffmpeg with `args` (after `-hide_banner -nostdin`) and resolves when it exits, whatever its
 * exit code: callers interpret failures (see {@link decodeFailure}).
 */
export async function runFfmpeg(args: readonly string[], options: RunFfmpegOptions): Promise<FfmpegResult> {
  throwIfAborted(options.signal, options.what);
  const executable = await locateFfmpeg();
  return new Promise<FfmpegResult>((resolve, reject) => {
    const child = spawn(executable, ['-hide_banner', '-nostdin', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
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
      else resolve({ code, stderr });
    };

    child.stdout.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      try {
        options.onStdout?.(chunk);
      } catch (error) {
        stop(error);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL_CHARS);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      failure ??= new VideoLlamaError('FFMPEG_NOT_FOUND', `could not run ffmpeg at ${executable}: ${error.message}`,
        { executable }, { cause: error });
      if (child.pid === undefined) finish(null); // never started: no 'close' to wait for
    });
    child.on('close', finish);
  });
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

let fpsModeArgs: Promise<string[]> | undefined;

/**
 * The arguments that make ffmpeg pass every selected frame through unchanged (no frame
 * duplication or dropping to a constant rate): `-fps_mode passthrough` since FFmpeg 5.1,
 * `-vsync passthrough` before.
 */
export function passthroughFrameArgs(signal?: AbortSignal): Promise<string[]> {
  fpsModeArgs ??= ffmpegVersion(signal).then((version) =>
    version && (version[0] < 5 || (version[0] === 5 && version[1] === 0))
      ? ['-vsync', 'passthrough']
      : ['-fps_mode', 'passthrough'],
  ).catch((error: unknown) => {
    fpsModeArgs = undefined;
    throw error;
  });
  return fpsModeArgs;
}

/** [major, minor] of the ffmpeg release, or undefined for builds from git (which are recent). */
async function ffmpegVersion(signal?: AbortSignal): Promise<[number, number] | undefined> {
  let stdout = '';
  await runFfmpeg(['-version'], { what: 'reading the ffmpeg version', signal, onStdout: (chunk) => { stdout += chunk.toString(); } });
  const match = /ffmpeg version n?(\d+)\.(\d+)/.exec(stdout);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}
