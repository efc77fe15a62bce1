/**
 * Asking a loaded model about media the way evaluation needs it at scale: each sample's media are
 * encoded once (through the projector's encode cache, when it has one), all its questions are asked
 * from that embedding, each in a fresh greedy chat, and several samples are in flight at once, each
 * on its own sequence of the one context (their tokens are decoded together: continuous batching).
 * A sequence keeps the prompt of its last question, so the next question about the same media
 * evaluates only its own words (the system prompt, upload wording and media are reused).
 * @module
 */
import { Chat } from '../chat/session.js';
import type { TemplateName } from '../chat/templates.js';
import { invalidArgument } from '../errors.js';
import type { LlmContext } from '../llm/context.js';
import type { ContextSequence } from '../llm/sequence.js';
import type { MediaEmbedding } from '../media-embedding.js';

/** What {@link chatAsker} needs of a loaded model: a `VideoLlama` is one. */
export interface AskerModel {
  /** The context whose free sequences the chats run on. */
  readonly context: LlmContext;
  /** Encodes a media file into the chat's media (`[audio, video]` for a clip with sound). */
  encodeMedia(media: string): Promise<MediaEmbedding[]>;
}

/** A question about a sample, with the world attribute it asks about when known. */
export interface SampleQuestion {
  /** The question. */
  q: string;
  /** The world's attribute (`colour`, `sound`, …, `description`); decides the media under {@link MediaChoice} `'per-branch'`. */
  attribute?: string;
}

/** Answers the questions about one sample's media, in order. */
export type AskSample = (media: string, questions: readonly SampleQuestion[], signal?: AbortSignal) => Promise<string[]>;

/**
 * Which of a sample's media go with a question. `'together'`: all of them (`[audio, video]` for a
 * clip with sound, in the audio-visual wording), as a user asking about the file sends them.
 * `'per-branch'`: only the media of the branch that perceives the question's attribute (the picture
 * for colour, shape, count and motion; the sound for sound, pitch and beep count; all for a
 * description), each in its own wording: exactly the prompt stage 2 trains each branch on
 * (`format: 'chat'`, one example per branch). A sample with one medium is asked the same either way.
 */
export type MediaChoice = 'together' | 'per-branch';

/** Attributes the audio branch perceives; every other world attribute but `description` is the picture's. */
const HEARD = new Set(['sound', 'pitch', 'beepCount']);

/** The media of `all` (a sample's, as `encodeMedia` gives them) that `choice` sends with `question`. */
export function questionMedia(all: MediaEmbedding[], question: SampleQuestion, choice: MediaChoice): MediaEmbedding[] {
  if (choice === 'together' || question.attribute === undefined || question.attribute === 'description') return all;
  const heard = HEARD.has(question.attribute);
  const branch = all.filter((m) => (m.kind === 'audio') === heard);
  return branch.length > 0 ? branch : all;
}

/** Options of {@link chatAsker}. */
export interface ChatAskerOptions {
  /** Template of the chats; default as `createChat` picks it for the LLM. */
  template?: TemplateName;
  /** Longest reply in tokens; default 64. */
  maxTokens?: number;
  /** Which media go with each question; default `'per-branch'` (the prompts stage 2 trains on). */
  media?: MediaChoice;
  /** Encodes the sample's media into the chat's media; default `llama.encodeMedia(media)` (`[audio, video]` for a clip with sound). */
  encode?: (media: string) => Promise<MediaEmbedding[]>;
}

/** An {@link AskSample} over the sequences of a model's context, and its release. */
export interface ChatAsker {
  /** Asks about one sample on a free sequence (waiting for one when all are busy). */
  ask: AskSample;
  /** Samples that can be asked about at once: the context's sequences. */
  readonly concurrency: number;
  /** Gives the sequences back to the context. */
  dispose(): Promise<void>;
}

/**
 * Asks greedily (temperature 0) through {@link Chat}s on every free sequence of `llama`'s context
 * (a `VideoLlama`, or any {@link AskerModel}):
 * call `ask` for up to {@link ChatAsker.concurrency} samples at once (more wait for a sequence).
 * Each question gets a new chat (no history), as a user asking it first would.
 *
 * @example
 * ```ts
 * await using llama = await VideoLlama.load({ llm, projector, sequences: 4, contextSize: 2048 });
 * const asker = chatAsker(llama);
 * const [colour, shape] = await asker.ask('clip.mp4', [{ q: 'What colour is it?' }, { q: 'What shape is it?' }]);
 * await asker.dispose();
 * ```
 */
export function chatAsker(llama: AskerModel, options: ChatAskerOptions = {}): ChatAsker {
  const { template, maxTokens = 64, media: choice = 'per-branch' } = options;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw invalidArgument('maxTokens', 'an integer >= 1', maxTokens);
  if (choice !== 'together' && choice !== 'per-branch') throw invalidArgument('media', "'together' or 'per-branch'", choice);
  const encode = options.encode ?? ((media: string) => llama.encodeMedia(media));
  const free: ContextSequence[] = [];
  while (llama.context.freeSequences > 0) free.push(llama.context.getSequence());
  const all = [...free];
  const waiting: ((sequence: ContextSequence) => void)[] = [];
  const acquire = (): Promise<ContextSequence> => {
    const sequence = free.pop();
    return sequence ? Promise.resolve(sequence) : new Promise((resolve) => waiting.push(resolve));
  };
  const release = (sequence: ContextSequence): void => {
    const next = waiting.shift();
    if (next) next(sequence);
    else free.push(sequence);
  };
  return {
    concurrency: all.length,
    async ask(media, questions, signal) {
      const embeddings = await encode(media);
      const sequence = await acquire();
      try {
        const replies: string[] = [];
        for (const question of questions) {
          // Not disposed: that would dispose the sequence, whose cells keep this media's prompt for the next question.
          const chat = new Chat(sequence, { template });
          replies.push(await chat.send({ text: question.q, media: questionMedia(embeddings, question, choice) }, { temperature: 0, maxTokens, signal }));
        }
        return replies;
      } finally {
        release(sequence);
      }
    },
    async dispose() {
      await Promise.all(all.map((sequence) => sequence.dispose()));
    },
  };
}
