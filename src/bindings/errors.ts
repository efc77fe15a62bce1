/**
 * Errors from the native addon: the codes it may reject or throw with (native/core/error.h's
 * vl::Error codes and the addon's own), and the one translation into {@link VideoLlamaError}.
 * @module
 */
import { VideoLlamaError, type VideoLlamaErrorCode } from '../errors.js';

/** Every `code` a native rejection or throw may carry. */
export const NATIVE_ERROR_CODES: ReadonlySet<VideoLlamaErrorCode> = new Set<VideoLlamaErrorCode>([
  'INVALID_ARGUMENT', 'FILE_NOT_FOUND', 'INVALID_MODEL', 'MISSING_TENSOR', 'TENSOR_SHAPE', 'DIMENSION_MISMATCH',
  'CONTEXT_OVERFLOW', 'ABORTED', 'DISPOSED', 'GPU_UNAVAILABLE', 'NATIVE',
]);

/**
 * A native error as a {@link VideoLlamaError} (its code, or NATIVE for an error without a known
 * code, e.g. a TypeError from argument unpacking), with `details` (e.g. the file it concerns);
 * a VideoLlamaError passes through.
 */
export function fromNative(error: unknown, details?: Record<string, unknown>): VideoLlamaError {
  if (error instanceof VideoLlamaError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const known = typeof code === 'string' && NATIVE_ERROR_CODES.has(code as VideoLlamaErrorCode);
  return new VideoLlamaError(known ? (code as VideoLlamaErrorCode) : 'NATIVE', message, details, { cause: error });
}

/** Runs a native call, converting its error with {@link fromNative} (thrown from the caller's stack). */
export async function callNative<T>(call: () => T | Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNative(error);
  }
}

/** Synchronous {@link callNative}. */
export function callNativeSync<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromNative(error);
  }
}
