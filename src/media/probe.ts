/**
 * Probing media with ffmpeg alone (no ffprobe): the stream list ffmpeg prints for `ffmpeg -i`, and
 * the exact packet count of a video stream from a stream-copy pass.
 * @module
 */
import { VideoLlamaError } from '../errors.js';
import { decodeFailure, runFfmpeg } from './ffmpeg.js';
import { type MediaInput, validateMediaInput, validateSignal, withLocalFile } from './input.js';

/** One stream of a media file, as ffmpeg describes it. */
export interface StreamInfo {
  /** Index of the stream in the container (ffmpeg's `0:<index>`). */
  index: number;
  type: 'video' | 'audio' | 'other';
  /** Codec name (`h264`, `aac`, `png`, ...). */
  codec: string;
  /** Video: frame size in pixels. */
  width?: number;
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

/** What {@link probeMedia} found in a media file. */
export interface MediaProbe {
  /** Whether the file has a video stream (attached cover pictures and text rendered as video do not count). */
  hasVideo: boolean;
  /** Whether the file has an audio stream. */
  hasAudio: boolean;
  /** Container duration in seconds as ffmpeg reports it (rounded to 10 ms), when known. */
  durationSeconds?: number;
  /** The first real video stream, when there is one. */
  video?: StreamInfo;
  /** The first audio stream, when there is one. */
  audio?: StreamInfo;
  /** Every stream of the file. */
  streams: StreamInfo[];
}

/**
 * Lists the streams of a media file.
 *
 * @example
 * ```ts
 * const probe = await probeMedia('clip.mp4');
 * if (probe.hasAudio) console.log(probe.audio!.sampleRate, probe.audio!.channels);
 * ```
 * @throws VideoLlamaError `FILE_NOT_FOUND`, `MEDIA_DECODE` (not a media file), `FFMPEG_NOT_FOUND`, `ABORTED`.
 */
export async function probeMedia(input: MediaInput, options: { signal?: AbortSignal } = {}): Promise<MediaProbe> {
  validateMediaInput(input);
  validateSignal(options.signal);
  return withLocalFile(input, (file) => probeFile(file, options.signal));
}

/** {@link probeMedia} for a local file. @internal */
export async function probeFile(file: string, signal?: AbortSignal): Promise<MediaProbe> {
  // Without an output file ffmpeg prints the input description and exits with code 1.
  const result = await runFfmpeg(['-i', file], { what: 'probing', signal });
  const probe = parseProbe(result.stderr);
  if (!probe) throw decodeFailure('to open the media', file, result);
  return probe;
}

/** Parses the `Input #0` section of ffmpeg's stderr; undefined when ffmpeg could not open the input. @internal */
export function parseProbe(stderr: string): MediaProbe | undefined {
  const start = stderr.search(/^Input #0,/m);
  if (start < 0) return undefined;
  const end = stderr.slice(start).search(/^(Output #|Stream mapping:|At least one output)/m);
  const section = stderr.slice(start, end < 0 ? undefined : start + end);
  const streams = [...section.matchAll(/^\s*Stream #0:(\d+)\S*: (\w+): (.*)$/gm)]
    .map((match) => parseStream(Number(match[1]), match[2]!, match[3]!));
  const video = streams.find((stream) => stream.type === 'video' && !stream.attachedPicture && !TEXT_AS_VIDEO_CODECS.has(stream.codec));
  const audio = streams.find((stream) => stream.type === 'audio');
  const duration = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(section);
  return {
    hasVideo: video !== undefined,
    hasAudio: audio !== undefined,
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

/** The probe's first audio stream with a known rate and channel count. @internal */
export function requireAudioStream(probe: MediaProbe, file: string): Required<Pick<StreamInfo, 'index' | 'sampleRate' | 'channels'>> {
  const audio = probe.audio;
  if (!audio) {
    throw new VideoLlamaError('NO_AUDIO_STREAM', `${file} has no audio stream (streams: ${describeStreams(probe)})`, { file });
  }
  if (!audio.sampleRate || !audio.channels) {
    throw new VideoLlamaError('MEDIA_DECODE', `cannot read the sample rate and channel count of the audio stream of ${file}`,
      { file, stream: audio });
  }
  return { index: audio.index, sampleRate: audio.sampleRate, channels: audio.channels };
}

/** The probe's first real video stream. @internal */
export function requireVideoStream(probe: MediaProbe, file: string): StreamInfo {
  if (!probe.video) {
    throw new VideoLlamaError('NO_VIDEO_STREAM', `${file} has no video stream (streams: ${describeStreams(probe)})`, { file });
  }
  return probe.video;
}

function describeStreams(probe: MediaProbe): string {
  return probe.streams.length === 0 ? 'none' : probe.streams.map((s) => `${s.type} ${s.codec}`).join(', ');
}

/**
 * Number of packets of a stream = decord's `len(VideoReader)` (its frame index has one entry per
 * packet of the video stream). Counted from a stream copy (`-copyinkf` keeps leading non-key
 * packets that a plain copy would drop), one `framecrc` line per packet; nothing is decoded.
 * @internal
 */
export async function countPackets(file: string, streamIndex: number, signal?: AbortSignal): Promise<number> {
  let packets = 0;
  let atLineStart = true;
  let commentLine = false;
  const result = await runFfmpeg(
    ['-loglevel', 'error', '-i', file, '-map', `0:${streamIndex}`, '-c', 'copy', '-copyinkf', '-f', 'framecrc', '-'],
    {
      what: 'counting video frames',
      signal,
      onStdout: (chunk) => {
        for (const byte of chunk) {
          if (atLineStart) commentLine = byte === 0x23; // '#' header lines describe streams, not packets
          atLineStart = byte === 0x0a;
          if (atLineStart && !commentLine) packets++;
        }
      },
    },
  );
  if (result.code !== 0) throw decodeFailure('to read the video packets', file, result);
  return packets;
}
