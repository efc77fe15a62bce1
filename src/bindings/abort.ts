/**
 * The one way an AbortSignal reaches native work: a native AbortFlag per job (an atomic flag the
 * worker polls: libllama's progress and abort callbacks, ggml's backend abort callback), set from
 * the signal's 'abort' event.
 * @internal
 * @module
 */
import { abortedError, throwIfAborted, type VideoLlamaError } from '../errors.js';
import { addon } from './addon.js';
import { fromNative } from './errors.js';

/** native AbortFlag: `abort()` sets the flag its job polls. */
export interface AbortFlag {
  abort(): void;
}

/** Options every slow native job takes. */
export interface NativeJob<P extends unknown[] = []> {
  /** Polled by the job; ABORTED (or a `completed: false` result) once set. */
  abort?: AbortFlag;
  /** Called on the JS thread with the job's progress, before the promise settles. */
  onProgress?: (...progress: P) => void;
}

/**
 * Runs `job` with an AbortFlag that `signal` sets. Throws ABORTED (naming `what`) when the signal
 * is already aborted, and turns the job's rejection into a VideoLlamaError (an ABORTED one naming
 * `what`, with the signal's reason as its cause).
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
    throw converted.code === 'ABORTED' ? abortedError(what, signal) : converted;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
