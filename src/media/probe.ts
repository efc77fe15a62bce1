/**
 * Probing media with ffmpeg alone (no ffprobe), in one pass over the file: the stream list ffmpeg
 * prints for its input, the exact packet count of the video stream (a stream copy, nothing
 * decoded) and the exact sample count of the audio stream (decoded, nothing kept).
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { decodeFailure, runFfmpeg } from './ffmpeg.js';
import { ffmpegInput, type MediaFetchOptions, type MediaInput, validateMediaInput, validateSignal, withLocalFile } from './input.js';

/** One stream of a media file, as ffmpeg describes it. */
export interface StreamInfo {
  /** Index of the stream in the container (ffmpeg's `0:<index>`). */
  index: number;
  /** What the stream carries (`other`: subtitles, data, ...). */
  type: 'video' | 'audio' | 'other';
  /** Codec name (`h264`, `aac`, `png`, ...). */
  codec: string;
  /** Video: frame width in pixels, as stored (before any rotation metadata is applied). */
  width?: number;
  /** Video: frame height in pixels, as stored. */
  height?: number;
  /** Video: average frame rate, when the container states one. */
  fps?: number;
  /** Video: a cover image attached to an audio file rather than a real video stream. */
  attachedPicture?: boolean;
  /** Audio: sample rate in Hz. */
  sampleRate?: number;
  /** Audio: channel count. */
  channels?: number;
}

/**
 * What a media file is to the encoders: a video (more than one frame), a still image (one
 * frame: png, jpg, webp, bmp, tiff, a one-frame gif or video) or audio (no picture, or only a
 * cover picture).
 */
export type SourceKind = 'video' | 'image' | 'audio';

/** What {@link probe} found in a media file. */
export interface MediaProbe {
  /** What the file is (see {@link SourceKind}); undefined for a file with neither picture nor sound. */
  kind?: SourceKind;
  /** Frames of the video stream: its packet count, which is decord's `len(VideoReader)`. */
  frameCount?: number;
  /** Samples per channel of {@link MediaProbe.audio} at its own rate, as decoded. */
  audioSamples?: number;
  /** Whether the file has a video stream (attached cover pictures and text rendered as video do not count). */
  hasVideo: boolean;
  /** Whether the file has an audio stream. */
  hasAudio: boolean;
  /** Container duration in seconds as ffmpeg reports it (rounded to 10 ms), when known. */
  durationSeconds?: number;
  /** The first real video stream, when there is one. */
  video?: StreamInfo;
  /** The audio stream encoders take (the first, or the one `audioStream` chose), when there is one. */
  audio?: StreamInfo;
  /** Every stream of the file. */
  streams: StreamInfo[];
}

/** Options of {@link probe}. */
export interface ProbeOptions extends MediaFetchOptions {
  /**
   * Which audio stream {@link MediaProbe.audio} and `audioSamples` describe, as the encoders'
   * `audioStream` option: its index among the file's audio streams (ffmpeg's `-map 0:a:N`);
   * default 0, the first. An index the file does not have is INVALID_ARGUMENT.
   */
  audioStream?: number;
}

/** Throws INVALID_ARGUMENT unless `value` is undefined or an integer >= 0. @internal */
export function validateAudioStream(value: unknown, name = 'options.audioStream'): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 0)) throw invalidArgument(name, 'an integer >= 0', value);
}

/**
 * What a media file is and holds: its kind (how `encodeMedia` routes it), its streams, its
 * frame count and its audio length. It reads the whole file once with one ffmpeg process
 * (copying the video packets, decoding the audio without keeping it), as the encoders' own
 * probe does.
 *
 * @example
 * ```ts
 * import { probe } from 'video-llama';
 *
 * const info = await probe('clip.mp4');
 * console.log(info.kind, info.frameCount, info.audio?.sampleRate); // e.g. video 240 44100
 * ```
 * @throws VideoLlamaError `INVALID_ARGUMENT`, `FILE_NOT_FOUND`, `MEDIA_DECODE` (not a media file, or
 *   corrupt), `FFMPEG_NOT_FOUND`, `ABORTED`.
 */
export async function probe(input: MediaInput, options: ProbeOptions = {}): Promise<MediaProbe> {
  validateMediaInput(input);
  validateSignal(options.signal);
  validateAudioStream(options.audioStream);
  return withLocalFile(input, (file) => probeFile(file, options.signal, options.audioStream), options);
}

/** {@link probe} for a local file. @internal */
export async function probeFile(file: string, signal?: AbortSignal, audioStream = 0): Promise<MediaProbe> {
  const counter = new PacketCounter();
  // The banner tells the ffmpeg version (see passthroughFrameArgs): no extra process for it.
  const result = await runFfmpeg([
    '-i', ffmpegInput(file),
    '-map', '0:V:0?', '-map', `0:a:${audioStream}?`, '-c:v', 'copy', '-copyinkf', '-c:a', 'pcm_f32le', '-f', 'framecrc', 'pipe:1',
  ], { what: 'probing', signal, banner: true, onStdout: (chunk) => counter.add(chunk) });
  const parsed = parseProbe(result.stderr, audioStream);
  if (!parsed) throw decodeFailure('to open the media', file, result);
  const audioCount = parsed.streams.filter((s) => s.type === 'audio').length;
  if (audioCount > 0 && audioStream >= audioCount) {
    throw invalidArgument('options.audioStream', `an audio stream of ${file}, from 0 to ${audioCount - 1} ` +
      `(streams: ${describeStreams(parsed).join(', ')})`, audioStream);
  }
  if (!parsed.hasVideo && !parsed.hasAudio) return parsed; // nothing to copy: ffmpeg had no output stream
  if (result.code !== 0) throw decodeFailure('to read the media', file, result);
  return withCounts(parsed, counter.totals());
}

/** The probe with the counts of the copy pass and the kind they decide. */
function withCounts(parsed: MediaProbe, totals: StreamTotals): MediaProbe {
  const frameCount = parsed.video ? totals.video?.packets ?? 0 : undefined;
  const channels = parsed.audio?.channels;
  const audioSamples = parsed.audio && channels ? (totals.audio?.bytes ?? 0) / (4 * channels) : undefined;
  const kind: SourceKind | undefined = frameCount !== undefined && frameCount > 1 ? 'video'
    : parsed.hasAudio ? 'audio' : parsed.hasVideo ? 'image' : undefined;
  return { ...parsed, kind, frameCount, audioSamples };
}

interface StreamTotals {
  video?: { packets: number; bytes: number };
  audio?: { packets: number; bytes: number };
}

/**
 * Reads ffmpeg's `framecrc` output line by line: `#media_type <i>: video|audio` header lines say
 * which output stream is which, then one `<i>, dts, pts, duration, size, crc` line per packet.
 */
class PacketCounter {
  private pending = '';
  private readonly types = new Map<number, 'video' | 'audio'>();
  private readonly counts = new Map<number, { packets: number; bytes: number }>();

  add(chunk: Buffer): void {
    const lines = (this.pending + chunk.toString('latin1')).split('\n');
    this.pending = lines.pop()!;
    for (const line of lines) this.line(line);
  }

  totals(): StreamTotals {
    if (this.pending) this.line(this.pending);
    this.pending = '';
    const totals: StreamTotals = {};
    for (const [index, type] of this.types) totals[type] = this.counts.get(index) ?? { packets: 0, bytes: 0 };
    return totals;
  }

  private line(line: string): void {
    const header = /^#media_type (\d+): (video|audio)/.exec(line);
    if (header) {
      this.types.set(Number(header[1]), header[2] as 'video' | 'audio');
      return;
    }
    if (line.startsWith('#') || line.trim() === '') return;
    const fields = line.split(',');
    const index = Number(fields[0]);
    const count = this.counts.get(index) ?? { packets: 0, bytes: 0 };
    count.packets++;
    count.bytes += Number(fields[4]);
    this.counts.set(index, count);
  }
}

/**
 * Parses the `Input #0` section of ffmpeg's stderr (`audio` is the `audioStream`-th audio
 * stream); undefined when ffmpeg could not open the input. @internal
 */
export function parseProbe(stderr: string, audioStream = 0): MediaProbe | undefined {
  const start = stderr.search(/^Input #0,/m);
  if (start < 0) return undefined;
  const end = stderr.slice(start).search(/^(Output #|Stream mapping:|At least one output)/m);
  const section = stderr.slice(start, end < 0 ? undefined : start + end);
  const streams = [...section.matchAll(/^\s*Stream #0:(\d+)\S*: (\w+): (.*)$/gm)]
    .map((match) => parseStream(Number(match[1]), match[2]!, match[3]!));
  const video = streams.find((stream) => stream.type === 'video' && !stream.attachedPicture && !TEXT_AS_VIDEO_CODECS.has(stream.codec));
  const audio = streams.filter((stream) => stream.type === 'audio')[audioStream];
  const duration = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(section);
  return {
    hasVideo: video !== undefined,
    hasAudio: streams.some((stream) => stream.type === 'audio'),
    durationSeconds: duration ? Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]) : undefined,
    video,
    audio,
    streams,
  };
}

function parseStream(index: number, kind: string, description: string): StreamInfo {
  const codec = /^([\w-]+)/.exec(description)?.[1] ?? 'unknown';
  if (kind === 'Video') {
    const size = /, (\d+)x(\d+)/.exec(description);
    const fps = /, ([\d.]+)(k?) fps/.exec(description);
    return {
      index, type: 'video', codec,
      width: size ? Number(size[1]) : undefined,
      height: size ? Number(size[2]) : undefined,
      fps: fps ? Number(fps[1]) * (fps[2] ? 1000 : 1) : undefined,
      attachedPicture: description.includes('(attached pic)'),
    };
  }
  if (kind === 'Audio') {
    const rate = /, (\d+) Hz/.exec(description);
    return { index, type: 'audio', codec, sampleRate: rate ? Number(rate[1]) : undefined, channels: parseChannels(description) };
  }
  return { index, type: 'other', codec };
}

/** Channel counts of the layout names ffmpeg prints (libavutil/channel_layout.c). */
const LAYOUT_CHANNELS: Readonly<Record<string, number>> = {
  'mono': 1, 'stereo': 2, 'downmix': 2, '2.1': 3, '3.0': 3, '3.0(back)': 3, '4.0': 4, 'quad': 4, 'quad(side)': 4,
  '3.1': 4, '5.0': 5, '5.0(side)': 5, '4.1': 5, '5.1': 6, '5.1(side)': 6, '6.0': 6, '6.0(front)': 6,
  '3.1.2': 6, 'hexagonal': 6, '6.1': 7, '6.1(back)': 7, '6.1(front)': 7, '7.0': 7, '7.0(front)': 7,
  '7.1': 8, '7.1(wide)': 8, '7.1(wide-side)': 8, '5.1.2': 8, '7.1(top)': 8, 'octagonal': 8, 'cube': 8,
  '5.1.4': 10, '7.1.2': 10, '7.1.4': 12, '7.2.3': 12, '9.1.4': 14, 'hexadecagonal': 16, '22.2': 24,
};

/**
 * "Video" codecs of ffmpeg's text demuxers (tty renders any text file as ANSI art): a text file
 * is not a video to a user, so these streams do not count as one.
 */
const TEXT_AS_VIDEO_CODECS: ReadonlySet<string> = new Set(['ansi', 'bintext', 'xbin', 'idf']);

/** Channel count from the field after "<rate> Hz, ": a layout name, "N channels", or "FL+FR+LFE". */
function parseChannels(description: string): number | undefined {
  const field = /, \d+ Hz, ([^,]+)/.exec(description)?.[1]?.trim();
  if (!field) return undefined;
  const counted = /^(\d+) channels/.exec(field);
  if (counted) return Number(counted[1]);
  if (field in LAYOUT_CHANNELS) return LAYOUT_CHANNELS[field];
  return /^[A-Z0-9]+(\+[A-Z0-9]+)+$/.test(field) ? field.split('+').length : undefined;
}

/** The probe's audio stream (the first, or the one asked for), with a known rate and channel count. @internal */
export function requireAudioStream(probe: MediaProbe, file: string): Required<Pick<StreamInfo, 'index' | 'sampleRate' | 'channels'>> {
  const audio = probe.audio;
  if (!audio) throw missingStream('NO_AUDIO_STREAM', `${file} has no audio stream`, probe, file);
  if (!audio.sampleRate || !audio.channels) {
    throw new VideoLlamaError('MEDIA_DECODE', `cannot read the sample rate and channel count of the audio stream of ${file}`,
      { file, stream: audio });
  }
  return { index: audio.index, sampleRate: audio.sampleRate, channels: audio.channels };
}

/** The probe's first real video stream. @internal */
export function requireVideoStream(probe: MediaProbe, file: string): StreamInfo {
  if (probe.video) return probe.video;
  const cover = probe.streams.some((s) => s.attachedPicture);
  throw missingStream('NO_VIDEO_STREAM', `${file} has no video stream${cover ? ', only a cover picture' : ''}`, probe, file,
    cover ? 'encodeAudio encodes its sound, encodeImage its picture' : undefined);
}

/** The stream a still picture is taken from: the first real video stream, else a cover picture. @internal */
export function requirePictureStream(probe: MediaProbe, file: string): StreamInfo {
  const picture = probe.video ?? probe.streams.find((s) => s.attachedPicture);
  if (!picture) throw missingStream('NO_VIDEO_STREAM', `${file} has no picture`, probe, file);
  return picture;
}

/**
 * Throws MEDIA_DECODE for a file ffmpeg reads only as text drawn as pictures (its text demuxers
 * render any file with a .bin, .txt, ... name): not a media file, whichever encoder is asked.
 * @internal
 */
export function requireMediaContent(probe: MediaProbe, file: string): void {
  const textOnly = probe.streams.length > 0 && probe.streams.every((s) => s.type === 'video' && TEXT_AS_VIDEO_CODECS.has(s.codec));
  if (textOnly) {
    throw new VideoLlamaError('MEDIA_DECODE', `${file} is not a picture, video or audio file: ffmpeg reads it only as text drawn as ` +
      `pictures (streams: ${describeStreams(probe).join(', ')})`, { file, streams: describeStreams(probe) });
  }
}

/** The error for a missing stream: `what`, the streams the file has, and a hint when one helps. */
function missingStream(code: 'NO_VIDEO_STREAM' | 'NO_AUDIO_STREAM', what: string, probe: MediaProbe, file: string, hint?: string): VideoLlamaError {
  const streams = describeStreams(probe);
  return new VideoLlamaError(code, `${what} (streams: ${streams.length === 0 ? 'none' : streams.join(', ')})${hint ? `: ${hint}` : ''}`,
    { file, streams });
}

/** Each stream as messages name it: `audio mp3`, `video h264`, `cover picture mjpeg`, `text bintext`. */
function describeStreams(probe: MediaProbe): string[] {
  return probe.streams.map((s) => `${s.attachedPicture ? 'cover picture' : TEXT_AS_VIDEO_CODECS.has(s.codec) ? 'text' : s.type} ${s.codec}`);
}
