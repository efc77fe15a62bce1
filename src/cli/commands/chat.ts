/**
 * `video-llama chat`: an interactive, streaming chat with a language model GGUF, and with a
 * projector, about media: `--media clip.mp4` and `/media <path>` lines attach a file to the next
 * message, so a person can ask follow-up questions about a video.
 * Reads one message per line (from a terminal or a pipe), prints each reply as it is generated.
 * @internal
 * @module
 */
import readline from 'node:readline';

import { VideoLlamaError } from '../../errors.js';
import type { MediaEmbedding } from '../../media-embedding.js';
import type { VideoLlama } from '../../video-llama.js';
import { requireString, type Command } from '../command.js';
import { checkMedia } from '../media.js';
import { CHAT_OPTIONS, generateOptions, MODEL_OPTIONS, modelOptions, optionalString, printStats, templateOption } from '../options.js';
import { Progress } from '../progress.js';
import { encodeForChat, loadWithProgress } from './describe.js';

/** The in-chat command that attaches a media file to the next message. */
const MEDIA_COMMAND = '/media';

/** Encodes a media file for the chat; the line on stderr says what was attached. */
async function attach(llama: VideoLlama, file: string, progress: Progress): Promise<MediaEmbedding[]> {
  const media = await encodeForChat(llama, file, { progress });
  progress.done();
  process.stderr.write(`attached ${file} (${media.map((m) => m.kind).join(' + ')}) to the next message\n`);
  return media;
}

/** `video-llama chat --llm model.gguf [--projector projector.gguf --media clip.mp4]`. */
export const chatCommand: Command = {
  name: 'chat',
  summary: 'Chat in the terminal (streamed replies); with --projector, about media (--media, /media <path>)',
  options: {
    llm: { type: 'string', value: '<model.gguf>', description: 'Language model GGUF, any LLaMA family model (required)' },
    projector: { type: 'string', value: '<projector.gguf>', description: 'Projector GGUF, to talk about media (needed by --media and /media)' },
    media: { type: 'string', value: '<file>', multiple: true, description: `A media file for the first message (repeatable); later ones with a "${MEDIA_COMMAND} <path>" line` },
    ...CHAT_OPTIONS,
    ...MODEL_OPTIONS,
  },
  async run(args) {
    const llm = requireString(args, 'llm');
    const projector = optionalString(args, 'projector');
    const files = (args.values.media as string[] | undefined) ?? [];
    if (files.length > 0 && projector === undefined) throw new VideoLlamaError('INVALID_ARGUMENT', '--media needs --projector (the encoders of the media)', { name: '--media' });
    if (files.includes('-')) throw new VideoLlamaError('INVALID_ARGUMENT', '--media - is not possible in a chat: stdin carries the messages', { name: '--media' });
    const generate = generateOptions(args);
    const template = templateOption(args);
    // Media files are checked before the models are loaded.
    for (const file of files) await checkMedia(file, { values: {}, positionals: [] }, projector!);
    const interactive = process.stdin.isTTY === true;
    const progress = new Progress();
    const llama = await loadWithProgress({ llm, projector, ...modelOptions(args) }, progress);
    try {
      let pending: MediaEmbedding[] = [];
      for (const file of files) pending.push(...await attach(llama, file, progress));
      const chat = llama.createChat({ template, system: optionalString(args, 'system') });
      const lines = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
      let reply: AbortController | undefined;
      // Ctrl+C stops the reply being written; at the prompt it quits.
      lines.on('SIGINT', () => (reply ? reply.abort() : lines.close()));
      if (interactive) {
        const mediaHelp = projector ? `, "${MEDIA_COMMAND} <path>" attaches a media file to the next message` : '';
        process.stderr.write(`${llama.model.description}, template ${chat.template.name}. Ctrl+C stops a reply, Ctrl+D quits${mediaHelp}.\n`);
        lines.setPrompt('> ');
        lines.prompt();
      }
      for await (const line of lines) {
        const text = line.trim();
        if (text === MEDIA_COMMAND || text.startsWith(`${MEDIA_COMMAND} `)) {
          // A bad file or a chat without projector is said, and the chat goes on.
          try {
            const file = text.slice(MEDIA_COMMAND.length).trim();
            if (file === '') throw new VideoLlamaError('INVALID_ARGUMENT', `${MEDIA_COMMAND} needs a path: ${MEDIA_COMMAND} <path>`);
            if (!projector) throw new VideoLlamaError('INVALID_ARGUMENT', `${MEDIA_COMMAND} needs a projector: start the chat with --projector`);
            pending.push(...await attach(llama, file, progress));
          } catch (error) {
            if (!(error instanceof VideoLlamaError)) throw error;
            progress.done();
            process.stderr.write(`video-llama: ${error.code}: ${error.message}\n`);
          }
        } else if (text !== '') {
          reply = new AbortController();
          const message = pending.length > 0 ? { text: line, media: pending } : line;
          pending = [];
          try {
            for await (const piece of chat.stream(message, { ...generate, signal: reply.signal })) process.stdout.write(piece);
          } catch (error) {
            if (!(error instanceof VideoLlamaError && error.code === 'ABORTED')) throw error;
            process.stdout.write(' [stopped]');
          } finally {
            reply = undefined;
          }
          process.stdout.write('\n');
          if (args.values.stats === true) printStats(chat.lastStats);
        }
        if (interactive) lines.prompt();
      }
    } finally {
      await llama.dispose();
    }
  },
};
