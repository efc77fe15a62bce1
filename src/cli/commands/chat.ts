/**
 * `video-llama chat`: an interactive, streaming text chat with a language model GGUF.
 * Reads one message per line (from a terminal or a pipe), prints each reply as it is generated.
 * @internal
 * @module
 */
import readline from 'node:readline';

import { VideoLlamaError } from '../../errors.js';
import { VideoLlama } from '../../video-llama.js';
import { requireString, type Command } from '../command.js';
import { CHAT_OPTIONS, generateOptions, MODEL_OPTIONS, modelOptions, optionalString, printStats, templateOption } from '../options.js';

/** `video-llama chat --llm model.gguf`. */
export const chatCommand: Command = {
  name: 'chat',
  summary: 'Chat with a language model GGUF in the terminal (streamed replies)',
  options: {
    llm: { type: 'string', value: '<model.gguf>', description: 'Language model GGUF, any LLaMA family model (required)' },
    ...CHAT_OPTIONS,
    ...MODEL_OPTIONS,
  },
  async run(args) {
    const llm = requireString(args, 'llm');
    const generate = generateOptions(args);
    const template = templateOption(args);
    const interactive = process.stdin.isTTY === true;
    const llama = await VideoLlama.load({ llm, ...modelOptions(args) });
    try {
      const chat = llama.createChat({ template, system: optionalString(args, 'system') });
      const lines = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
      let reply: AbortController | undefined;
      // Ctrl+C stops the reply being written; at the prompt it quits.
      lines.on('SIGINT', () => (reply ? reply.abort() : lines.close()));
      if (interactive) {
        process.stderr.write(`${llama.model.description}, template ${chat.template.name}. Ctrl+C stops a reply, Ctrl+D quits.\n`);
        lines.setPrompt('> ');
        lines.prompt();
      }
      for await (const line of lines) {
        if (line.trim() !== '') {
          reply = new AbortController();
          try {
            for await (const piece of chat.stream(line, { ...generate, signal: reply.signal })) process.stdout.write(piece);
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
