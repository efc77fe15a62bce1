/**
 * Preflight: what an encode of a media file would do, from a probe only (no pixel or sample is
 * decoded): the kind, the frames and audio ranges it would take, the LLM positions, the encoder
 * work and an estimate of its time, and the caller's limits, checked before anything heavy runs.
 * @module
 */
import fs from 'node:fs/promises';

import { invalidArgument, VideoLlamaError } from '../errors.js';
import { localMediaInput, type MediaFetchOptions, type MediaInput, validateMediaInput } from '../media/input.js';
import { probe, type MediaProbe } from '../media/probe.js';
import { AudioProcessor } from '../processors/audio-processor.js';
import type { PreprocessingInfo } from '../processors/constants.js';
import { VideoProcessor } from '../processors/video-processor.js';

/** Limits of {@link Projector.plan}: a file over one is refused with LIMIT_EXCEEDED naming it. */
export interface PlanLimits {
  /** Most pixels (width × height) of a frame or picture. */
  maxPixels?: number;
  /** Most seconds of media. */
  maxDurationSeconds?: number;
  /** Most bytes of the file. */
  maxUploadBytes?: number;
}

/** Options of {@link Projector.plan}. */
export interface PlanOptions extends PlanLimits, MediaFetchOptions {
  /** Frames to sample, as {@link VideoInputOptions.frames}. */
  frames?: number;
  /** Audio clips, as {@link AudioInputOptions.clips}. */
  clips?: number;
  /** Encode the sound of a video too, as `encodeMedia`'s `audio` option; default true. */
  audio?: boolean;
  /**
   * The chat that will take the media (a {@link Chat}): the plan then counts the positions of
   * its next turn's prompt — its history, system prompt and template wording, `message`
   * tokenized by its LLM, and the media — and whether they fit its context (or `contextSize`,
   * when given). Not with `promptPositions`.
   */
  chat?: PlanChat;
  /** The text the media will be sent with, for `chat`; default `''`. */
  message?: string;
  /** Context cells of the chat that will take the media; with it the plan says whether they fit. */
  contextSize?: number;
  /**
   * Without `chat`: positions the conversation takes besides the media (its text, as the chat's
   * template words it); default 0.
   */
  promptPositions?: number;
}

/** What the plan needs of a chat ({@link Chat} has it). */
export interface PlanChat {
  /** KV cells of the chat's context. */
  readonly contextSize: number;
  /** Positions of the chat's next prompt with this message ({@link Chat.promptPositions}). */
  promptPositions(message: { text: string; media: readonly PlannedMedia[] }): number;
}

/** A medium the encode would produce, as a chat's prompt counts it. */
export interface PlannedMedia {
  /** What the vectors will encode. */
  kind: 'video' | 'audio' | 'image';
  /** Vectors (prompt positions). */
  tokens: number;
  /** A video's description of its sampled frames, as the encoder writes it. */
  description?: string;
}

/** Whether media and prompt fit a chat's context ({@link EncodePlan.context}). */
export interface ContextFit {
  /** With `options.chat`, the positions of its next prompt (media included); else `mediaPositions + promptPositions`. */
  positions: number;
  /** The context size asked about. */
  contextSize: number;
  /** `positions <= contextSize`. */
  fits: boolean;
}

/** What {@link Projector.plan} found: what an `encodeMedia` of the file would do. */
export interface EncodePlan {
  /** What the file is, as `encodeMedia` routes it. */
  kind: 'video' | 'video+audio' | 'audio' | 'image';
  /** Container duration in seconds, when known. */
  durationSeconds?: number;
  /** Bytes of the file. */
  bytes: number;
  /** Seconds of the frames that would be sampled (a video), in sampling order. */
  frameTimes: number[];
  /** [start, end) seconds of the audio that the clips cover (overlapping clips merged). */
  audioRanges: Array<[number, number]>;
  /** LLM positions the media embeddings take (their rows). */
  mediaPositions: number;
  /** Whether the conversation fits the context, when `contextSize` or `chat` was given. */
  context?: ContextFit;
  /** Multiply-adds × 2 of the encoders' transformers (ViT and ImageBind trunk; Q-Formers left out, a few % at full size). */
  flop: number;
  /**
   * Estimated encode seconds on this machine: `flop` over the FLOP/s the last encode of this
   * projector reached. Undefined before the first encode. An estimate, not a measurement.
   */
  estimatedSeconds?: number;
  /** Estimated bytes of the decoded and prepared inputs (frames, PCM windows, tensors), besides the loaded weights. */
  inputBytes: number;
}

/** Transformer sizes read from the projector's GGUF header (`vl.*` keys). @internal */
export type Hparams = ReadonlyMap<string, number>;

/** FLOP of `layers` pre-norm transformer blocks over `tokens` tokens of width `width`. */
function transformerFlop(tokens: number, width: number, mlp: number, layers: number): number {
  const projections = 2 * tokens * (4 * width * width + 2 * width * mlp);
  const attention = 4 * tokens * tokens * width;
  return layers * (projections + attention);
}

/** FLOP of the vision encoder on one frame (patch embedding included). @internal */
export function frameFlop(h: Hparams): number {
  const size = h.get('vl.vision.image_size') ?? 0;
  const patch = h.get('vl.vision.patch_size') ?? 1;
  const width = h.get('vl.vision.width') ?? 0;
  const tokens = (Math.floor(size / patch) ** 2) + 1;
  return 2 * tokens * 3 * patch * patch * width
    + transformerFlop(tokens, width, h.get('vl.vision.mlp_width') ?? 0, h.get('vl.vision.depth') ?? 0);
}

/** FLOP of the audio trunk on one clip. @internal */
export function clipFlop(h: Hparams): number {
  const patch = h.get('vl.imagebind.patch_size') ?? 1;
  const stride = h.get('vl.imagebind.patch_stride') ?? 1;
  const width = h.get('vl.imagebind.width') ?? 0;
  const along = (n: number): number => Math.max(0, Math.floor((n - patch) / stride) + 1);
  const tokens = along(h.get('vl.audio.mel_bins') ?? 0) * along(h.get('vl.audio.target_frames') ?? 0) + 1;
  return 2 * tokens * patch * patch * width
    + transformerFlop(tokens, width, h.get('vl.imagebind.mlp_width') ?? 0, h.get('vl.imagebind.depth') ?? 0);
}

/** What plan needs of a projector. @internal */
export interface PlanProjector {
  info: PreprocessingInfo & { hasAudio: boolean; hasVision: boolean; videoQueries: number; audioQueries: number; imageSize: number; sampleRate: number };
  hparams: Hparams;
  /** FLOP/s of the last encode, when one ran. */
  measuredRate: number | undefined;
}

function validateLimits(options: PlanLimits): void {
  for (const name of ['maxPixels', 'maxDurationSeconds', 'maxUploadBytes'] as const) {
    const limit = options[name];
    if (limit !== undefined && (typeof limit !== 'number' || !(limit > 0))) throw invalidArgument(`options.${name}`, 'a positive number', limit);
  }
}

function checkLimit(name: keyof PlanLimits, limit: number | undefined, found: number | undefined, unit: string): void {
  if (limit !== undefined && found !== undefined && found > limit) {
    throw new VideoLlamaError('LIMIT_EXCEEDED', `the media has ${found} ${unit}, over ${name} = ${limit}`, { limit: name, value: found, max: limit });
  }
}

/** Seconds of a 16 kHz sample index. */
const seconds = (sample: number, rate: number): number => sample / rate;

/** The plan of an `encodeMedia` of `input` (probe only). @internal */
export async function planMedia(projector: PlanProjector, input: MediaInput, options: PlanOptions): Promise<EncodePlan> {
  validateMediaInput(input);
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  validateLimits(options);
  const local = await localMediaInput(input, options);
  const bytes = typeof local === 'string' ? (await fs.stat(local).catch(() => ({ size: 0 }))).size : local.byteLength;
  checkLimit('maxUploadBytes', options.maxUploadBytes, bytes, 'bytes');
  const probed = await probe(local, options);
  const pixels = probed.video?.width !== undefined && probed.video.height !== undefined ? probed.video.width * probed.video.height : undefined;
  checkLimit('maxPixels', options.maxPixels, pixels, 'pixels per frame');
  checkLimit('maxDurationSeconds', options.maxDurationSeconds, probed.durationSeconds, 'seconds');
  const work = encoderWork(projector, probed, options);
  const { info } = projector;
  const mediaPositions = (work.frames > 0 ? info.videoQueries : 0) + (work.clips > 0 ? info.audioQueries : 0);
  const flop = work.frames * frameFlop(projector.hparams) + work.clips * clipFlop(projector.hparams);
  const plan: EncodePlan = {
    kind: work.kind, durationSeconds: probed.durationSeconds, bytes, frameTimes: work.frameTimes, audioRanges: work.audioRanges,
    mediaPositions, flop, estimatedSeconds: projector.measuredRate ? flop / projector.measuredRate : undefined,
    inputBytes: work.frames * info.imageSize * info.imageSize * (3 + 12) + work.pcmSamples * 4 * 2,
  };
  if (options.chat !== undefined) plan.context = chatFit(plannedMedia(projector, work), options.chat, options);
  else if (options.contextSize !== undefined) plan.context = contextFit(mediaPositions, options);
  return plan;
}

function checkContextSize(contextSize: unknown): asserts contextSize is number {
  if (!Number.isInteger(contextSize) || (contextSize as number) < 1) throw invalidArgument('options.contextSize', 'an integer >= 1', contextSize);
}

function contextFit(mediaPositions: number, options: PlanOptions): ContextFit {
  const { contextSize, promptPositions = 0 } = options;
  checkContextSize(contextSize);
  if (!Number.isInteger(promptPositions) || promptPositions < 0) throw invalidArgument('options.promptPositions', 'an integer >= 0', promptPositions);
  const positions = mediaPositions + promptPositions;
  return { positions, contextSize, fits: positions <= contextSize };
}

/** The media an encode of `work` would hand the chat, in `encodeMedia`'s order (audio first). */
function plannedMedia(projector: PlanProjector, work: EncoderWork): PlannedMedia[] {
  const { info } = projector;
  const media: PlannedMedia[] = [];
  if (work.clips > 0) media.push({ kind: 'audio', tokens: info.audioQueries });
  if (work.kind === 'image') media.push({ kind: 'image', tokens: info.videoQueries });
  else if (work.frames > 0) media.push({ kind: 'video', tokens: info.videoQueries, description: work.description });
  return media;
}

/** The fit of `chat`'s next prompt with `media` and `options.message`. */
function chatFit(media: readonly PlannedMedia[], chat: PlanChat, options: PlanOptions): ContextFit {
  if (typeof chat?.promptPositions !== 'function') throw invalidArgument('options.chat', 'a Chat', chat);
  if (options.promptPositions !== undefined) {
    throw new VideoLlamaError('INVALID_ARGUMENT', 'options.promptPositions and options.chat cannot be used together: the chat counts its prompt', { name: 'options.promptPositions' });
  }
  const { message = '' } = options;
  if (typeof message !== 'string') throw invalidArgument('options.message', 'a string', message);
  const contextSize = options.contextSize ?? chat.contextSize;
  checkContextSize(contextSize);
  const positions = chat.promptPositions({ text: message, media });
  return { positions, contextSize, fits: positions <= contextSize };
}

interface EncoderWork {
  kind: EncodePlan['kind'];
  frames: number;
  frameTimes: number[];
  /** The description the video encoder would give its embedding. */
  description?: string;
  clips: number;
  audioRanges: Array<[number, number]>;
  pcmSamples: number;
}

/** The frames and clips `encodeMedia` would take from a probed file (the routing of {@link mediaTensors}). */
function encoderWork(projector: PlanProjector, probed: MediaProbe, options: PlanOptions): EncoderWork {
  const { info } = projector;
  const withSound = info.hasAudio && options.audio !== false && probed.hasAudio && probed.kind !== 'image';
  const audio = withSound && probed.audio?.sampleRate
    ? new AudioProcessor(info, options.clips).plan(probed.audioSamples ?? 0, probed.audio.sampleRate, 'the media')
    : undefined;
  const audioPart = {
    clips: audio ? new AudioProcessor(info, options.clips).clips : 0,
    audioRanges: audio?.windows.map((w): [number, number] => [seconds(w.start, info.sampleRate), seconds(w.end, info.sampleRate)]) ?? [],
    pcmSamples: audio?.decode.reduce((n, r) => n + r.end - r.start, 0) ?? 0,
  };
  if (probed.kind === 'video') {
    const processor = new VideoProcessor(info, options.frames);
    const indices = processor.sample(probed.frameCount ?? 0).indices;
    const fps = probed.video?.fps ?? 0;
    const frameTimes = indices.map((i) => (fps > 0 ? i / fps : 0));
    return { kind: audio ? 'video+audio' : 'video', frames: indices.length, frameTimes, description: processor.describe(indices, fps), ...audioPart };
  }
  if (probed.kind === 'image') return { kind: 'image', frames: 1, frameTimes: [], clips: 0, audioRanges: [], pcmSamples: 0 };
  if (probed.kind === 'audio' && audio) return { kind: 'audio', frames: 0, frameTimes: [], ...audioPart };
  throw new VideoLlamaError('NO_VIDEO_STREAM', 'the media has nothing to encode', { kind: probed.kind });
}
