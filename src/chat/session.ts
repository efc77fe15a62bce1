/**
 * A conversation with the language model on one context sequence: text and media embeddings go
 * into the template's prompt, the sequence's KV cells are reused across turns, replies are
 * sampled and streamed (node-llama-cpp's `LlamaChatSession`).
 * @module
 */
import { abortedError, invalidArgument, VideoLlamaError } from '../errors.js';
import { itemLength, type PromptItem } from '../llm/prompt-record.js';
import type { ContextSequence, SequenceModel } from '../llm/sequence.js';
import { validateMediaEmbedding, type MediaEmbedding, type MediaKind } from '../media-embedding.js';
import { jsonSchemaGrammar, type JsonSchema, type JsonSchemaValue, type ResponseGrammar } from './json-schema.js';
import { PieceQueue } from './piece-queue.js';
import { ReplyText } from './reply-text.js';
import { defaultTemplateName, MEDIA_PLACEHOLDER, orderMedia, TEMPLATES, userMessage, type ChatTemplate, type TemplateName } from './templates.js';

/**
 * A user message: text, or text with media embeddings (placed in the template's media wording,
 * see docs/chat.md). The text may not contain {@link MEDIA_PLACEHOLDER} (INVALID_ARGUMENT).
 *
 * @example
 * ```ts
 * await chat.send('Hello!');
 * await chat.send({ text: 'What happens in this video?', media: await model.encodeMedia('clip.mp4') });
 * ```
 */
export type ChatMessage = string | {
  /** The user's words. */
  text: string;
  /**
   * Media the message is about, each of the LLM's width (else DIMENSION_MISMATCH); default
   * none. An audio and a video embedding together get the original's audio-visual wording.
   */
  media?: readonly MediaEmbedding[];
};

/** A completed exchange, as {@link Chat.history} returns it and {@link ChatOptions.history} takes it. */
export interface ChatTurn {
  /** What the user sent. */
  user: ChatMessage;
  /** The model's reply (the text `send` resolved to). */
  assistant: string;
}

/** Options of {@link Chat} (and {@link VideoLlama.createChat}). Every invalid value throws INVALID_ARGUMENT. */
export interface ChatOptions {
  /**
   * `'vicuna'` (Video-LLaMA's `default_conversation`), `'llama2'` (`conv_llava_llama_2`) or a
   * custom {@link ChatTemplate}. Default: chosen from the GGUF's `tokenizer.chat_template`
   * (see {@link VideoLlama.defaultTemplate}).
   */
  template?: TemplateName | ChatTemplate;
  /** System prompt. Default: the template's choice for the first message's media (see {@link ChatTemplate.defaultSystem}). */
  system?: string;
  /** Earlier exchanges to continue from (their media are checked like a message's); default none. */
  history?: readonly ChatTurn[];
  /**
   * What a turn does when the prompt plus room for the reply (`maxTokens` positions) does not
   * fit in the context. `'dropOldTurns'` (default): the oldest whole exchanges (media included)
   * leave the history until it fits, the system prompt and the message being answered always
   * stay, and {@link TurnStats.droppedTurns} counts them. `'error'`: nothing is dropped. Either
   * way a turn whose prompt alone does not fit rejects with CONTEXT_OVERFLOW before any token is
   * evaluated, and a reply that reaches the end of the context stops with stopReason
   * `'contextFull'`.
   */
  contextOverflow?: ContextOverflowPolicy;
}

/** See {@link ChatOptions.contextOverflow}. */
export type ContextOverflowPolicy = 'dropOldTurns' | 'error';

/** Sampling and control options of one reply ({@link Chat.send}, {@link Chat.stream}); an invalid value throws INVALID_ARGUMENT. */
export interface GenerateOptions {
  /** Most tokens to generate; default 300 (the original's `max_new_tokens`). */
  maxTokens?: number;
  /** Softmax temperature; default 1.0 (the original's). 0 picks the most likely token (greedy). */
  temperature?: number;
  /** Nucleus sampling threshold; default 0.9 (the original's). 1 disables it. */
  topP?: number;
  /** Keep the k most likely tokens; default 50 (HuggingFace generate's default). 0 disables it. */
  topK?: number;
  /** Drops tokens less likely than `minP` times the most likely one (after top-p); default 0 (off, the original does not use it). In [0, 1]. */
  minP?: number;
  /** Repetition penalty on the tokens of the reply; default 1.0 (off, the original's). */
  repeatPenalty?: number;
  /** Subtracted from a token's logit once per time it occurs in the reply; default 0 (off). In [-2, 2] (OpenAI's range). */
  frequencyPenalty?: number;
  /** Subtracted from a token's logit once it occurs in the reply; default 0 (off). In [-2, 2]. */
  presencePenalty?: number;
  /**
   * Strings that end the reply (the reply is the text before the first one), in addition to
   * the template's {@link ChatTemplate.stopStrings}; default none. Non-empty strings.
   */
  stop?: readonly string[];
  /**
   * A GBNF grammar (llama.cpp's format, start rule `root`) every sampled token must follow.
   * A grammar libllama cannot parse rejects with INVALID_ARGUMENT. Not with `jsonSchema`.
   */
  grammar?: string;
  /**
   * A JSON schema the answer must follow ({@link JsonSchema}): sampling is constrained by a
   * grammar made from it, and {@link Chat.send} resolves to the parsed value. An answer cut
   * off first (by `maxTokens` or a full context) rejects with INVALID_OUTPUT, `details.text`
   * holding the text. Not with `grammar`.
   */
  jsonSchema?: JsonSchema;
  /** Seed of the sampler (an integer in [0, 2^32 - 2]); default: random. */
  seed?: number;
  /**
   * Stops the reply within one token; the turn then rejects with an ABORTED error whose
   * `details.partialText` holds the reply generated so far, and is not kept.
   */
  signal?: AbortSignal;
}

/**
 * Why a reply ended: `'eos'` the model's end-of-sequence token, `'stopString'` one of the
 * template's {@link ChatTemplate.stopStrings}, `'maxTokens'` {@link GenerateOptions.maxTokens}
 * reached, `'contextFull'` no position left in the context.
 */
export type StopReason = 'eos' | 'stopString' | 'maxTokens' | 'contextFull';

/** What a turn cost. Items are prompt positions: one per text token or media vector. */
export interface TurnStats {
  /** Items in the whole prompt (history included). */
  promptItems: number;
  /** Leading items found in the KV cache and not evaluated again. */
  reusedItems: number;
  /** Items evaluated for this turn (`promptItems - reusedItems`). */
  evaluatedItems: number;
  /** Tokens sampled for the reply (a final EOS included). */
  generatedTokens: number;
  /** Why the reply ended. */
  stopReason: StopReason;
  /** Exchanges dropped from the history before this turn to make room ({@link ChatOptions.contextOverflow}). */
  droppedTurns: number;
  /** Milliseconds spent evaluating the prompt. */
  promptMs: number;
  /** Milliseconds spent generating the reply. */
  generationMs: number;
  /**
   * Milliseconds from the start of the turn (after waiting for other chats' turns) to the
   * first generated token reaching JavaScript: prompt evaluation plus one token. The reply's
   * first text can come later, when that token is whitespace or may begin a stop string. With
   * no token generated, the whole turn.
   */
  firstTokenMs: number;
}

interface UserTurn {
  text: string;
  media: readonly MediaEmbedding[];
  /** Sent as a plain string: {@link Chat.history} gives it back as one. */
  plain?: boolean;
}

interface StoredTurn {
  user: UserTurn;
  assistant: string;
}

const DEFAULTS = {
  maxTokens: 300, temperature: 1.0, topP: 0.9, topK: 50, minP: 0, repeatPenalty: 1.0, frequencyPenalty: 0, presencePenalty: 0,
} as const;

/** {@link GenerateOptions} with a JSON schema: {@link Chat.send} then resolves to the parsed answer. */
export type JsonGenerateOptions<S extends JsonSchema> = GenerateOptions & {
  /** The schema the answer follows (see {@link GenerateOptions.jsonSchema}). */
  jsonSchema: S;
};

function resolveTemplate(template: ChatOptions['template'], fallback: TemplateName): ChatTemplate {
  if (template === undefined) return TEMPLATES[fallback];
  if (typeof template === 'string') {
    if (!(template in TEMPLATES)) throw invalidArgument('options.template', `one of ${Object.keys(TEMPLATES).map((t) => `'${t}'`).join(', ')} or a ChatTemplate`, template);
    return TEMPLATES[template as TemplateName];
  }
  const custom = template as Partial<ChatTemplate>;
  if (typeof custom !== 'object' || custom === null || typeof custom.prompt !== 'function' ||
    typeof custom.defaultSystem !== 'function' || !Array.isArray(custom.stopStrings)) {
    throw invalidArgument('options.template', "'llama2', 'vicuna' or a ChatTemplate object (name, stopStrings, defaultSystem, prompt)", template);
  }
  return template;
}

function checkNoPlaceholder(text: string, name: string): void {
  if (text.includes(MEDIA_PLACEHOLDER)) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `${name} contains ${MEDIA_PLACEHOLDER}, the media placeholder of the prompt; ` +
      'pass media as MediaEmbedding objects instead', { name });
  }
}

function inRange(value: unknown, name: string, expected: string, ok: (v: number) => boolean): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || !ok(value))) {
    throw invalidArgument(name, expected, value);
  }
}

function validateGenerateOptions(options: GenerateOptions): void {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  inRange(options.maxTokens, 'options.maxTokens', 'a non-negative integer', (v) => Number.isInteger(v) && v >= 0 && v < 2 ** 31);
  inRange(options.temperature, 'options.temperature', 'a number >= 0', (v) => v >= 0);
  inRange(options.topP, 'options.topP', 'a number in (0, 1]', (v) => v > 0 && v <= 1);
  inRange(options.topK, 'options.topK', 'a non-negative integer', (v) => Number.isInteger(v) && v >= 0);
  inRange(options.minP, 'options.minP', 'a number in [0, 1]', (v) => v >= 0 && v <= 1);
  inRange(options.repeatPenalty, 'options.repeatPenalty', 'a number > 0', (v) => v > 0);
  inRange(options.frequencyPenalty, 'options.frequencyPenalty', 'a number in [-2, 2]', (v) => v >= -2 && v <= 2);
  inRange(options.presencePenalty, 'options.presencePenalty', 'a number in [-2, 2]', (v) => v >= -2 && v <= 2);
  if (options.stop !== undefined && (!Array.isArray(options.stop) || options.stop.some((s) => typeof s !== 'string' || s === ''))) {
    throw invalidArgument('options.stop', 'an array of non-empty strings', options.stop);
  }
  if (options.grammar !== undefined && (typeof options.grammar !== 'string' || options.grammar.trim() === '')) {
    throw invalidArgument('options.grammar', 'a non-empty GBNF string', options.grammar);
  }
  if (options.grammar !== undefined && options.jsonSchema !== undefined) {
    throw new VideoLlamaError('INVALID_ARGUMENT', 'options.grammar and options.jsonSchema cannot be used together: pass one', { name: 'options.grammar' });
  }
  // 0xFFFFFFFF is libllama's "random seed" value.
  inRange(options.seed, 'options.seed', 'an integer in [0, 4294967294]', (v) => Number.isInteger(v) && v >= 0 && v < 0xffffffff);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidArgument('options.signal', 'an AbortSignal', options.signal);
}

/** A message checked (media widths included) and in one shape. */
function normalizeMessage(message: ChatMessage, name: string, width: number): UserTurn {
  if (typeof message === 'string') {
    checkNoPlaceholder(message, name);
    return { text: message, media: [], plain: true };
  }
  if (typeof message !== 'object' || message === null) throw invalidArgument(name, 'a string or { text, media? }', message);
  const { text, media = [] } = message;
  if (typeof text !== 'string') throw invalidArgument(`${name}.text`, 'a string', text);
  checkNoPlaceholder(text, `${name}.text`);
  if (!Array.isArray(media)) throw invalidArgument(`${name}.media`, 'an array of MediaEmbedding', media);
  return { text, media: media.map((m, i) => validateMediaEmbedding(m, `${name}.media[${i}]`, width)) };
}

/**
 * {@link ChatOptions} checked against `model` (INVALID_ARGUMENT naming the bad value), so that a
 * caller can check them before taking a sequence. @internal
 */
export function chatSettings(options: ChatOptions, model: SequenceModel): {
  template: ChatTemplate; system?: string; turns: StoredTurn[]; contextOverflow: ContextOverflowPolicy;
} {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  const template = resolveTemplate(options.template, defaultTemplateName(model.chatTemplate));
  if (options.system !== undefined) {
    if (typeof options.system !== 'string') throw invalidArgument('options.system', 'a string', options.system);
    checkNoPlaceholder(options.system, 'options.system');
  }
  if (options.history !== undefined && !Array.isArray(options.history)) throw invalidArgument('options.history', 'an array of ChatTurn', options.history);
  const turns = (options.history ?? []).map((turn, i) => {
    if (typeof turn?.assistant !== 'string') throw invalidArgument(`options.history[${i}].assistant`, 'a string', turn?.assistant);
    return { user: normalizeMessage(turn.user, `options.history[${i}].user`, model.embeddingWidth), assistant: turn.assistant };
  });
  const { contextOverflow = 'dropOldTurns' } = options;
  if (contextOverflow !== 'dropOldTurns' && contextOverflow !== 'error') {
    throw invalidArgument('options.contextOverflow', "'dropOldTurns' or 'error'", contextOverflow);
  }
  return { template, system: options.system, turns, contextOverflow };
}

/**
 * A conversation on one {@link ContextSequence} (`new Chat(context.getSequence())`, or
 * {@link VideoLlama.createChat}). Its sequence keeps the evaluated prompt, so a turn evaluates
 * only what is new since the chat's last one; turns of the chats of one context run one at a
 * time. {@link Chat.dispose} gives the sequence back to the context (its cells cleared); after
 * it, or after the context is disposed, turns reject with DISPOSED.
 *
 * @example
 * ```ts
 * const chat = new Chat(context.getSequence(), { template: 'vicuna' });
 * console.log(await chat.send('Hello!', { temperature: 0 }));
 * for await (const piece of chat.stream({ text: 'Describe it.', media: [videoEmbedding] })) process.stdout.write(piece);
 * ```
 */
export class Chat {
  /** The template this chat formats its prompt with. */
  readonly template: ChatTemplate;
  private readonly turns: StoredTurn[] = [];
  private readonly systemOption: string | undefined;
  /** The system prompt once the first turn fixed it (dropping that turn later must not change it). */
  private system: string | undefined;
  private readonly contextOverflow: ContextOverflowPolicy;
  private stats: TurnStats | undefined;

  /**
   * Starts a conversation on `sequence` (which the chat then owns: {@link Chat.dispose} disposes
   * it). Throws INVALID_ARGUMENT for bad options, DISPOSED for a disposed sequence.
   */
  constructor(private readonly sequence: ContextSequence, options: ChatOptions = {}) {
    if (typeof sequence?.throwIfDisposed !== 'function') throw invalidArgument('sequence', 'a ContextSequence', sequence);
    sequence.throwIfDisposed();
    const settings = chatSettings(options, sequence.context.model);
    this.template = settings.template;
    this.systemOption = settings.system;
    this.contextOverflow = settings.contextOverflow;
    this.turns.push(...settings.turns);
  }

  /** The completed exchanges, oldest first. */
  get history(): ChatTurn[] {
    return this.turns.map((t) => ({ user: t.user.plain ? t.user.text : { text: t.user.text, media: [...t.user.media] }, assistant: t.assistant }));
  }

  /** Statistics of the last completed turn; undefined before the first. */
  get lastStats(): TurnStats | undefined {
    return this.stats;
  }

  /**
   * Sends a message and resolves to the whole reply (the text before any stop string,
   * whitespace-trimmed); the exchange is then added to {@link Chat.history}.
   *
   * Rejects with INVALID_ARGUMENT (bad message or options), DIMENSION_MISMATCH (media of
   * the wrong width), ABORTED when `options.signal` aborts (the turn is then not kept),
   * CONTEXT_OVERFLOW when the conversation no longer fits in the context, DISPOSED after the
   * chat or its context was disposed.
   *
   * @example
   * ```ts
   * const reply = await chat.send({ text: 'Describe the video.', media }, { temperature: 0, maxTokens: 100 });
   * console.log(reply, chat.lastStats?.stopReason);
   * ```
   */
  async send<const S extends JsonSchema>(message: ChatMessage, options: JsonGenerateOptions<S>): Promise<JsonSchemaValue<S>>;
  async send(message: ChatMessage, options?: GenerateOptions): Promise<string>;
  async send(message: ChatMessage, options: GenerateOptions = {}): Promise<unknown> {
    validateGenerateOptions(options);
    const user = this.normalize(message, 'message');
    const grammar = await responseGrammar(options);
    return this.runTurn(user, options, grammar, options.signal, () => {});
  }

  /**
   * Sends a message and yields the reply as it is generated (pieces of text, in order; joined
   * they are what {@link Chat.send} would resolve to). Leaving the loop early stops the
   * generation; such a turn is not kept. Errors are those of {@link Chat.send}, thrown from the
   * loop.
   *
   * @example
   * ```ts
   * const controller = new AbortController();
   * setTimeout(() => controller.abort(), 10_000);
   * for await (const piece of chat.stream({ text: 'What happens?', media }, { signal: controller.signal })) {
   *   process.stdout.write(piece);
   * }
   * ```
   */
  async *stream(message: ChatMessage, options: GenerateOptions = {}): AsyncGenerator<string, void, undefined> {
    validateGenerateOptions(options);
    const user = this.normalize(message, 'message');
    const grammar = await responseGrammar(options);
    const stopper = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stopper.signal]) : stopper.signal;
    const pieces = new PieceQueue();
    const turn = this.runTurn(user, options, grammar, signal, (text) => pieces.push(text)).then(
      () => pieces.end(),
      (error: unknown) => pieces.fail(error),
    );
    try {
      yield* pieces;
    } finally {
      stopper.abort();
      await turn;
    }
  }

  /**
   * Forgets the history (a system prompt chosen from the first message's media is chosen again)
   * and clears the sequence's cells, after the turns already sent. Rejects with DISPOSED after
   * {@link Chat.dispose}.
   */
  async reset(): Promise<void> {
    this.sequence.throwIfDisposed();
    await this.sequence.serial(async () => {
      this.turns.length = 0;
      this.system = undefined;
      this.stats = undefined;
      await this.sequence.clear();
    });
  }

  /** Gives the chat's sequence back to its context (cells cleared) after the turns already sent; later turns reject with DISPOSED. Idempotent. */
  async dispose(): Promise<void> {
    await this.sequence.dispose();
  }

  /** `await using chat = model.createChat()` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Checks a message and its media (width included) and gives it one shape. */
  private normalize(message: ChatMessage, name: string): UserTurn {
    return normalizeMessage(message, name, this.sequence.context.model.embeddingWidth);
  }

  private systemPrompt(first: UserTurn): string {
    return this.system ?? this.systemOption ?? this.template.defaultSystem(new Set<MediaKind>(first.media.map((m) => m.kind)));
  }

  /**
   * The prompt of the history plus `user` after the overflow policy: with 'dropOldTurns', the
   * oldest exchanges leave the history while the prompt plus `replyRoom` does not fit. Throws
   * CONTEXT_OVERFLOW when the prompt alone still does not fit.
   */
  private fittedPrompt(user: UserTurn, replyRoom: number): { items: PromptItem[]; dropped: number } {
    const size = this.sequence.context.size;
    const system = this.systemPrompt(this.turns[0]?.user ?? user);
    let dropped = 0;
    let items = this.promptItems(system, this.turns, user);
    while (this.contextOverflow === 'dropOldTurns' && dropped < this.turns.length && promptLength(items) + replyRoom > size) {
      dropped++;
      items = this.promptItems(system, this.turns.slice(dropped), user);
    }
    const needed = promptLength(items);
    if (needed > size) {
      throw new VideoLlamaError('CONTEXT_OVERFLOW', `The prompt needs ${needed} tokens but the context holds ${size}` +
        (dropped < this.turns.length ? " (contextOverflow 'error' keeps every earlier turn)" : ' even without earlier turns') +
        ': raise contextSize, or shorten the message', { needed, contextSize: size });
    }
    this.system = system;
    this.turns.splice(0, dropped);
    return { items, dropped };
  }

  /** The prompt of `turns` plus `user`, split at the placeholders and tokenized as the original's `get_context_emb`. */
  private promptItems(system: string, earlier: readonly StoredTurn[], user: UserTurn): PromptItem[] {
    const turns = [...earlier, { user, assistant: undefined }];
    const text = this.template.prompt(system, turns.map((t) => ({ user: userMessage(t.user.text, t.user.media), assistant: t.assistant })));
    const media = turns.flatMap((t) => orderMedia(t.user.media));
    const segments = text.split(MEDIA_PLACEHOLDER);
    if (segments.length !== media.length + 1) {
      throw new VideoLlamaError('INVALID_ARGUMENT', `The template '${this.template.name}' produced ${segments.length - 1} media placeholders ` +
        `for ${media.length} media embeddings`);
    }
    const items: PromptItem[] = [];
    segments.forEach((segment, i) => {
      // Only the first segment gets BOS; "<s>" / "</s>" in the text are the special tokens.
      const tokens = this.sequence.context.model.tokenIds(segment, i === 0, true);
      if (tokens.length > 0) items.push({ type: 'tokens', tokens });
      const m = media[i];
      if (m) items.push({ type: 'embeddings', data: m.data, count: m.tokens });
    });
    return items;
  }

  private runTurn(user: UserTurn, options: GenerateOptions, grammar: ResponseGrammar | undefined, signal: AbortSignal | undefined,
    onText: (text: string) => void): Promise<unknown> {
    const { sequence } = this;
    try {
      sequence.throwIfDisposed();
    } catch (error) {
      return Promise.reject(error);
    }
    return sequence.serial(async () => {
      const maxTokens = options.maxTokens ?? DEFAULTS.maxTokens;
      const { items, dropped } = this.fittedPrompt(user, maxTokens);
      const started = performance.now();
      let evaluated = started;
      // A JSON answer ends at its grammar's end; the template's stop strings could be inside a JSON string.
      const stopStrings = [...(grammar ? [grammar.stop] : this.template.stopStrings), ...(options.stop ?? [])];
      const reply = new ReplyText(stopStrings);
      const decoder = new TextDecoder('utf-8');
      const emit = (text: string) => text && onText(text);
      let firstTokenAt: number | undefined;
      const generation = {
        options: {
          maxTokens,
          temperature: options.temperature ?? DEFAULTS.temperature,
          topP: options.topP ?? DEFAULTS.topP,
          topK: options.topK ?? DEFAULTS.topK,
          minP: options.minP ?? DEFAULTS.minP,
          repeatPenalty: options.repeatPenalty ?? DEFAULTS.repeatPenalty,
          frequencyPenalty: options.frequencyPenalty ?? DEFAULTS.frequencyPenalty,
          presencePenalty: options.presencePenalty ?? DEFAULTS.presencePenalty,
          seed: options.seed,
          grammar: grammar?.gbnf ?? options.grammar,
          stopStrings,
        },
        onPromptDone: () => {
          evaluated = performance.now();
        },
        onPiece: (bytes: Uint8Array) => {
          firstTokenAt ??= performance.now();
          emit(reply.push(decoder.decode(bytes, { stream: true })));
        },
      };
      let ran: Awaited<ReturnType<typeof sequence.run>>;
      try {
        ran = await sequence.run(items, 'The reply', signal, generation);
      } catch (error) {
        // The reply so far goes with the abort.
        if (error instanceof VideoLlamaError && error.code === 'ABORTED') throw abortedError('The reply', signal, { partialText: reply.text });
        throw error;
      }
      const { evaluation, outcome: result } = ran;
      const finished = performance.now();
      emit(reply.push(decoder.decode()));
      emit(reply.finish());
      this.stats = {
        promptItems: evaluation.items,
        reusedItems: evaluation.reused,
        evaluatedItems: evaluation.evaluated,
        generatedTokens: result.sampled,
        stopReason: result.stopReason!,
        droppedTurns: dropped,
        promptMs: evaluated - started,
        generationMs: finished - evaluated,
        firstTokenMs: (firstTokenAt ?? finished) - started,
      };
      // An answer that does not follow the schema throws here and is not kept (lastStats says why it ended).
      const answer = grammar ? grammar.parse(reply.text) : reply.text;
      this.turns.push({ user, assistant: reply.text });
      return answer;
    });
  }
}

/** Positions a prompt takes. */
function promptLength(items: readonly PromptItem[]): number {
  return items.reduce((sum, item) => sum + itemLength(item), 0);
}

/** The grammar of `options.jsonSchema`, if any. */
function responseGrammar(options: GenerateOptions): Promise<ResponseGrammar | undefined> {
  return options.jsonSchema === undefined ? Promise.resolve(undefined) : jsonSchemaGrammar(options.jsonSchema);
}
