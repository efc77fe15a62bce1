import { describe, expect, it } from 'vitest';

import { Chat, LlmModel, type ChatTemplate, type VideoLlama } from '../../src/index.js';
import { maxAbsDiff } from '../support/npy.js';
import { GREEDY, loadTinyLlama, tinyLlamaFile } from '../support/tiny-llama.js';

/**
 * Logits of a sequence decoded beside 7 others vs alone (the tiny model's logits reach ~9).
 * Not bit-exact: measured up to 4e-3. A prompt alone in chunks of 4 or 512 positions gives
 * identical logits, so the difference comes from sharing a step: one matmul over more rows
 * (ggml may take another kernel and reduction order for a larger batch) and attention over the
 * cells of every sequence (masked out, but a longer padded KV length changes the order of the
 * sums). Greedy replies are still equal (the tests below compare them exactly).
 */
const BATCH_LOGIT_TOLERANCE = 1e-2;

/** No stop strings and EOS never wins on the tiny model: replies run to maxTokens. */
const ENDLESS: ChatTemplate = {
  name: 'endless',
  stopStrings: [],
  defaultSystem: () => '',
  prompt: (system, turns) => system + turns.map((t) => `${t.user}\n${t.assistant ?? ''}`).join('\n'),
};

const QUESTIONS = ['Hello, who are you?', 'What is in the video?', 'Describe the sound', 'And the colours?',
  'Where are we?', 'Count to ten', 'Tell me a story', 'Why is the sky blue?'];
const OPTIONS = { ...GREEDY, maxTokens: 16 };

/** Each question's reply on a context of one sequence. */
async function repliesAlone(questions: readonly string[]): Promise<string[]> {
  await using llama = await loadTinyLlama({ sequences: 1 });
  const replies = [];
  for (const question of questions) {
    await using chat = llama.createChat({ template: 'vicuna' });
    replies.push(await chat.send(question, OPTIONS));
  }
  return replies;
}

async function repliesTogether(llama: VideoLlama, questions: readonly string[]): Promise<string[]> {
  const chats = questions.map(() => llama.createChat({ template: 'vicuna' }));
  try {
    return await Promise.all(chats.map((chat, i) => chat.send(questions[i]!, OPTIONS)));
  } finally {
    await Promise.all(chats.map((chat) => chat.dispose()));
  }
}

describe('continuous batching: chats on one context decode together', () => {
  it.each([2, 8])('%i chats at once reply as each alone', async (n) => {
    const questions = QUESTIONS.slice(0, n);
    const expected = await repliesAlone(questions);
    await using llama = await loadTinyLlama({ sequences: n });
    expect(await repliesTogether(llama, questions)).toEqual(expected);
    expect(new Set(expected).size).toBeGreaterThan(1);
  });

  it('8 sequences evaluated in one step give the logits each gives alone', async () => {
    const prompts = QUESTIONS.map((q, i) => `${q} ${'and more '.repeat(i)}`);
    await using single = await loadTinyLlama({ sequences: 1 });
    const alone: Float32Array[] = [];
    for (const prompt of prompts) {
      await using sequence = single.context.getSequence();
      alone.push(await sequence.nextTokenLogits([single.model.tokenize(prompt)]));
    }
    await using llama = await loadTinyLlama({ sequences: 8 });
    const sequences = prompts.map(() => llama.context.getSequence());
    const together = await Promise.all(sequences.map((s, i) => s.nextTokenLogits([llama.model.tokenize(prompts[i]!)])));
    const diffs = together.map((logits, i) => maxAbsDiff(logits, alone[i]!));
    console.log(`logits of 8 sequences in one step vs alone: max |diff| ${Math.max(...diffs).toExponential(2)}`);
    for (const diff of diffs) expect(diff).toBeLessThan(BATCH_LOGIT_TOLERANCE);
  });

  it('a long prompt is evaluated in chunks while another chat keeps streaming', async () => {
    // 32 positions per step: the long prompt takes ~30 steps, each also carrying the other chat's token.
    await using model = await LlmModel.load(await tinyLlamaFile());
    await using context = await model.createContext({ sequences: 2, batchSize: 32, contextSize: 2048, threads: 1 });
    const streaming = new Chat(context.getSequence(), { template: ENDLESS });
    const long = new Chat(context.getSequence(), { template: ENDLESS });
    const pieceTimes: number[] = [];
    let firstPiece!: () => void;
    const started = new Promise<void>((resolve) => (firstPiece = resolve));
    const stream = (async () => {
      for await (const _ of streaming.stream('Hello', { ...GREEDY, maxTokens: 400 })) {
        pieceTimes.push(performance.now());
        firstPiece();
      }
    })();
    await started;
    const sentAt = performance.now();
    await long.send('word '.repeat(900), { ...GREEDY, maxTokens: 1 });
    const promptEnd = sentAt + long.lastStats!.promptMs;
    const during = pieceTimes.filter((t) => t > sentAt && t < promptEnd).length;
console.log(`${long.lastStats!.evaluatedItems} prompt items in ${long.lastStats!.promptMs.toFixed(1)} ms; the other chat got ${during} pieces meanwhile`);
    expect(long.lastStats!.evaluatedItems).toBeGreaterThan(30 * 20);
    // One piece per step: the stream was not frozen while the prompt was evaluated.
    expect(during).toBeGreaterThan(20);
    await stream;
  });

  it('an aborted chat drops out and frees its sequence; the others go on and reply as alone', async () => {
    const questions = QUESTIONS.slice(0, 3);
    const expected = await repliesAlone(questions);
    await using llama = await loadTinyLlama({ sequences: 3 });
    const [doomed, ...others] = questions.map(() => llama.createChat({ template: 'vicuna' }));
    const controller = new AbortController();
    const aborted = doomed!.stream(questions[0]!, { ...GREEDY, maxTokens: 3000, signal: controller.signal });
    const doomedRun = (async () => {
      for await (const _ of aborted) controller.abort();
    })();
    const replies = Promise.all(others.map((chat, i) => chat.send(questions[i + 1]!, OPTIONS)));
    await expect(doomedRun).rejects.toMatchObject({ code: 'ABORTED' });
    await doomed!.dispose();
    expect(llama.context.freeSequences).toBe(1);
    // The freed sequence is empty: a new chat on it replies as alone, beside the others.
    const fresh = llama.createChat({ template: 'vicuna' });
    const [freshReply, otherReplies] = await Promise.all([fresh.send(questions[0]!, OPTIONS), replies]);
    expect(fresh.lastStats!.reusedItems).toBe(0);
    expect([freshReply, ...otherReplies]).toEqual(expected);
  });

  describe('the KV cells are shared: only the chat that does not fit is affected', () => {
    const CELLS = 256;

    /** A context of `CELLS` cells and two sequences, with a chat on each. */
    async function twoChats() {
      const model = await LlmModel.load(await tinyLlamaFile());
      const context = await model.createContext({ sequences: 2, contextSize: CELLS, threads: 1 });
      expect(context.size).toBe(CELLS);
      return { model, a: new Chat(context.getSequence(), { template: ENDLESS }), b: new Chat(context.getSequence(), { template: ENDLESS }) };
    }

    /** The reply of `message` on a context of its own. */
    async function alone(message: string, maxTokens: number): Promise<string> {
      await using model = await LlmModel.load(await tinyLlamaFile());
      await using context = await model.createContext({ contextSize: CELLS, threads: 1 });
      return await new Chat(context.getSequence(), { template: ENDLESS }).send(message, { ...GREEDY, maxTokens });
    }

    it('a reply that outgrows the free cells ends with contextFull; the other finishes as alone', async () => {
      // Together they need ~2 x 5 + 60 + 400 cells: more than 256, each alone fewer.
      const { model, a, b } = await twoChats();
      await using _ = model;
      const [replyA, replyB] = await Promise.all([a.send('Hello', { ...GREEDY, maxTokens: 60 }), b.send('Good day', { ...GREEDY, maxTokens: 400 })]);
      expect(a.lastStats).toMatchObject({ stopReason: 'maxTokens', generatedTokens: 60 });
      expect(replyA).toBe(await alone('Hello', 60));
      // Once A had ended, B took A's cells (A's prompt, kept between turns, was cleared) and ran to the end of the context.
      expect(b.lastStats!.stopReason).toBe('contextFull');
      expect(b.lastStats!.promptItems + b.lastStats!.generatedTokens).toBeGreaterThan(CELLS - 2);
      expect(replyB.length).toBeGreaterThan(0);
      await a.send('Hello again', { ...GREEDY, maxTokens: 4 });
      expect(a.lastStats!.reusedItems).toBe(0);
    });

    it('a prompt that does not fit beside a running reply waits for it, then replies as alone', async () => {
      const { model, a, b } = await twoChats();
      await using _ = model;
      const longPrompt = 'the '.repeat(200);
      let piecesA = 0;
      let endA = 0;
      let holding!: () => void;
      const started = new Promise<void>((resolve) => (holding = resolve));
      const streamA = (async () => {
        let text = '';
        for await (const piece of a.stream('Hello', { ...GREEDY, maxTokens: 120 })) {
          text += piece;
          if (++piecesA === 80) holding();
        }
        endA = performance.now();
        return text;
      })();
      await started;
      // A holds over 80 cells and will take ~40 more: B's ~200-position prompt fits only once A has ended.
      const sentB = performance.now();
      const replyB = await b.send(longPrompt, { ...GREEDY, maxTokens: 8 });
      const firstTokenB = sentB + b.lastStats!.firstTokenMs;
      expect(firstTokenB).toBeGreaterThan(endA);
      expect(a.lastStats).toMatchObject({ stopReason: 'maxTokens', generatedTokens: 120 });
      expect(await streamA).toBe(await alone('Hello', 120));
      expect(replyB).toBe(await alone(longPrompt, 8));
    });
  });
});
