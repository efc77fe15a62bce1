/**
 * `video-llama describe <media>`: encode a video (with its sound), an image or an audio file and
 * stream the model's answer about it.
 * @internal
 * @module
 */
import { invalidArgument } from '../../errors.js';
import type { GenerateOptions, TurnStats } from '../../chat/session.js';
import type { TemplateName } from '../../chat/templates.js';
import type { MediaEmbedding } from '../../media-embedding.js';
import { VideoLlama } from '../../video-llama.js';
import { requireString, type Command } from '../command.js';
import { CHAT_OPTIONS, generateOptions, MODEL_OPTIONS, modelOptions, optionalNumber, optionalString, printStats, templateOption } from '../options.js';

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
  /** Receives progress lines. */
  log: (line: string) => void;
}

async function encode(model: VideoLlama, file: string, options: DescribeOptions): Promise<MediaEmbedding[]> {
  if (options.image) return [await model.encodeImage(file)];
  return model.encodeMedia(file, { frames: options.frames, clips: options.clips, audio: options.audio });
}

/** Encodes `file` with the model's projector and streams the answer to `options.prompt`; returns the turn's statistics. */
export async function describeMedia(model: VideoLlama, file: string, options: DescribeOptions): Promise<TurnStats | undefined> {
  const started = performance.now();
  const media = await encode(model, file, options);
  const kinds = media.map((m) => m.kind).join(' + ');
  options.log(`encoded ${kinds} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  const noun = media.some((m) => m.kind === 'video') ? 'video' : media[0]!.kind === 'image' ? 'image' : 'audio';
  const chat = model.createChat({ template: options.template, system: options.system });
  const text = options.prompt ?? `Describe this ${noun} in detail.`;
  for await (const piece of chat.stream({ text, media }, options.generate)) options.write(piece);
  options.write('\n');
  return chat.lastStats;
}

/** `video-llama describe clip.mp4 --llm ... --projector ...`. */
export const describeCommand: Command = {
  name: 'describe',
  summary: 'Describe a video (picture and sound), an image or an audio file, streaming the answer',
  positionals: '<media-file>',
  options: {
    llm: { type: 'string', value: '<model.gguf>', description: 'Language model GGUF (required)' },
    projector: { type: 'string', value: '<projector.gguf>', description: 'Projector GGUF from `video-llama convert` (required)' },
    prompt: { type: 'string', value: '<text>', description: 'The question (default: "Describe this video in detail.")' },
    image: { type: 'boolean', description: 'Treat the file as an image (default: by what the file is)' },
    frames: { type: 'string', value: '<n>', description: 'Video frames sampled uniformly (default 8)' },
    clips: { type: 'string', value: '<n>', description: '2-second audio clips (default 8)' },
    'no-audio': { type: 'boolean', description: "Ignore a video's sound (vision only)" },
    ...CHAT_OPTIONS,
    ...MODEL_OPTIONS,
  },
  async run(args) {
    const [file, ...extra] = args.positionals;
    if (!file || extra.length > 0) throw invalidArgument('<media-file>', 'exactly one media file', args.positionals.join(' '));
    const model = await VideoLlama.load({ llm: requireString(args, 'llm'), projector: requireString(args, 'projector'), ...modelOptions(args) });
    try {
      const stats = await describeMedia(model, file, {
        prompt: optionalString(args, 'prompt'),
        image: args.values.image === true ? true : undefined,
        frames: optionalNumber(args, 'frames', { integer: true, min: 1 }),
        clips: optionalNumber(args, 'clips', { integer: true, min: 1 }),
        audio: args.values['no-audio'] !== true,
        template: templateOption(args),
        system: optionalString(args, 'system'),
        generate: generateOptions(args),
        write: (piece) => process.stdout.write(piece),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (args.values.stats === true) printStats(stats);
    } finally {
      await model.dispose();
    }
  },
};
