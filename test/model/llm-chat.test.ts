import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ContextSequence, LlmModel, MediaEmbedding, VideoLlama } from '../../src/index.js';
import { maxAbsDiff } from '../support/npy.js';
import { GREEDY, loadTinyLlama, replyOnce } from '../support/tiny-llama.js';

/** Logits agree to this when the same positions are fed as token ids or as their embedding rows. */
const LOGIT_TOLERANCE = 1e-4;

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const pieces: string[] = [];
  for await (const piece of stream) pieces.push(piece);
  return pieces;
}

describe('chat with a tiny LLaMA', () => {
  let llama: VideoLlama;
  let model: LlmModel;
  /** The second sequence of the context (chats take the first), for raw logits. */
  let sequence: ContextSequence;
  beforeAll(async () => {
    llama = await loadTinyLlama();
    model = llama.model;
    sequence = llama.context.getSequence();
  });
  afterAll(() => llama.dispose());

  it('greedy generation is deterministic, and not one token repeated', async () => {
    const replies = [];
    for (let i = 0; i < 2; i++) replies.push(await replyOnce(llama, 'Hello, who are you?', { ...GREEDY, maxTokens: 24 }));
    const other = await loadTinyLlama();
    replies.push(await replyOnce(other, 'Hello, who are you?', { ...GREEDY, maxTokens: 24 }));
    await other.dispose();
    expect(replies[1]).toBe(replies[0]);
    expect(replies[2]).toBe(replies[0]);
    expect(new Set(model.tokenize(replies[0]!, { addBos: false })).size).toBeGreaterThan(3);
  });

  it('sampling with a seed is reproducible', async () => {
    const options = { temperature: 0.8, topK: 40, topP: 0.95, repeatPenalty: 1.1, seed: 1234, maxTokens: 16 };
    const a = await replyOnce(llama, 'Tell me about the sound', options);
    const b = await replyOnce(llama, 'Tell me about the sound', options);
    expect(b).toBe(a);
  });

  it('streams the same text that send() returns', async () => {
    const sent = await replyOnce(llama, 'Describe the video', { ...GREEDY, maxTokens: 20 });
    await using chat = llama.createChat();
    const pieces = await collect(chat.stream('Describe the video', { ...GREEDY, maxTokens: 20 }));
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(sent);
  });

  it('soft prompt: token embedding rows fed as embeddings give the logits of the token ids', async () => {
    const tokens = model.tokenize('###Human: Close your eyes and imagine the sound###Assistant:');
    const fromTokens = await sequence.nextTokenLogits([tokens]);
    const rows = await model.tokenEmbeddings(tokens);
    expect(rows.length).toBe(tokens.length * model.embeddingWidth);
    const asEmbedding: MediaEmbedding = { kind: 'image', tokens: tokens.length, dim: model.embeddingWidth, data: rows };
    const fromEmbeddings = await sequence.nextTokenLogits([asEmbedding]);
    expect(fromEmbeddings.length).toBe(model.vocabularySize);
    const diff = maxAbsDiff(fromTokens, fromEmbeddings);
    console.log(`soft prompt, all embeddings: max |logit diff| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(LOGIT_TOLERANCE);

    // Mixed: tokens, then embeddings in the middle, then tokens — one sequence, positions in order.
    const split = [3, 9];
    const middle: MediaEmbedding = {
      kind: 'video', tokens: split[1]! - split[0]!, dim: model.embeddingWidth,
      data: rows.slice(split[0]! * model.embeddingWidth, split[1]! * model.embeddingWidth),
    };
    const mixed = await sequence.nextTokenLogits([tokens.slice(0, split[0]), middle, tokens.slice(split[1])]);
    const mixedDiff = maxAbsDiff(fromTokens, mixed);
    console.log(`soft prompt, mixed: max |logit diff| = ${mixedDiff.toExponential(2)}`);
    expect(mixedDiff).toBeLessThan(LOGIT_TOLERANCE);
  });

  it('reusing the cached prefix gives the logits of a fresh evaluation', async () => {
    const first = model.tokenize('###Human: Hello there###Assistant: Hi###');
    const second = model.tokenize('Human: What do you see?###Assistant:', { addBos: false });
    await sequence.nextTokenLogits([model.tokenize('something else entirely')]);
    const fresh = await sequence.nextTokenLogits([first, second]);
    await sequence.nextTokenLogits([first]);
    const reused = await sequence.nextTokenLogits([first, second]);
    expect(maxAbsDiff(fresh, reused)).toBeLessThan(LOGIT_TOLERANCE);
  });

  it('turn 2 evaluates only what is new, and replies like a fresh context given the history', async () => {
    const options = { ...GREEDY, maxTokens: 12 };
    await using chat = llama.createChat({ template: 'vicuna' });
    const reply1 = await chat.send('Hello, who are you?', options);
    const turn1 = chat.lastStats!;
    const reply2 = await chat.send('What is in the video?', options);
    const turn2 = chat.lastStats!;
    expect(turn2.reusedItems).toBeGreaterThanOrEqual(turn1.promptItems);
    expect(turn2.evaluatedItems).toBe(turn2.promptItems - turn2.reusedItems);
    expect(turn2.evaluatedItems).toBeLessThanOrEqual(turn2.promptItems - turn1.promptItems);
    console.log(`turn 1: ${turn1.promptItems} items evaluated; turn 2: ${turn2.evaluatedItems} of ${turn2.promptItems} evaluated`);

    await using fresh = await loadTinyLlama();
    const replay = fresh.createChat({ template: 'vicuna', history: [{ user: 'Hello, who are you?', assistant: reply1 }] });
    expect(await replay.send('What is in the video?', options)).toBe(reply2);
    expect(replay.lastStats).toMatchObject({ promptItems: turn2.promptItems, reusedItems: 0, evaluatedItems: turn2.promptItems });
    expect(chat.history).toEqual([ // sent as strings, kept as strings
      { user: 'Hello, who are you?', assistant: reply1 },
      { user: 'What is in the video?', assistant: reply2 },
    ]);
  });

  it('splices media embeddings where their placeholders are, and reuses them in later turns', async () => {
    const width = model.embeddingWidth;
    const video: MediaEmbedding = { kind: 'video', tokens: 8, dim: width, data: Float32Array.from({ length: 8 * width }, (_, i) => Math.sin(i)) };
    const audio: MediaEmbedding = { kind: 'audio', tokens: 4, dim: width, data: Float32Array.from({ length: 4 * width }, (_, i) => Math.cos(i)) };
    const textOnly = llama.createChat({ template: 'llama2', system: '' });
    await textOnly.send('What happens?', { ...GREEDY, maxTokens: 6 });
    const textOnlyItems = textOnly.lastStats!.promptItems;
    await textOnly.dispose();
    await using chat = llama.createChat({ template: 'llama2' });
    await chat.send({ text: 'What happens?', media: [video, audio] }, { ...GREEDY, maxTokens: 6 });
    const turn1 = chat.lastStats!;
    // The first token comes after the prompt and before the end of the generation.
    expect(turn1.firstTokenMs).toBeGreaterThanOrEqual(turn1.promptMs);
    expect(turn1.firstTokenMs).toBeLessThanOrEqual(turn1.promptMs + turn1.generationMs);
    // The media add their vectors (12) and the audio-visual wording to the prompt.
    expect(turn1.promptItems).toBeGreaterThan(textOnlyItems + 12);
    await chat.send('And then?', { ...GREEDY, maxTokens: 6 });
    expect(chat.lastStats!.reusedItems).toBeGreaterThanOrEqual(turn1.promptItems);
  });

  it('stops at the template stop string and keeps it out of the reply', async () => {
    const stop = 'e';
    const template = {
      name: 'stop-at-e',
      stopStrings: [stop],
      defaultSystem: () => '',
      prompt: (system: string, turns: readonly { user: string; assistant?: string }[]) =>
        system + turns.map((t) => `${t.user}:${t.assistant ?? ''}`).join('\n'),
    };
    await using chat = llama.createChat({ template });
    const reply = await chat.send('Please answer', { ...GREEDY, maxTokens: 200 });
    expect(chat.lastStats!.stopReason).toBe('stopString');
    expect(reply).not.toContain(stop);
  });
});

describe('soft prompts with a quantized token embedding matrix', () => {
  it('q8_0 token_embd rows, dequantized as libllama does, give the logits of the token ids', async () => {
    const llama = await loadTinyLlama({ model: { tokenEmbeddingType: 'q8_0', weightType: 'q8_0' } });
    const { model } = llama;
    const sequence = llama.context.getSequence();
    const tokens = model.tokenize('###Human: What do you hear?###Assistant:');
    const fromTokens = await sequence.nextTokenLogits([tokens]);
    const rows = await model.tokenEmbeddings(tokens);
    const fromRows = await sequence.nextTokenLogits([{ kind: 'audio', tokens: tokens.length, dim: model.embeddingWidth, data: rows }]);
    await llama.dispose();
    const diff = maxAbsDiff(fromTokens, fromRows);
    console.log(`soft prompt, q8_0 token_embd: max |logit diff| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(LOGIT_TOLERANCE);
  });
});

describe('default template from GGUF metadata', () => {
  it('is llama2 when the GGUF carries a LLaMA-2 chat template', async () => {
    const chatTemplate = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}<<SYS>>\\n{{ m['content'] }}\\n<</SYS>>\\n\\n" +
      "{% elif m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %} {{ m['content'] }} {{ eos_token }}{% endif %}{% endfor %}";
    const llama = await loadTinyLlama({ model: { chatTemplate } });
    expect(llama.defaultTemplate).toBe('llama2');
    expect(llama.createChat().template.name).toBe('llama2');
    await llama.dispose();
  });
});

describe('sequences: several chats on one context', () => {
  const options = { ...GREEDY, maxTokens: 12 };
  const questions = [['Hello, who are you?', 'What is in the video?'], ['Describe the sound', 'And the colours?']] as const;

  /** Two turns of one chat, the only one on its context. */
  async function alone(conversation: readonly string[]): Promise<string[]> {
    await using llama = await loadTinyLlama({ sequences: 1 });
    await using chat = llama.createChat({ template: 'vicuna' });
    const replies = [];
    for (const text of conversation) replies.push(await chat.send(text, options));
    return replies;
  }

  it('two chats on a context of 2 sequences, their turns interleaved, reply as each alone', async () => {
    const expected = [await alone(questions[0]), await alone(questions[1])];
    await using llama = await loadTinyLlama({ sequences: 2 });
    const chats = [llama.createChat({ template: 'vicuna' }), llama.createChat({ template: 'vicuna' })];
    const replies: string[][] = [[], []];
    for (let turn = 0; turn < 2; turn++) {
      // Both turns are sent at once: their steps are decoded together.
      const both = await Promise.all(chats.map((chat, i) => chat.send(questions[i]![turn]!, options)));
      both.forEach((reply, i) => replies[i]!.push(reply));
      // Each chat's second turn finds its own first turn in its sequence.
      if (turn === 1) for (const chat of chats) expect(chat.lastStats!.reusedItems).toBeGreaterThan(0);
    }
    expect(replies).toEqual(expected);
    expect(new Set(replies.flat()).size).toBeGreaterThan(1);
  });

  it('getSequence() with none free is NO_FREE_SEQUENCE; disposing a chat frees its sequence, cells cleared', async () => {
    await using llama = await loadTinyLlama({ sequences: 2 });
    const first = llama.createChat({ template: 'vicuna' });
    const second = llama.createChat({ template: 'vicuna' });
    expect(llama.context.freeSequences).toBe(0);
    expect(() => llama.createChat()).toThrow(expect.objectContaining({ code: 'NO_FREE_SEQUENCE' }));
    expect(() => llama.context.getSequence()).toThrow(/All 2 sequences of the context are in use/);

    const reply = await first.send('Hello, who are you?', options);
    await second.send('Hello, who are you?', options);
    await first.dispose();
    expect(llama.context.freeSequences).toBe(1);
    // The new chat gets the freed sequence, emptied: nothing of the first chat is reused.
    const third = llama.createChat({ template: 'vicuna' });
    expect(await third.send('Hello, who are you?', options)).toBe(reply);
    expect(third.lastStats!.reusedItems).toBe(0);
    await expect(first.send('Hello')).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});
