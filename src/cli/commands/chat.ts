/**
 * `video-llama chat`: an interactive, streaming text chat with a language model GGUF.
 * Reads one message per line (from a terminal or a pipe), prints each reply as it is generated.
 * @internal
 * @module
 */
import readline from 'node:readline';

import { invalidArgument, VideoLlamaError } from '../../errors.js';
import type { GenerateOptions } from '../../chat/session.js';
import { TEMPLATES, type TemplateName } from '../../chat/templates.js';
import { VideoLlama } from '../../video-llama.js';
import { requireString, type Command, type ParsedArgs } from '../command.js';

function optionalString(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A numeric option, checked: `--name` must be a number (an integer if asked) >= min. */
function optionalNumber(args: ParsedArgs, name: string, { integer = false, min = 0 } = {}): number | undefined {
  const text = optionalString(args, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    throw invalidArgument(`--${name}`, `${integer ? 'an integer' : 'a number'} >= ${min}`, text);
  }
  return value;
}

function templateOption(args: ParsedArgs): TemplateName | undefined {
  const name = optionalString(args, 'template');
  if (name !== undefined && !(name in TEMPLATES)) throw invalidArgument('--template', `one of ${Object.keys(TEMPLATES).join(', ')}`, name);
  return name as TemplateName | undefined;
}

function generateOptions(args: ParsedArgs): GenerateOptions {
  return {
    temperature: optionalNumber(args, 'temperature'),
    topP: optionalNumber(args, 'top-p'),
    topK: optionalNumber(args, 'top-k', { integer: true }),
    repeatPenalty: optionalNumber(args, 'repeat-penalty'),
    maxTokens: optionalNumber(args, 'max-tokens', { integer: true }),
    seed: optionalNumber(args, 'seed', { integer: true }),
  };
}

/** `video-llama chat --llm model.gguf`. */
export const chatCommand: Command = {
  name: 'chat',
  summary: 'Chat with a language model GGUF in the terminal (streamed replies)',
  options: {
    llm: { type: 'string', value: '<model.gguf>', description: 'Language model GGUF, any LLaMA family model (required)' },
    template: { type: 'string', value: 'llama2|vicuna', description: "Conversation template (default: llama2 if the GGUF has a LLaMA-2 chat template, else vicuna)" },
    system: { type: 'string', value: '<text>', description: "System prompt (default: the template's)" },
    temperature: { type: 'string', value: '<t>', description: 'Sampling temperature, 0 = greedy (default 1.0)' },
    'top-p': { type: 'string', value: '<p>', description: 'Nucleus sampling threshold (default 0.9)' },
    'top-k': { type: 'string', value: '<k>', description: 'Keep the k most likely tokens, 0 = all (default 50)' },
    'repeat-penalty': { type: 'string', value: '<r>', description: 'Repetition penalty, 1 = off (default 1.0)' },
    'max-tokens': { type: 'string', value: '<n>', description: 'Longest reply in tokens (default 300)' },
    seed: { type: 'string', value: '<n>', description: 'Sampling seed (default: random)' },
    'context-size': { type: 'string', value: '<n>', description: 'Context positions (default: min(2048, training context))' },
    threads: { type: 'string', value: '<n>', description: 'CPU threads (default: all cores)' },
    'gpu-layers': { type: 'string', value: '<n>', description: "Layers offloaded to a GPU build of llama.cpp (default: libllama's)" },
    stats: { type: 'boolean', description: 'Print token counts and timings after each reply (to stderr)' },
  },
  async run(args) {
    const llm = requireString(args, 'llm');
    const generate = generateOptions(args);
    const template = templateOption(args);
    const interactive = process.stdin.isTTY === true;
    const model = await VideoLlama.load({
      llm,
      contextSize: optionalNumber(args, 'context-size', { integer: true, min: 1 }),
      threads: optionalNumber(args, 'threads', { integer: true, min: 1 }),
      gpuLayers: optionalNumber(args, 'gpu-layers', { integer: true }),
    });
    try {
      const chat = model.createChat({ template, system: optionalString(args, 'system') });
      const lines = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
      let reply: AbortController | undefined;
      // Ctrl+C stops the reply being written; at the prompt it quits.
      lines.on('SIGINT', () => (reply ? reply.abort() : lines.close()));
      if (interactive) {
        process.stderr.write(`${model.description}, template ${chat.template.name}. Ctrl+C stops a reply, Ctrl+D quits.\n`);
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
          const stats = chat.lastStats;
          if (args.values.stats === true && stats) {
            process.stderr.write(`[${stats.evaluatedItems}/${stats.promptItems} prompt items evaluated in ${stats.promptMs.toFixed(0)} ms, ` +
              `${stats.generatedTokens} tokens in ${stats.generationMs.toFixed(0)} ms, stop: ${stats.stopReason}]\n`);
          }
        }
        if (interactive) lines.prompt();
      }
    } finally {
      await model.dispose();
    }
  },
};
