import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LlmModel, VideoLlama, type ChatTemplate } from '../../src/index.js';
import { maxAbsDiff } from '../support/npy.js';
import { GREEDY, loadTinyLlama, tinyLlamaFile } from '../support/tiny-llama.js';

/** No stop strings and EOS never wins on the tiny model: replies run to maxTokens. */
const ENDLESS: ChatTemplate = {
  name: 'endless',
  stopStrings: [],
  defaultSystem: () => '',
  prompt: (system, turns) => system + turns.map((t) => `${t.user}\n${t.assistant ?? ''}`).join('\n'),
};

/** A larger tiny model (~31 MB), so that loading takes a while. */
const LARGER = { embeddingWidth: 512, layers: 4, heads: 8, feedForwardWidth: 1536, weightType: 'f16' } as const;

/** Counts 1 ms timer ticks and the longest gap between them. */
class LoopMonitor {
  ticks = 0;
  longestGapMs = 0;
  private last = performance.now();
  private readonly timer = setInterval(() => {
    const now = performance.now();
    this.longestGapMs = Math.max(this.longestGapMs, now - this.last);
    this.last = now;
    this.ticks++;
  }, 1);

  stop(): number {
    clearInterval(this.timer);
    return this.ticks;
  }
}

describe('the event loop runs while the model works', () => {
  it('during loading: timers fire between the first progress report and the end of the load', async () => {
    const file = await tinyLlamaFile(LARGER);
    const monitor = new LoopMonitor();
    const progress: number[] = [];
    let ticksAtFirstProgress = -1;
    const started = performance.now();
    const model = await VideoLlama.load({
      llm: file,
      threads: 1,
      onProgress: (fraction) => {
        if (ticksAtFirstProgress < 0) ticksAtFirstProgress = monitor.ticks;
        progress.push(fraction);
      },
    });
    const loadMs = performance.now() - started;
    const ticks = monitor.stop();
    await model.dispose();
    console.log(`load: ${loadMs.toFixed(1)} ms, ${ticks - ticksAtFirstProgress} ticks after the first progress report, longest gap ${monitor.longestGapMs.toFixed(1)} ms`);
    expect(progress.at(-1)).toBe(1);
    expect(progress.every((p, i) => i === 0 || p >= progress[i - 1]!)).toBe(true);
    expect(ticks - ticksAtFirstProgress).toBeGreaterThan(0);
  });

  it('an AbortSignal cancels loading inside libllama: ABORTED, nothing kept, the next load works', async () => {
    const file = await tinyLlamaFile(LARGER);
    const controller = new AbortController();
    const progress: number[] = [];
    const started = performance.now();
    const error = await LlmModel.load(file, {
      signal: controller.signal,
      onProgress: (fraction) => {
        progress.push(fraction);
        controller.abort();
      },
    }).catch((e: unknown) => e);
    console.log(`load aborted after ${(performance.now() - started).toFixed(1)} ms at ${progress.at(-1)}`);
    expect(error).toMatchObject({ code: 'ABORTED' });
    // The progress callback returned false: libllama stopped before reporting the end.
    expect(progress.at(-1)).toBeLessThan(1);
    await using model = await LlmModel.load(file);
    expect(model.tokenize('still fine').length).toBeGreaterThan(1);
  });

  it('during generation: timers keep firing and pieces stream in', async () => {
    const model = await loadTinyLlama();
    const monitor = new LoopMonitor();
    let pieces = 0;
    const started = performance.now();
    for await (const piece of model.createChat({ template: ENDLESS }).stream('Hello', { ...GREEDY, maxTokens: 600 })) {
      expect(typeof piece).toBe('string');
      pieces++;
    }
    const generationMs = performance.now() - started;
    const ticks = monitor.stop();
    await model.dispose();
    console.log(`generation: ${generationMs.toFixed(1)} ms, ${pieces} pieces, ${ticks} ticks, longest gap ${monitor.longestGapMs.toFixed(1)} ms`);
    expect(ticks).toBeGreaterThan(5);
    expect(monitor.longestGapMs).toBeLessThan(generationMs / 2);
  });
});

describe('abort and dispose', () => {
  let model: VideoLlama;
  beforeAll(async () => {
    model = await loadTinyLlama({ contextSize: 4096 });
  });
  afterAll(() => model.dispose());

  it('an AbortSignal stops a long reply promptly; the chat stays usable and consistent', async () => {
    await using chat = model.createChat({ template: ENDLESS });
    await chat.send('First question', { ...GREEDY, maxTokens: 8 });
    const controller = new AbortController();
    let abortedAt = 0;
    let piecesAfterAbort = 0;
    const started = performance.now();
    const reply = (async () => {
      for await (const _ of chat.stream('Tell me everything', { ...GREEDY, maxTokens: 3000, signal: controller.signal })) {
        if (abortedAt) piecesAfterAbort++;
        else if (performance.now() - started > 20) {
          abortedAt = performance.now();
          controller.abort();
        }
      }
    })();
    await expect(reply).rejects.toMatchObject({ code: 'ABORTED' });
    const reactionMs = performance.now() - abortedAt;
    console.log(`abort: rejected ${reactionMs.toFixed(1)} ms after abort(), ${piecesAfterAbort} pieces were already queued`);
    // 3000 tokens take well over a second on this model; stopping takes one token (~1 ms).
    expect(reactionMs).toBeLessThan(150);
    expect(chat.history).toHaveLength(1);

    // The KV cache was left consistent: the next turn replies as a fresh context would.
    const next = await chat.send('Short answer', { ...GREEDY, maxTokens: 10 });
    await using fresh = await loadTinyLlama({ contextSize: 4096 });
    const replay = fresh.createChat({ template: ENDLESS, history: chat.history.slice(0, 1) });
    expect(await replay.send('Short answer', { ...GREEDY, maxTokens: 10 })).toBe(next);
  });

  it('an abort during prompt evaluation stops it mid-batch; what was cached stays usable', async () => {
    await using sequence = model.context.getSequence();
    const prompt = model.model.tokenize('the video shows a dog '.repeat(550));
    expect(prompt.length).toBeLessThan(model.context.size);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    const started = performance.now();
    await expect(sequence.nextTokenLogits([prompt], { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    const abortedMs = performance.now() - started;
    const resumed = await sequence.nextTokenLogits([prompt]);
    await sequence.nextTokenLogits([model.model.tokenize('something else')]);
    const evaluationStarted = performance.now();
    const fresh = await sequence.nextTokenLogits([prompt]);
    const freshMs = performance.now() - evaluationStarted;
    console.log(`prompt of ${prompt.length} tokens: aborted after ${abortedMs.toFixed(1)} ms, a whole evaluation takes ${freshMs.toFixed(1)} ms`);
    expect(abortedMs).toBeLessThan(freshMs);
    expect(maxAbsDiff(resumed, fresh)).toBeLessThan(1e-4);
  });

  it('leaving a stream loop early stops the generation without an error', async () => {
    await using chat = model.createChat({ template: ENDLESS });
    const pieces: string[] = [];
    for await (const piece of chat.stream('Hello', { ...GREEDY, maxTokens: 3000 })) {
      pieces.push(piece);
      if (pieces.length === 3) break;
    }
    expect(pieces).toHaveLength(3);
    expect(chat.history).toHaveLength(0);
    expect(await chat.send('Hello', { ...GREEDY, maxTokens: 3 })).toEqual(expect.any(String));
  });

  it('an already aborted signal rejects before any work', async () => {
    await using chat = model.createChat();
    await expect(chat.send('Hello', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('dispose() during a generation stops it; later calls throw DISPOSED', async () => {
    const doomed = await loadTinyLlama({ contextSize: 4096 });
    const chat = doomed.createChat({ template: ENDLESS });
    const pending = chat.send('Hello', { ...GREEDY, maxTokens: 3000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The turn rejects as soon as dispose() is called, before the running step has returned.
    const rejected = expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    await doomed.dispose();
    await rejected;
    await expect(chat.send('Hello')).rejects.toMatchObject({ code: 'DISPOSED' });
    expect(() => doomed.createChat()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(() => doomed.model.tokenize('x')).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    await doomed.dispose();
  });

  it('Symbol.asyncDispose frees the model at the end of a scope', async () => {
    let escaped: VideoLlama | undefined;
    {
      await using scoped = await loadTinyLlama();
      escaped = scoped;
      expect(scoped.model.tokenize('hi').length).toBeGreaterThan(0);
    }
    expect(() => escaped!.model.tokenize('hi')).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});
