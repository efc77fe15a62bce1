/**
 * Typed errors. Every error this library throws on purpose is a {@link VideoLlamaError}
 * whose {@link VideoLlamaError.code | code} says what went wrong.
 * @module
 */

/**
 * What went wrong, as a stable machine-readable code.
 *
 * - `INVALID_ARGUMENT`: an argument has the wrong type or value (checked before any native call).
 * - `FILE_NOT_FOUND`: a model or media file does not exist or cannot be read.
 * - `INVALID_MODEL`: a file is not the kind of model expected, is truncated or corrupt.
 * - `MISSING_TENSOR` / `TENSOR_SHAPE`: a checkpoint or GGUF lacks a tensor or has it in a wrong shape.
 * - `UNSAFE_CHECKPOINT`: a PyTorch checkpoint references code it may not run.
 * - `DIMENSION_MISMATCH`: an embedding's width does not match the LLM's.
 * - `CONTEXT_OVERFLOW`: the prompt does not fit in the context window.
 * - `LIMIT_EXCEEDED`: an input is over a limit the caller set (pixels, duration, upload bytes);
 *   `details.limit` names it. Refused before anything heavy runs.
 * - `ABORTED`: the operation was cancelled through its `AbortSignal`.
 * - `DISPOSED`: the object was used after `dispose()`.
 * - `NO_FREE_SEQUENCE`: every sequence of a context is in use (dispose a chat, or create the context with more).
 * - `BUSY`: too many operations are queued (e.g. `maxQueuedEncodes`); `details.queued` says how many. Retry later.
 * - `MEDIA_DECODE`: ffmpeg could not decode the media (corrupt, empty, unsupported).
 * - `NO_VIDEO_STREAM` / `NO_AUDIO_STREAM`: the media file has no such stream.
 * - `FFMPEG_NOT_FOUND`: no ffmpeg executable could be found.
 * - `WRITE_FAILED`: an output file could not be written (disk full, permissions).
 * - `GPU_UNAVAILABLE`: the GPU asked for with the `gpu` load option is not installed, does not
 *   load (e.g. no driver) or has no device.
 * - `INVALID_OUTPUT`: a constrained answer did not parse or validate (e.g. cut off by `maxTokens`).
 * - `NATIVE`: the native addon failed or could not be loaded.
 */
export type VideoLlamaErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FILE_NOT_FOUND'
  | 'INVALID_MODEL'
  | 'MISSING_TENSOR'
  | 'TENSOR_SHAPE'
  | 'UNSAFE_CHECKPOINT'
  | 'DIMENSION_MISMATCH'
  | 'CONTEXT_OVERFLOW'
  | 'LIMIT_EXCEEDED'
  | 'ABORTED'
  | 'DISPOSED'
  | 'NO_FREE_SEQUENCE'
  | 'BUSY'
  | 'MEDIA_DECODE'
  | 'NO_VIDEO_STREAM'
  | 'NO_AUDIO_STREAM'
  | 'FFMPEG_NOT_FOUND'
  | 'WRITE_FAILED'
  | 'GPU_UNAVAILABLE'
  | 'INVALID_OUTPUT'
  | 'NATIVE';

/**
 * The error type of this library.
 *
 * @example
 * ```ts
 * try {
 *   await LlmModel.load('missing.gguf');
 * } catch (error) {
 *   if (error instanceof VideoLlamaError && error.code === 'FILE_NOT_FOUND') console.error(error.message);
 * }
 * ```
 */
export class VideoLlamaError extends Error {
  /** What went wrong; see {@link VideoLlamaErrorCode}. */
  readonly code: VideoLlamaErrorCode;
  /** Structured details (the thing that was wrong, what was expected, what was found). */
  readonly details?: Readonly<Record<string, unknown>>;

  constructor(code: VideoLlamaErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VideoLlamaError';
    this.code = code;
    this.details = details;
  }
}

/** Describes a received value for an error message: `5 of type number`, `[3, 10, 10] of type array`, `a Uint8Array of length 5`. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) {
    const shown = value.length <= 8 && value.every((v) => typeof v === 'number' || typeof v === 'boolean');
    return shown ? `[${value.join(', ')}] of type array` : `an array of length ${value.length}`;
  }
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${'length' in value ? value.length : value.byteLength}`;
  const type = typeof value;
  const text = typeof value === 'string' ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
    : typeof value === 'number' || typeof value === 'boolean' ? String(value) : type;
  return text === type ? `a value of type ${type}` : `${text} of type ${type}`;
}

/**
 * The error for a bad argument, worded like sharp's:
 * `Expected <what> for <name> but received <value> of type <type>`.
 * @internal
 */
export function invalidArgument(name: string, expected: string, received: unknown): VideoLlamaError {
  return new VideoLlamaError('INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${describeValue(received)}`, {
    name,
    expected,
  });
}

/**
 * The error for an operation cancelled through an AbortSignal; `details.operation` names it
 * (with any more details, e.g. a reply's partial text). @internal
 */
export function abortedError(what: string, signal?: AbortSignal, details?: Record<string, unknown>): VideoLlamaError {
  return new VideoLlamaError('ABORTED', `${what} was aborted`, { operation: what, ...details }, { cause: signal?.reason });
}

/** Throws INVALID_ARGUMENT unless `signal` is an AbortSignal or undefined. */
export function validateSignal(signal: unknown, name = 'options.signal'): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument(name, 'an AbortSignal', signal);
}

/** Throws {@link abortedError} if the signal is already aborted. @internal */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal);
}

/**
 * Reports something the library changed or ignored in what it was asked (a `threads` value
 * clamped, `gpuLayers` without a GPU) as a Node process warning: `name` is `'VideoLlamaWarning'`
 * and `code` is `VIDEO_LLAMA_<code>`, so `process.on('warning', …)` can tell them apart (Node
 * prints them to stderr unless `--no-warnings`). @internal
 */
export function emitWarning(code: string, message: string): void {
  process.emitWarning(message, { type: 'VideoLlamaWarning', code: `VIDEO_LLAMA_${code}` });
}

/**
 * Throws INVALID_ARGUMENT naming the first NaN or infinity in `values` (`details.index`): a
 * non-finite input would flow through the encoders or the LLM into garbage output. A plain
 * loop: ~1 ms for the 1.2 M values of an 8-frame video tensor. @internal
 */
export function requireFinite(values: Float32Array, name: string, what = 'values'): void {
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value - value !== 0) { // NaN - NaN and ±Infinity - ±Infinity are NaN; every finite x - x is 0
      throw new VideoLlamaError('INVALID_ARGUMENT', `Expected finite ${what} for ${name} but element ${i} is ${value}`,
        { name, index: i, value });
    }
  }
}
