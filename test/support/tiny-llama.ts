/**
 * Tiny random LLaMA GGUFs for tests, generated once and cached in `.cache/` at the repo root.
 * One thread: the models are so small that more threads only add synchronisation cost.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cachedTinyLlama, type TinyLlamaOptions } from '../../src/dev/tiny-llama.js';
import { VideoLlama, type ChatMessage, type ChatOptions, type GenerateOptions, type VideoLlamaOptions } from '../../src/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const CACHE_DIR = path.join(repoRoot, '.cache');

/** Path of a cached tiny LLaMA with these options. */
export function tinyLlamaFile(options: TinyLlamaOptions = {}): Promise<string> {
  return cachedTinyLlama(CACHE_DIR, options);
}

/** Loads a tiny LLaMA (default sizes unless `model` says otherwise) with one thread and a context of two sequences. */
export async function loadTinyLlama(options: { model?: TinyLlamaOptions } & Partial<VideoLlamaOptions> = {}): Promise<VideoLlama> {
  const { model, ...rest } = options;
  return VideoLlama.load({ threads: 1, contextSize: 1024, sequences: 2, ...rest, llm: await tinyLlamaFile(model) });
}

/** The reply of a new chat on `llama` (disposed afterwards). */
export async function replyOnce(llama: VideoLlama, message: ChatMessage, options: GenerateOptions, chatOptions: ChatOptions = {}): Promise<string> {
  await using chat = llama.createChat(chatOptions);
  return await chat.send(message, options);
}

/** Options for deterministic replies. */
export const GREEDY = { temperature: 0 } as const;
