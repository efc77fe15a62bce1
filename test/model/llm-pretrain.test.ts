import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeTinyLlama } from '../../src/dev/tiny-llama.js';
import { LlmModel } from '../../src/index.js';
import { LLAMA2_CHAT_TEMPLATE, worldPieces } from '../../src/train/llm-corpus.js';
import { pretrainLlm, type PretrainLlmOptions } from '../../src/train/llm-pretrain.js';

/** Sentences whose words all differ, so that each next word follows from the one before. */
const SENTENCES = [
  'Red circles slide leftwards quickly.',
  'Blue squares rise upwards slowly.',
  'Green triangles fall downwards gently.',
  'Yellow stars stay still forever.',
];

/** A model small enough for a step in tens of milliseconds, one thread: runs are bit-reproducible. */
const TINY: Omit<PretrainLlmOptions, 'out' | 'steps'> = {
  corpus: { documents: SENTENCES },
  model: { embeddingWidth: 64, layers: 2, heads: 4, feedForwardWidth: 128 },
  window: 256,
  learningRate: 3e-3,
  warmupSteps: 5,
  threads: 1,
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'llm-pretrain-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Greedy continuation of `prompt` by `count` tokens, as text. */
async function greedy(model: LlmModel, prompt: string, count: number): Promise<string> {
  await using context = await model.createContext({ contextSize: 256, sequences: 1 });
  const sequence = context.getSequence();
  const tokens = model.tokenize(prompt, { addBos: true });
  for (let i = 0; i < count; i++) {
    const logits = await sequence.nextTokenLogits([tokens]);
    tokens.push(logits.indexOf(Math.max(...logits)));
  }
  return model.detokenize(tokens.slice(1));
}

describe('pretrainLlm: a LLaMA trained by libllama\'s own trainer', () => {
  it('overfits four sentences: the loss falls from about ln(vocabulary) below 0.3, and greedy continuation reproduces them', async () => {
    const out = path.join(dir, 'overfit');
    const progress: number[] = [];
    const result = await pretrainLlm({ ...TINY, out, steps: 150 }, { onProgress: (p) => progress.push(p.step) });
    expect(result.steps).toBe(150);
    expect(progress).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    await using model = await LlmModel.load(result.model);
    // The initial output layer is small: the first loss is close to ln(vocabulary size).
    expect(Math.abs(result.losses[0]! - Math.log(model.vocabularySize))).toBeLessThan(0.5);
    const last = result.losses.slice(-10);
    expect(last.reduce((a, b) => a + b, 0) / last.length).toBeLessThan(0.3);
    // The saved file keeps the metadata libllama's trainer rewrites (the context length) and the chat template.
    expect(model.trainContextSize).toBe(2048);
    expect(model.chatTemplate).toContain('[INST]');
    for (const sentence of SENTENCES) {
      const [first] = sentence.split(' ');
      const count = model.tokenize(sentence).length - model.tokenize(first!).length;
      expect(await greedy(model, first!, count)).toBe(sentence);
    }
  });
});

describe('pretrainLlm: checkpoints, abort and resume', () => {
  const steps = 12;
  const options = { ...TINY, steps, checkpointEvery: 4 };

  it('an aborted run keeps a checkpoint of its steps; resumed, it trains on the same windows from the same weights (the first resumed loss is bit-identical), with fresh AdamW moments', async () => {
    const whole = await pretrainLlm({ ...options, out: path.join(dir, 'whole') });
    expect(whole.losses).toHaveLength(steps);

    const out = path.join(dir, 'interrupted');
    const controller = new AbortController();
    await expect(pretrainLlm({ ...options, out }, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 5) controller.abort();
      },
    })).rejects.toMatchObject({ code: 'ABORTED' });
    // The abort lands between two steps, at the first step boundary after the signal.
    const state = JSON.parse(await readFile(path.join(out, 'state.json'), 'utf8')) as { step: number; dataPosition: number; model: string; losses: number[] };
    expect(state.step).toBeGreaterThanOrEqual(5);
    expect(state.step).toBeLessThan(steps);
    expect(state.dataPosition).toBe(state.step * 256);
    expect((await stat(path.join(out, state.model))).size).toBeGreaterThan(0);
    expect(state.losses).toEqual(whole.losses.slice(0, state.step));

    const resumed = await pretrainLlm({ ...options, out });
    expect(resumed.resumedFrom).toBe(state.step);
    expect(resumed.steps).toBe(steps);
    expect(resumed.losses.slice(0, state.step)).toEqual(whole.losses.slice(0, state.step));
    // Same weights (saved f32 exactly), same window: the same loss to the last bit.
    expect(resumed.losses[state.step]).toBe(whole.losses[state.step]);
    // Later steps differ (AdamW's moments restart from zero: the first resumed update is a full
    // step, as at a start) but the run keeps training, near the uninterrupted one.
    expect(resumed.losses[state.step + 1]).not.toBe(whole.losses[state.step + 1]);
    expect(resumed.losses.at(-1)!).toBeLessThan(resumed.losses[0]! - 1);
    expect(Math.abs(resumed.losses.at(-1)! - whole.losses.at(-1)!)).toBeLessThan(1);

    // Asked again, a finished run has nothing left to do.
    const again = await pretrainLlm({ ...options, out });
    expect(again.resumedFrom).toBe(steps);
    expect(again.losses).toEqual(resumed.losses);
  });

  it('refuses to resume with other settings, and a checkpoint whose matrices libllama would not train', async () => {
    const out = path.join(dir, 'settings');
    await pretrainLlm({ ...options, steps: 2, out });
    await expect(pretrainLlm({ ...options, steps: 4, out, learningRate: 1e-2 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const state = JSON.parse(await readFile(path.join(out, 'state.json'), 'utf8')) as { model: string };
    await writeTinyLlama(path.join(out, state.model), { weightType: 'f16', chatTemplate: LLAMA2_CHAT_TEMPLATE });
    await expect(pretrainLlm({ ...options, steps: 4, out })).rejects.toMatchObject({ code: 'INVALID_MODEL' });
  });

  it('bad options are INVALID_ARGUMENT naming the option', async () => {
    const out = path.join(dir, 'bad');
    const bad: Array<[Partial<PretrainLlmOptions>, string]> = [
      [{ steps: 0 }, 'options.steps'],
      [{ window: 1 }, 'options.window'],
      [{ windowsPerStep: 0 }, 'options.windowsPerStep'],
      [{ learningRate: -1 }, 'options.learningRate'],
      [{ model: { embeddingWidth: 64, layers: 2, heads: 3, feedForwardWidth: 128 } }, 'options.model'],
      [{ corpus: { documents: [] } }, 'options.corpus.documents'],
      [{ corpus: { world: { samples: 0 } } }, 'options.corpus.world.samples'],
      [{ out: '' }, 'options.out'],
    ];
    for (const [change, name] of bad) {
      await expect(pretrainLlm({ ...options, out, ...change } as PretrainLlmOptions)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { name } });
    }
  });
});

describe('the demo LLM\'s vocabulary', () => {
  it('holds the world\'s words whole: a caption tokenizes into one token per word and punctuation mark', async () => {
    const file = path.join(dir, 'vocabulary.gguf');
    await writeTinyLlama(file, { embeddingWidth: 32, layers: 1, heads: 2, feedForwardWidth: 32, pieces: worldPieces(), outputStd: 0.1 });
    await using model = await LlmModel.load(file);
    const text = 'On a dark background, three white squares travel upwards while you hear two low beeps.';
    const pieces = model.tokenize(text, { addBos: false }).map((t) => model.detokenize([t]).trim());
    expect(pieces).toEqual(text.replace(/([,.])/g, ' $1').split(' '));
    expect(model.detokenize(model.tokenize(text, { addBos: false }))).toBe(text);
    expect(model.vocabularySize).toBeLessThan(1500);
  });
});
