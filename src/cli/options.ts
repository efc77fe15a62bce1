/**
 * Options shared by the commands that load a model and chat: their --help lines and their
 * parsing into library options.
 * @internal
 * @module
 */
import { invalidArgument } from '../errors.js';
import type { GenerateOptions, TurnStats } from '../chat/session.js';
import { TEMPLATES, type TemplateName } from '../chat/templates.js';
import type { VideoLlamaOptions } from '../video-llama.js';
import type { OptionSpec, ParsedArgs } from './command.js';

/** Conversation and sampling options. */
export const CHAT_OPTIONS: Record<string, OptionSpec> = {
  template: { type: 'string', value: 'llama2|vicuna', api: 'options.template', description: 'Conversation template (default: llama2 if the GGUF has a LLaMA-2 chat template, else vicuna)' },
  system: { type: 'string', value: '<text>', api: 'options.system', description: "System prompt (default: the template's, or the original demo's for media)" },
  temperature: { type: 'string', value: '<t>', api: 'options.temperature', description: 'Sampling temperature, 0 = greedy (default 1.0)' },
  'top-p': { type: 'string', value: '<p>', api: 'options.topP', description: 'Nucleus sampling threshold (default 0.9)' },
  'top-k': { type: 'string', value: '<k>', api: 'options.topK', description: 'Keep the k most likely tokens, 0 = all (default 50)' },
  'repeat-penalty': { type: 'string', value: '<r>', api: 'options.repeatPenalty', description: 'Repetition penalty, 1 = off (default 1.0)' },
  'max-tokens': { type: 'string', value: '<n>', api: 'options.maxTokens', description: 'Longest reply in tokens (default 300)' },
  seed: { type: 'string', value: '<n>', api: 'options.seed', description: 'Sampling seed (default: random)' },
  stats: { type: 'boolean', description: 'Print token counts and timings after each reply (to stderr)' },
};

/** How the model runs. */
export const MODEL_OPTIONS: Record<string, OptionSpec> = {
  'context-size': { type: 'string', value: '<n>', api: 'options.contextSize', description: 'Context positions (default: min(2048, training context))' },
  threads: { type: 'string', value: '<n>', api: 'options.threads', description: 'CPU threads (default: all cores)' },
  'gpu-layers': { type: 'string', value: '<n>', api: 'options.gpuLayers', description: "Layers offloaded to a GPU build of llama.cpp (default: libllama's)" },
};

export function optionalString(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A numeric option, checked: `--name` must be a number (an integer if asked) >= min. */
export function optionalNumber(args: ParsedArgs, name: string, { integer = false, min = 0 } = {}): number | undefined {
  const text = optionalString(args, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    throw invalidArgument(`--${name}`, `${integer ? 'an integer' : 'a number'} >= ${min}`, text);
  }
  return value;
}

export function templateOption(args: ParsedArgs): TemplateName | undefined {
  const name = optionalString(args, 'template');
  if (name !== undefined && !(name in TEMPLATES)) throw invalidArgument('--template', `one of ${Object.keys(TEMPLATES).join(', ')}`, name);
  return name as TemplateName | undefined;
}

export function generateOptions(args: ParsedArgs): GenerateOptions {
  return {
    temperature: optionalNumber(args, 'temperature'),
    topP: optionalNumber(args, 'top-p'),
    topK: optionalNumber(args, 'top-k', { integer: true }),
    repeatPenalty: optionalNumber(args, 'repeat-penalty'),
    maxTokens: optionalNumber(args, 'max-tokens', { integer: true }),
    seed: optionalNumber(args, 'seed', { integer: true }),
  };
}

/** {@link MODEL_OPTIONS} as load options. */
export function modelOptions(args: ParsedArgs): Omit<VideoLlamaOptions, 'llm'> {
  return {
    contextSize: optionalNumber(args, 'context-size', { integer: true, min: 1 }),
    threads: optionalNumber(args, 'threads', { integer: true, min: 1 }),
    gpuLayers: optionalNumber(args, 'gpu-layers', { integer: true }),
  };
}

/** One line of turn statistics on stderr. */
export function printStats(stats: TurnStats | undefined): void {
  if (!stats) return;
  process.stderr.write(`[${stats.evaluatedItems}/${stats.promptItems} prompt items evaluated in ${stats.promptMs.toFixed(0)} ms, ` +
    `first token after ${stats.firstTokenMs.toFixed(0)} ms, ${stats.generatedTokens} tokens in ${stats.generationMs.toFixed(0)} ms, ` +
    `stop: ${stats.stopReason}]\n`);
}
