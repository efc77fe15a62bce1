/**
 * The media a command is given, checked before anything heavy is loaded: the file (or `-`, the
 * bytes on stdin) is probed (one ffmpeg process), `--frames` / `--clips` are checked against the
 * projector file's limits (read from its GGUF header, not its weights), and options that do not
 * apply to this media are reported as notes.
 * @internal
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { checkGgufHeader } from '../gguf/header-check.js';
import { GGUF_KEYS } from '../gguf/keys.js';
import { localMediaInput, type LocalMediaInput } from '../media/input.js';
import { probe, type MediaProbe } from '../media/probe.js';
import type { OptionSpec, ParsedArgs } from './command.js';
import { optionalNumber } from './options.js';
import { note } from './progress.js';

/** The options of the commands that take a media file (`describe`, `plan`). */
export const MEDIA_OPTIONS: Record<string, OptionSpec> = {
  image: { type: 'boolean', description: 'Treat the file as an image: its first picture (default: by what the file is)' },
  frames: { type: 'string', value: '<n>', api: 'options.frames', description: 'Video frames sampled uniformly (default 8)' },
  clips: { type: 'string', value: '<n>', api: 'options.clips', description: '2-second audio clips (default 8)' },
  'no-audio': { type: 'boolean', description: "Leave a video's sound out (vision only)" },
};

/** A media argument, probed, with the options that apply to it. */
export interface CheckedMedia {
  /** What the command line named (`-` for stdin). */
  name: string;
  /** The path, or the bytes read from stdin. */
  input: LocalMediaInput;
  probe: MediaProbe;
  /** Encode as an image (`--image`). */
  image: boolean;
  frames?: number;
  clips?: number;
  /** Encode a video's sound. */
  audio: boolean;
}

/** `-` is stdin: its bytes, read once (the probe and the encode both need them). */
export async function mediaInput(name: string): Promise<LocalMediaInput> {
  return name === '-' ? localMediaInput(process.stdin) : name;
}

/** The limits of a projector file from its header: missing file and bad header fail here, before any weight is read. */
async function projectorLimits(projector: string): Promise<{ maxFrames: number; maxClips: number; hasAudio: boolean; hasVision: boolean }> {
  const header = await checkGgufHeader(projector, 'projector');
  return {
    maxFrames: header.get(GGUF_KEYS.VIDEO_MAX_FRAMES) ?? 0,
    maxClips: header.get(GGUF_KEYS.AUDIO_MAX_CLIPS) ?? 0,
    hasAudio: header.get(GGUF_KEYS.HAS_AUDIO) === 1,
    hasVision: header.get(GGUF_KEYS.HAS_VISION) === 1,
  };
}

/** A count option checked against the projector's limit, named by its flag. */
function countOption(args: ParsedArgs, flag: 'frames' | 'clips', max: number): number | undefined {
  const value = optionalNumber(args, flag, { integer: true, min: 1 });
  if (value !== undefined && value > max) throw invalidArgument(`--${flag}`, `an integer from 1 to ${max} (this projector's limit)`, String(value));
  return value;
}

/**
 * Checks the media argument and the media options of `args` against `projector` (a GGUF path):
 * FILE_NOT_FOUND, MEDIA_DECODE, INVALID_MODEL or INVALID_ARGUMENT before any model is loaded.
 * Options that do not apply to this media are reported with {@link note}.
 */
export async function checkMedia(name: string, args: ParsedArgs, projector: string): Promise<CheckedMedia> {
  const limits = await projectorLimits(projector);
  const frames = countOption(args, 'frames', limits.maxFrames);
  const clips = countOption(args, 'clips', limits.maxClips);
  const input = await mediaInput(name);
  const found = await probe(input);
  const image = args.values.image === true;
  const noAudio = args.values['no-audio'] === true;
  const kind = image ? 'image' : found.kind;
  if (kind === undefined) {
    throw new VideoLlamaError('NO_VIDEO_STREAM', `${name} has nothing to describe: neither picture nor sound`, { file: name });
  }
  const what = kind === 'audio' ? 'has only sound' : kind === 'image' ? (image ? 'is read as an image (--image)' : 'is an image') : 'is a video';
  const usesSound = kind === 'audio' || (kind === 'video' && found.hasAudio && !noAudio && limits.hasAudio);
  if (frames !== undefined && kind !== 'video') note(`--frames does not apply: ${name} ${what}`);
  if (clips !== undefined && !usesSound) {
    note(`--clips does not apply: ${kind === 'video' ? (noAudio ? 'the sound is left out (--no-audio)' : `${name} has no sound the projector can encode`) : `${name} ${what}`}`);
  }
  if (noAudio && kind === 'audio') note(`--no-audio does not apply: ${name} ${what}, and that is what is described`);
  else if (noAudio && (kind === 'image' || !found.hasAudio)) note(`--no-audio does not apply: ${name} ${kind === 'image' ? what : 'has no sound'}`);
  return { name, input, probe: found, image, frames, clips, audio: !noAudio || kind === 'audio' };
}
