import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';

import { VideoLlamaError, type VideoLlama } from '../../src/index.js';
import { GREEDY, loadTinyLlama, replyOnce } from '../support/tiny-llama.js';

/** Sampled (not greedy) so that the grammar, not the model's one favourite path, is what keeps the answers valid. */
const SAMPLED = { temperature: 0.9, topK: 0, topP: 1, maxTokens: 400 } as const;
const SEEDS = [1, 2, 3];

const OBJECT = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' }, ok: { type: 'boolean' } },
} as const;
const ENUM = { enum: ['red', 'green', 'blue'] } as const;
const ARRAY = { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 4 } as const;
const NESTED = {
  type: 'object',
  properties: {
    title: { type: 'string', maxLength: 8 },
    tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 3 },
    size: { type: 'object', properties: { w: { type: 'integer' }, h: { type: 'integer' } } },
  },
} as const;

async function error(promise: Promise<unknown>): Promise<VideoLlamaError> {
  const caught = await promise.then(() => undefined, (e: unknown) => e);
  expect(caught).toBeInstanceOf(VideoLlamaError);
  return caught as VideoLlamaError;
}

describe('constrained and tuned sampling with a tiny LLaMA', () => {
  let llama: VideoLlama;
  beforeAll(async () => {
    llama = await loadTinyLlama();
  });
  afterAll(() => llama.dispose());

  it.each(SEEDS)('object schema: the random model answers with a valid object (seed %i)', async (seed) => {
    await using chat = llama.createChat();
    const value = await chat.send('Who are you?', { ...SAMPLED, seed, jsonSchema: OBJECT });
    expectTypeOf(value).toEqualTypeOf<{ name: string; age: number; ok: boolean }>();
    expect(Object.keys(value)).toEqual(['name', 'age', 'ok']);
    expect(typeof value.name).toBe('string');
    expect(value.name.length).toBeLessThanOrEqual(12);
    expect(Number.isInteger(value.age)).toBe(true);
    expect(typeof value.ok).toBe('boolean');
    expect(chat.lastStats?.stopReason).toBe('stopString');
    expect(JSON.parse(chat.history[0]!.assistant)).toEqual(value);
  });

  it.each(SEEDS)('enum, array and nested schemas: valid answers (seed %i)', async (seed) => {
    await using chat = llama.createChat();
    const color = await chat.send('Pick a colour', { ...SAMPLED, seed, jsonSchema: ENUM });
    expect(['red', 'green', 'blue']).toContain(color);
    const numbers = await chat.send('Some numbers', { ...SAMPLED, seed, jsonSchema: ARRAY });
    expect(Array.isArray(numbers)).toBe(true);
    expect(numbers.length).toBeGreaterThanOrEqual(1);
    expect(numbers.length).toBeLessThanOrEqual(4);
    for (const n of numbers) expect(Number.isFinite(n)).toBe(true);
    const nested = await chat.send('Describe it', { ...SAMPLED, seed, jsonSchema: NESTED });
    expect(Object.keys(nested)).toEqual(['title', 'tags', 'size']);
    expect(nested.tags.every((t) => t === 'a' || t === 'b')).toBe(true);
    expect(Number.isInteger(nested.size.w) && Number.isInteger(nested.size.h)).toBe(true);
  });

  it('without the schema the same seed gives no JSON (the grammar is what constrains it)', async () => {
    const free = await replyOnce(llama, 'Who are you?', { ...SAMPLED, seed: 1, maxTokens: 40 });
    expect(() => JSON.parse(free)).toThrow();
  });

  it('stream yields the JSON text of the answer', async () => {
    await using chat = llama.createChat();
    let text = '';
    for await (const piece of chat.stream('Pick', { ...SAMPLED, seed: 7, jsonSchema: ENUM })) text += piece;
    expect(['"red"', '"green"', '"blue"']).toContain(text);
  });

  it('a raw GBNF grammar constrains the reply', async () => {
    for (const seed of SEEDS) {
      const reply = await replyOnce(llama, 'Yes or no?', { ...SAMPLED, seed, grammar: 'root ::= ("yes" | "no") "." ' });
      expect(['yes.', 'no.']).toContain(reply);
    }
  });

  it('an answer cut off by maxTokens is INVALID_OUTPUT with the text, and is not kept', async () => {
    await using chat = llama.createChat();
    const e = await error(chat.send('Who?', { ...SAMPLED, seed: 1, maxTokens: 3, jsonSchema: OBJECT }));
    expect(e.code).toBe('INVALID_OUTPUT');
    expect(String(e.details?.text)).toMatch(/^\{/);
    expect(chat.lastStats?.stopReason).toBe('maxTokens');
    expect(chat.history).toEqual([]);
  });

  it('bad grammars and schemas are INVALID_ARGUMENT naming the option; the chat still works after', async () => {
    await using chat = llama.createChat();
    const bad = await error(chat.send('x', { grammar: 'root ::= ( "unclosed' }));
    expect(bad.code).toBe('INVALID_ARGUMENT');
    expect(bad.message).toContain('options.grammar');
    const noRoot = await error(chat.send('x', { grammar: 'start ::= "a"' }));
    expect(noRoot.code).toBe('INVALID_ARGUMENT');
    const schema = await error(chat.send('x', { jsonSchema: { type: 'strnig' } as never }));
    expect(schema.code).toBe('INVALID_ARGUMENT');
    expect(schema.message).toContain('options.jsonSchema.type');
    const both = await error(chat.send('x', { grammar: 'root ::= "a"', jsonSchema: ENUM }));
    expect(both.message).toContain('options.grammar');
    expect(await chat.send('x', { ...GREEDY, maxTokens: 4, grammar: 'root ::= "ok"' })).toBe('ok');
  });

  it.each([
    ['minP', 1.5], ['minP', -0.1], ['frequencyPenalty', 2.5], ['presencePenalty', -3], ['presencePenalty', Number.NaN],
    ['stop', ['']], ['stop', 'x'], ['grammar', ''],
  ])('rejects options.%s = %j', async (name, value) => {
    await using chat = llama.createChat();
    const e = await error(chat.send('x', { [name]: value }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain(`options.${name}`);
  });

  it('a per-call stop string ends the reply before it, with stopReason stopString', async () => {
    const full = await replyOnce(llama, 'Tell me a story', { ...GREEDY, maxTokens: 30 });
    const stop = full.slice(10, 13);
    expect(stop.trim().length).toBeGreaterThan(0);
    await using chat = llama.createChat();
    const cut = await chat.send('Tell me a story', { ...GREEDY, maxTokens: 30, stop: [stop] });
    expect(cut).toBe(full.slice(0, full.indexOf(stop)).trim());
    expect(chat.lastStats?.stopReason).toBe('stopString');
  });

  it('presence and frequency penalties discourage repeated tokens; min-p 1 is greedy', async () => {
    const tokens = (text: string) => llama.model.tokenize(text, { addBos: false });
    const repeats = (text: string) => tokens(text).length - new Set(tokens(text)).size;
    const greedy = await replyOnce(llama, 'Tell me a story', { ...GREEDY, maxTokens: 60 });
    const present = await replyOnce(llama, 'Tell me a story', { ...GREEDY, maxTokens: 60, presencePenalty: 2 });
    const frequent = await replyOnce(llama, 'Tell me a story', { ...GREEDY, maxTokens: 60, frequencyPenalty: 2 });
    expect(repeats(greedy)).toBeGreaterThan(0);
    expect(repeats(present)).toBeLessThan(repeats(greedy));
    expect(repeats(frequent)).toBeLessThan(repeats(greedy));
    // min-p 1 keeps only the most likely token, whatever the temperature and seed.
    const minP = await replyOnce(llama, 'Tell me a story', { temperature: 1.5, topK: 0, topP: 1, minP: 1, seed: 5, maxTokens: 60 });
    expect(minP).toBe(greedy);
  });

  it('an aborted reply carries the text generated so far', async () => {
    await using chat = llama.createChat();
    const controller = new AbortController();
    let seen = '';
    const run = (async () => {
      for await (const piece of chat.stream('Tell me a story', { ...GREEDY, maxTokens: 200, signal: controller.signal })) {
        seen += piece;
        if (seen.length > 10) controller.abort();
      }
    })();
    const e = await error(run);
    expect(e.code).toBe('ABORTED');
    expect(String(e.details?.partialText).startsWith(seen)).toBe(true);
    expect(String(e.details?.partialText).length).toBeGreaterThan(10);
    expect(chat.history).toEqual([]);
  });
});

describe('long chats with a tiny LLaMA in a small context', () => {
  const CONTEXT = 256;
  let llama: VideoLlama;
  beforeAll(async () => {
    llama = await loadTinyLlama({ contextSize: CONTEXT });
  });
  afterAll(() => llama.dispose());

  const message = (i: number) => `Message number ${i}: ${'tell me more about the video '.repeat(4)}`;
  const options = { ...GREEDY, maxTokens: 30 } as const;

  it("'dropOldTurns' drops the oldest whole turns, keeps the system prompt, and says so", async () => {
    await using chat = llama.createChat({ system: 'You are terse.' });
    let dropped = 0;
    for (let i = 0; i < 8; i++) {
      await chat.send(message(i), options);
      const stats = chat.lastStats!;
      expect(stats.promptItems + options.maxTokens).toBeLessThanOrEqual(CONTEXT);
      dropped += stats.droppedTurns;
    }
    expect(dropped).toBeGreaterThan(0);
    const history = chat.history;
    expect(history.length).toBe(8 - dropped);
    // The newest turns are the ones kept, oldest first.
    expect(history.map((t) => t.user)).toEqual([...Array(8).keys()].slice(dropped).map(message)); // sent as strings, kept as strings
  });

  it("'error' keeps every turn and refuses with CONTEXT_OVERFLOW before any token", async () => {
    await using chat = llama.createChat({ contextOverflow: 'error' });
    let e: VideoLlamaError | undefined;
    for (let i = 0; i < 12 && !e; i++) {
      e = await chat.send(message(i), options).then(() => undefined, (x: VideoLlamaError) => x);
    }
    expect(e?.code).toBe('CONTEXT_OVERFLOW');
    expect(Number(e?.details?.needed)).toBeGreaterThan(CONTEXT);
    expect(chat.lastStats?.droppedTurns).toBe(0);
  });

  it('a message that does not fit alone is CONTEXT_OVERFLOW and the history is kept', async () => {
    await using chat = llama.createChat();
    await chat.send('Hi', options);
    const e = await error(chat.send('word '.repeat(CONTEXT), options));
    expect(e.code).toBe('CONTEXT_OVERFLOW');
    expect(e.message).toContain('even without earlier turns');
    expect(chat.history.length).toBe(1);
  });

  it("a reply reaching the end of the context stops with 'contextFull', not an error", async () => {
    await using chat = llama.createChat();
    const reply = await chat.send(message(0), { ...GREEDY, maxTokens: 10_000, grammar: 'root ::= [a-z ] root' });
    const stats = chat.lastStats!;
    expect(stats.stopReason).toBe('contextFull');
    expect(stats.promptItems + stats.generatedTokens).toBeGreaterThanOrEqual(CONTEXT);
    expect(reply.length).toBeGreaterThan(0);
  });

  it('reset() forgets the history and the cached positions', async () => {
    await using chat = llama.createChat();
    const first = await chat.send('Hello', options);
    await chat.send('Again', options);
    expect(chat.lastStats!.reusedItems).toBeGreaterThan(0);
    await chat.reset();
    expect(chat.history).toEqual([]);
    expect(chat.lastStats).toBeUndefined();
    expect(await chat.send('Hello', options)).toBe(first);
    expect(chat.lastStats!.reusedItems).toBe(0);
  });
});
