/**
 * The one way an AbortSignal reaches native work: a native AbortFlag per job (an atomic flag the
 * worker polls: libllama's progress and abort callbacks, ggml's backend abort callback), set from
 * the signal's 'abort' event.
 * @module
 */
import { abortedError, throwIfAborted, type VideoLlamaError } from '../errors.js';
import { addon } from './addon.js';
import { fromNative } from './errors.js';
import type { AbortFlag } from './job.js';

export type { AbortFlag, NativeJob } from './job.js';

/**
 * Runs `job` with an AbortFlag that `signal` sets. Throws ABORTED (naming `what`) when the signal
 * is already aborted, and turns the job's rejection into a VideoLlamaError (an ABORTED one naming
 * `what`, with the signal's reason as its cause and the job's error details, e.g. a reply's partial text).
 */
export async function withAbortFlag<T>(what: string, signal: AbortSignal | undefined, job: (flag: AbortFlag | undefined) => Promise<T>): Promise<T> {
  throwIfAborted(signal, what);
  const flag = signal ? new (addon().AbortFlag)() : undefined;
  const onAbort = (): void => flag?.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await job(flag);
  } catch (error) {
    const converted: VideoLlamaError = fromNative(error);
    throw converted.code === 'ABORTED' ? abortedError(what, signal, converted.details) : converted;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
