/**
 * What every slow native job takes: an AbortFlag (native/addon/abort_flag.h) and a progress
 * callback. Types only, so that every binding module can name them.
 * @module
 */

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
