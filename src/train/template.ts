/**
 * The original's training prompts and targets, as token ids and labels: stage 1 (`VideoLLAMA.forward`
 * without `conv_type`: BOS, the media's soft prompt, the caption plus `end_sym` as the only target)
 * and stage 2 (`video_instruct_dataset.py`: the instruction conversation, tokenized whole, with
 * targets masked by `_mask_targets` for Vicuna or by `preprocess_for_llama_v2` for LLaMA-2 chat).
 * The media's `<ImageHere>` run takes `queries` positions; their ids are 0 (the original zeroes the
 * placeholder ids before the embedding lookup) and their labels {@link IGNORE_LABEL}.
 *
 * Text is tokenized with the LLM's own tokenizer, piece by piece between placeholders, as the
 * original's `get_context_emb` does at inference (and as HF's tokenizer does around an added
 * token): each piece gets SentencePiece's leading-space marker, only the first one BOS.
 * @module
 */
import { type ChatTemplate, LLAMA2_TEMPLATE, MEDIA_PLACEHOLDER, type TemplateName, TEMPLATES, type TemplateTurn, userMessage } from '../chat/templates.js';
import { invalidArgument, VideoLlamaError } from '../errors.js';
import type { LlmModel } from '../llm/model.js';
import type { MediaEmbedding, MediaKind } from '../media-embedding.js';
import { IGNORE_LABEL } from './example.js';

/** The id at a media position; ignored by the training graph, which places the media rows there. */
export const MEDIA_TOKEN = 0;

/** What the layouts need of a tokenizer. */
export interface PromptTokenizer {
  /** Token ids of `text`, BOS first when `addBos`; `<s>` and `</s>` in the text are the special tokens. */
  tokenize(text: string, addBos: boolean): ArrayLike<number>;
  /** The BOS id (stage 1 puts it before the media, as the original). */
  readonly bos: number;
}

/**
 * The tokenizer of a loaded LLM (libllama's). Throws INVALID_MODEL when its vocabulary has no BOS
 * token to add.
 */
export function modelTokenizer(model: LlmModel): PromptTokenizer {
  const bos = model.tokenIds('', true, false)[0];
  if (bos === undefined) throw new VideoLlamaError('INVALID_MODEL', `the tokenizer of ${model.file} adds no BOS token`, { file: model.file });
  return { bos, tokenize: (text, addBos) => model.tokenIds(text, addBos, true) };
}

/** Token ids and per-position labels of one training prompt, with where its media run starts. */
export interface PromptLayout {
  /** Every position's id; {@link MEDIA_TOKEN} at the media positions. */
  tokens: Int32Array;
  /** The token each position must predict (HF's unshifted labels), or {@link IGNORE_LABEL}. */
  labels: Int32Array;
  /** First of the `queries` media positions. */
  mediaOffset: number;
}

/** Options of {@link stage1Layout}. */
export interface Stage1LayoutOptions {
  /** The caption (the target). */
  caption: string;
  /** Media positions: the branch's query count. */
  queries: number;
  /** Appended to the caption: the original's `end_sym`; default `'\n'` (its stage-1 configs). */
  endSymbol?: string;
  /** Caption tokens kept (the original's `max_txt_len` truncation); default 32. */
  maxTextTokens?: number;
}

/**
 * Stage 1: `[BOS] [media × queries] caption+endSymbol`, the caption's tokens (no BOS, truncated to
 * `maxTextTokens`) the only labels.
 */
export function stage1Layout(tokenizer: PromptTokenizer, options: Stage1LayoutOptions): PromptLayout {
  const { caption, queries, endSymbol = '\n', maxTextTokens = 32 } = options;
  checkQueries(queries);
  if (!Number.isInteger(maxTextTokens) || maxTextTokens < 1) throw invalidArgument('maxTextTokens', 'an integer >= 1', maxTextTokens);
  const text = Array.from(tokenizer.tokenize(caption + endSymbol, false)).slice(0, maxTextTokens);
  const tokens = [tokenizer.bos, ...new Array<number>(queries).fill(MEDIA_TOKEN), ...text];
  const labels = [...new Array<number>(1 + queries).fill(IGNORE_LABEL), ...text];
  return { tokens: Int32Array.from(tokens), labels: Int32Array.from(labels), mediaOffset: 1 };
}

/** One question and its reference answer. */
export interface ConversationTurn {
  /** The question. */
  q: string;
  /** The answer (the target). */
  a: string;
}

/** The media of a stage-2 conversation: its kind and, for a video, `load_video`'s description. */
export interface ConversationMedia {
  /** What the media is: it picks the wording around its placeholder. */
  kind: MediaKind;
  /** A video's `load_video` description, put after its placeholder. */
  description?: string;
}

/** Options of {@link stage2Layout}. */
export interface Stage2LayoutOptions {
  /** `'vicuna'` or `'llama2'`: as the chat picks it for the LLM. */
  template: TemplateName;
  /** The turns; the first question comes with the media. */
  conversation: readonly ConversationTurn[];
  /** The media the conversation is about (one run of `queries` positions). */
  media: ConversationMedia;
  /** Media positions: the branch's query count. */
  queries: number;
  /** Which prompt: see {@link Stage2Format}; default `'original'`. */
  format?: Stage2Format;
  /**
   * System prompt. Default for `'original'`: the original's instruction datasets' (`""` for Vicuna,
   * `" "` for LLaMA-2); for `'chat'`: the chat's default for the media (`ChatTemplate.defaultSystem`).
   */
  system?: string;
  /** Vicuna's targets in the `'original'` format: see {@link VicunaMasking}; default `'aligned'`. LLaMA-2's masking has no drift and is always the original's. */
  masking?: VicunaMasking;
}

/**
 * The prompt stage 2 trains on. `'original'`: the original's instruction datasets
 * (`video_instruct_dataset.py`: Vicuna's `###Human: …\n###Assistant: …\n` lines, or the LLaMA-2 chat
 * prompt), masked as they mask it. `'chat'`: exactly the prompt {@link Chat} builds at inference for
 * these turns (the original's `conversation_video.py` templates and upload wording, the chat's
 * default system prompt), with each reply and its stop (`###`, or `</s>`) as the targets — so a
 * model trained on it is asked what it learnt on.
 */
export type Stage2Format = 'original' | 'chat';

/**
 * How Vicuna conversations are masked. `'original'`: `_mask_targets` exactly, which counts each
 * sentence's length as tokenized alone (with its own BOS and SentencePiece's leading-space piece),
 * so the mask drifts by one or two tokens per sentence: over a world conversation of eight turns
 * it trains on later questions and masks later answers. `'aligned'`: what that code means to do,
 * at the right positions — each answer and the `###` after it (the stop signal) are the targets,
 * the rest is masked.
 */
export type VicunaMasking = 'aligned' | 'original';

/** A stand-in embedding for the chat's wording functions (only kind and description matter). */
function wordingMedia(media: ConversationMedia): MediaEmbedding {
  return { kind: media.kind, tokens: 1, dim: 1, data: new Float32Array(1), description: media.description };
}

/**
 * The media wording before the first question in the original's instruction data. Video:
 * `<Video><ImageHere></Video> ` + `load_video`'s description (`preprocess_multimodal`). Images and
 * audio have no wording of their own there (its audio branch is tuned on visual data): they get the
 * chat's upload wording ({@link userMessage}), so the prompt trained on is the prompt asked at inference.
 */
function originalMediaWording(media: ConversationMedia): string {
  if (media.kind === 'video') return `<Video>${MEDIA_PLACEHOLDER}</Video> ${media.description ?? ''}`;
  return userMessage('', [wordingMedia(media)]);
}

/** Stage 2: the conversation with the media before its first question, as ids and labels (see {@link Stage2Format}). */
export function stage2Layout(tokenizer: PromptTokenizer, options: Stage2LayoutOptions): PromptLayout {
  const { template, conversation, media, queries } = options;
  checkQueries(queries);
  if (!Array.isArray(conversation) || conversation.length === 0) throw invalidArgument('conversation', 'a non-empty array of { q, a }', conversation);
  if (!(template in TEMPLATES)) throw invalidArgument('template', `one of ${Object.keys(TEMPLATES).join(', ')}`, template);
  const withMedia = (text: string, addBos: boolean) => tokenizeWithMedia(tokenizer, text, addBos, queries);
  let built: { ids: number[]; labels: number[] };
  if ((options.format ?? 'original') === 'chat') {
    built = chatTargets(withMedia, TEMPLATES[template], options.system, conversation, media);
  } else {
    const wording = originalMediaWording(media);
    const turns = conversation.map((turn, i) => ({ q: i === 0 ? wording + turn.q : turn.q, a: turn.a }));
    built = template === 'llama2'
      ? llama2Targets(withMedia, LLAMA2_TEMPLATE.prompt(options.system ?? ' ', turns.map((t) => ({ user: t.q, assistant: t.a }))))
      : (options.masking ?? 'aligned') === 'aligned'
        ? vicunaAlignedTargets(withMedia, options.system ?? '', turns)
        : vicunaTargets(withMedia, options.system ?? '', turns);
  }
  const { ids, labels } = built;
  const mediaOffset = ids.indexOf(MEDIA_SLOT);
  // The original would label a placeholder run its masking missed with the placeholder's id; never train on that.
  labels.fill(IGNORE_LABEL, mediaOffset, mediaOffset + queries);
  ids.fill(MEDIA_TOKEN, mediaOffset, mediaOffset + queries);
  return { tokens: Int32Array.from(ids), labels: Int32Array.from(labels), mediaOffset };
}

/**
 * {@link Stage2Format} `'chat'`: the chat's prompt of every turn answered; the targets of turn k run
 * from the end of the chat's prompt for turn k (where its reply starts) to the end of the prompt
 * with turn k answered (the reply and the template's separator after it).
 */
function chatTargets(tokenize: TokenizeWithMedia, template: ChatTemplate, system: string | undefined,
  conversation: readonly ConversationTurn[], media: ConversationMedia): { ids: number[]; labels: number[] } {
  const sys = system ?? template.defaultSystem(new Set([media.kind]));
  const turns: TemplateTurn[] = conversation.map((turn, i) => ({ user: i === 0 ? userMessage(turn.q, [wordingMedia(media)]) : turn.q, assistant: turn.a }));
  const ids = tokenize(template.prompt(sys, turns), true);
  const labels = new Array<number>(ids.length).fill(IGNORE_LABEL);
  turns.forEach((turn, k) => {
    const start = tokenize(template.prompt(sys, [...turns.slice(0, k), { user: turn.user }]), true).length;
    const end = tokenize(template.prompt(sys, turns.slice(0, k + 1)), true).length;
    for (let i = start; i < end; i++) labels[i] = ids[i]!;
  });
  return { ids, labels };
}

/** Marks media positions while the layout is built (no vocabulary has a negative id). */
const MEDIA_SLOT = -1;

type TokenizeWithMedia = (text: string, addBos: boolean) => number[];

/** Token ids of `text`, each placeholder expanded to `queries` {@link MEDIA_SLOT}s, the pieces between tokenized apart. */
function tokenizeWithMedia(tokenizer: PromptTokenizer, text: string, addBos: boolean, queries: number): number[] {
  const ids: number[] = [];
  text.split(MEDIA_PLACEHOLDER).forEach((piece, i) => {
    if (i > 0) ids.push(...new Array<number>(queries).fill(MEDIA_SLOT));
    if (piece !== '' || (i === 0 && addBos)) ids.push(...Array.from(tokenizer.tokenize(piece, i === 0 && addBos)));
  });
  return ids;
}

/**
 * {@link VicunaMasking} `'original'`: `preprocess` + `_mask_targets`: the text tokenized whole; then the header is masked and, per human sentence (its length counted as tokenized alone, BOS
 * included, as the original counts it), `[cur + 2, cur + len)`. The original's off-by-BOS drift is
 * kept: it decides which tokens are targets.
 */
function vicunaTargets(tokenize: TokenizeWithMedia, system: string, turns: readonly ConversationTurn[]): { ids: number[]; labels: number[] } {
  const header = `${system}\n\n`;
  const sentences = turns.flatMap((t) => [{ human: true, text: `###Human: ${t.q}\n` }, { human: false, text: `###Assistant: ${t.a}\n` }]);
  const ids = tokenize(vicunaText(system, turns), true);
  const labels = [...ids];
  let cur = tokenize(header, true).length;
  labels.fill(IGNORE_LABEL, 0, cur);
  for (const sentence of sentences) {
    const length = tokenize(sentence.text, true).length;
    if (sentence.human) fillClamped(labels, cur + 2, cur + length);
    cur += length;
  }
  return { ids, labels };
}

/** The Vicuna text of `preprocess`: `system\n\n###Human: q\n###Assistant: a\n…###`. */
function vicunaText(system: string, turns: readonly ConversationTurn[]): string {
  return `${system}\n\n${turns.map((t) => `###Human: ${t.q}\n###Assistant: ${t.a}\n`).join('')}###`;
}

/**
 * {@link VicunaMasking} `'aligned'`: the text of `preprocess`; the targets are each answer (from the
 * space after `Assistant:`) through the `###` that follows it, located by tokenizing the text up to
 * those points (a SentencePiece boundary after `:` or `###` does not move).
 */
function vicunaAlignedTargets(tokenize: TokenizeWithMedia, system: string, turns: readonly ConversationTurn[]): { ids: number[]; labels: number[] } {
  const text = vicunaText(system, turns);
  const ids = tokenize(text, true);
  const labels = new Array<number>(ids.length).fill(IGNORE_LABEL);
  let offset = `${system}\n\n`.length;
  for (const turn of turns) {
    offset += `###Human: ${turn.q}\n###Assistant:`.length;
    const start = tokenize(text.slice(0, offset), true).length;
    offset += ` ${turn.a}\n`.length;
    const end = tokenize(text.slice(0, offset + '###'.length), true).length;
    for (let i = start; i < end; i++) labels[i] = ids[i]!;
  }
  return { ids, labels };
}

/**
 * `preprocess_for_llama_v2`: the LLaMA-2 chat prompt tokenized whole; BOS masked; per round
 * (split at `</s>`) the instruction up to `[/INST] ` masked (its length tokenized alone, minus 2);
 * everything after the last round masked.
 */
function llama2Targets(tokenize: TokenizeWithMedia, prompt: string): { ids: number[]; labels: number[] } {
  const ids = tokenize(prompt, true);
  const labels = [...ids];
  const sep = '[/INST] ';
  let cur = 1;
  labels.fill(IGNORE_LABEL, 0, cur);
  for (const round of prompt.split('</s>')) {
    if (round === '') break;
    const parts = round.split(sep);
    if (parts.length !== 2) break;
    const instructionLength = tokenize(parts[0] + sep, true).length - 2;
    fillClamped(labels, cur, cur + instructionLength);
    cur += tokenize(round, true).length;
  }
  fillClamped(labels, cur, labels.length);
  return { ids, labels };
}

/** `labels[start:end] = IGNORE` with Python's slice clamping. */
function fillClamped(labels: number[], start: number, end: number): void {
  if (start < labels.length && end > start) labels.fill(IGNORE_LABEL, start, Math.min(end, labels.length));
}

function checkQueries(queries: number): void {
  if (!Number.isInteger(queries) || queries < 1) throw invalidArgument('queries', 'an integer >= 1', queries);
}
