import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeTinyLlama } from '../../src/dev/tiny-llama.js';
import { LlmModel } from '../../src/index.js';
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
