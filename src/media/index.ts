/**
 * Decoding media with ffmpeg (no ffprobe needed): open a file once (one probe), then take frames
 * at given indices and size, PCM of given sample ranges, or a still picture. Preprocessing
 * (sampling, resizing, normalising, fbank) is `processors/`.
 * @module
 */
export { probe, type MediaProbe, type ProbeOptions, type SourceKind, type StreamInfo } from './probe.js';
export { DEFAULT_LIMIT_INPUT_PIXELS, MediaSource, type DecodeOptions, type RgbFrames } from './source.js';
export { type MediaInput } from './input.js';
export { locateFfmpeg, FFMPEG_PATH_ENV } from './ffmpeg.js';
