/**
 * `video-llama describe <media>`: encode a video (with its sound), an image or an audio file and
 * stream the model's answer about it.
 * @internal
 * @module
 */
import type { GenerateOptions, TurnStats } from '../../chat/session.js';
import type { TemplateName } from '../../chat/templates.js';
import type { LocalMediaInput } from '../../media/input.js';
import type { MediaEmbedding } from '../../media-embedding.js';
import { VideoLlama } from '../../video-llama.js';
import { onePositional, requireString, type Command } from '../command.js';
import { checkMedia, MEDIA_OPTIONS } from '../media.js';
import { CHAT_OPTIONS, generateOptions, MODEL_OPTIONS, modelOptions, optionalString, printStats, templateOption } from '../options.js';
import { Progress } from '../progress.js';

/** What to describe and how. */
export interface DescribeOptions {
  /** The question; default: a request to describe the media in detail. */
  prompt?: string;
  /** Treat the file as an image (its first picture); default: by what the file is, as `encodeMedia` routes it. */
  image?: boolean;
  frames?: number;
  clips?: number;
  /** Use the sound of a video; default true. */
  audio?: boolean;
  template?: TemplateName;
  system?: string;
  generate?: GenerateOptions;
  /** Receives each piece of the answer. */
  write: (piece: string) => void;
  /** Shows progress (decoding, each encoder stage). */
  progress: Progress;
}

/** What {@link describeMedia} did: the media embeddings' kinds and sizes, the question, the turn's statistics. */
export interface DescribeResult {
  media: Array<{ kind: MediaEmbedding['kind']; tokens: number }>;
  prompt: string;
  encodeSeconds: number;
  stats: TurnStats | undefined;
}

/** Encodes a media file by what it is (or as an image), showing each encoder stage. */
export async function encodeForChat(llama: VideoLlama, input: LocalMediaInput, options: Pick<DescribeOptions, 'image' | 'frames' | 'clips' | 'audio' | 'progress'>):
Promise<MediaEmbedding[]> {
  const { progress } = options;
  progress.update('decoding the media');
  const onProgress = progress.encoderStage;
  if (options.image) return [await llama.encodeImage(input, { onProgress })];
  return llama.encodeMedia(input, { frames: options.frames, clips: options.clips, audio: options.audio, onProgress });
}

/** Encodes `input` with the projector and streams the answer to `options.prompt`. */
export async function describeMedia(llama: VideoLlama, input: LocalMediaInput, options: DescribeOptions): Promise<DescribeResult> {
  const started = performance.now();
  const media = await encodeForChat(llama, input, options);
  const encodeSeconds = (performance.now() - started) / 1000;
  options.progress.done(`encoded ${media.map((m) => m.kind).join(' + ')} in ${encodeSeconds.toFixed(2)} s`);
  const noun = media.some((m) => m.kind === 'video') ? 'video' : media[0]!.kind === 'image' ? 'image' : 'audio';
  const chat = llama.createChat({ template: options.template, system: options.system });
  try {
    const prompt = options.prompt ?? `Describe this ${noun} in detail.`;
    for await (const piece of chat.stream({ text: prompt, media }, options.generate)) options.write(piece);
    return { media: media.map((m) => ({ kind: m.kind, tokens: m.tokens })), prompt, encodeSeconds, stats: chat.lastStats };
  } finally {
    await chat.dispose();
  }
}

/** Loads the LLM and the projector, showing the progress. */
export async function loadWithProgress(options: Parameters<typeof VideoLlama.load>[0], progress: Progress): Promise<VideoLlama> {
  const llama = await VideoLlama.load({ ...options, onProgress: (f) => progress.fraction('loading the models', f) });
  progress.done();
  return llama;
}

/** `video-llama describe clip.mp4 --llm ... --projector ...`. */
export const describeCommand: Command = {
  name: 'describe',
  summary: 'Describe a video (picture and sound), an image or an audio file, streaming the answer',
  positionals: '<media-file|->',
  options: {
    llm: { type: 'string', value: '<llama.gguf>', description: 'Language model GGUF (required)' },
    projector: { type: 'string', value: '<projector.gguf>', description: 'Projector GGUF from `video-llama convert` (required)' },
    prompt: { type: 'string', value: '<text>', description: 'The question (default: "Describe this video in detail.")' },
    ...MEDIA_OPTIONS,
    json: { type: 'boolean', description: 'Print one JSON object (answer, media, statistics) instead of streaming the answer' },
    ...CHAT_OPTIONS,
    ...MODEL_OPTIONS,
  },
  async run(args) {
    const name = onePositional(args, 'media file (a path, or - for stdin)');
    const llm = requireString(args, 'llm');
    const projector = requireString(args, 'projector');
    const generate = generateOptions(args);
    const template = templateOption(args);
    // Everything that can be checked without the models is, before the LLM (gigabytes) is loaded.
    const media = await checkMedia(name, args, projector);
    const json = args.values.json === true;
    const progress = new Progress();
    const llama = await loadWithProgress({ llm, projector, ...modelOptions(args) }, progress);
    try {
      let answer = '';
      const result = await describeMedia(llama, media.input, {
        prompt: optionalString(args, 'prompt'),
        image: media.image, frames: media.frames, clips: media.clips, audio: media.audio,
        template, system: optionalString(args, 'system'), generate,
        write: json ? (piece) => { answer += piece; } : (piece) => process.stdout.write(piece),
        progress,
      });
      if (json) process.stdout.write(`${JSON.stringify({ file: name, answer, ...result })}\n`);
      else process.stdout.write('\n');
      if (args.values.stats === true) printStats(result.stats);
    } finally {
      await llama.dispose();
    }
  },
};
