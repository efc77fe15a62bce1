/**
 * The one way an AbortSignal reaches native work: a native AbortFlag per job (an atomic flag the
 * worker polls: libllama's progress and abort callbacks, ggml's backend abort callback), set from
 * the signal's 'abort' event. A caller's progress callback reaches native work through here too,
 * so that what it throws never reaches N-API.
 * @module
 */
import { abortedError, throwIfAborted, type VideoLlamaError } from '../errors.js';
import { addon } from './addon.js';
import { fromNative } from './errors.js';
import type { AbortFlag } from './job.js';

export type { AbortFlag, NativeJob } from './job.js';

/** What a job needs besides its signal. */
export interface JobContext<P extends unknown[]> {
  /** The caller's progress callback: an exception it throws stops the job and becomes its rejection. */
  onProgress?: (...progress: P) => void;
  /** Details of an error the job rejects with (other than ABORTED), e.g. `{ file }`. */
  details?: Record<string, unknown>;
}

/**
 * Runs `job` with an AbortFlag that `signal` sets, and a guarded copy of `context.onProgress`.
 * Throws ABORTED (naming `what`) when the signal is already aborted, and turns the job's
 * rejection into a VideoLlamaError (an ABORTED one naming `what`, with the signal's reason as its
 * cause and the job's error details, e.g. a reply's partial text). When the progress callback
 * throws, the job is stopped through its flag and the call rejects with the callback's own error
 * (as a synchronous loop calling it would): a JS exception inside a native callback would
 * otherwise escape through N-API as an uncaught exception.
 */
export async function withAbortFlag<T, P extends unknown[] = []>(what: string, signal: AbortSignal | undefined,
  job: (flag: AbortFlag | undefined, onProgress: ((...progress: P) => void) | undefined) => Promise<T>,
  context: JobContext<P> = {}): Promise<T> {
  throwIfAborted(signal, what);
  const { onProgress, details } = context;
  const flag = signal || onProgress ? new (addon().AbortFlag)() : undefined;
  let thrown: { error: unknown } | undefined;
  const guarded = onProgress && ((...progress: P): void => {
    if (thrown) return;
    try {
      onProgress(...progress);
    } catch (error) {
      thrown = { error };
      flag!.abort();
    }
  });
  const onAbort = (): void => flag?.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let result: T;
  try {
    result = await job(flag, guarded);
  } catch (error) {
    if (thrown) throw thrown.error;
    const converted: VideoLlamaError = fromNative(error, details);
    throw converted.code === 'ABORTED' ? abortedError(what, signal, converted.details) : converted;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (thrown) throw thrown.error; // the job finished before it saw the flag
  return result;
}
