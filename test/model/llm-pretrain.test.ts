import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeTinyLlama } from '../../src/dev/tiny-llama.js';
import { LlmModel } from '../../src/index.js';
import { FrozenLlama, libllamaReferenceLogits } from '../../src/train/frozen-llama.js';
import { checkLlamaGradients } from '../../src/train/gradient-check.js';
import { LLAMA2_CHAT_TEMPLATE, worldPieces } from '../../src/train/llm-corpus.js';
import { pretrainLlm, type PretrainLlmOptions } from '../../src/train/llm-pretrain.js';
import { maxAbsDiff } from '../support/npy.js';

/**
 * Per tensor, max over its entries of |ggml's gradient − central difference (step 1e-2)|: the f32
 * loss (~6) rounds at ~5e-7, i.e. ~5e-5 per difference quotient (the absolute part), and the
 * difference quotient's own error grows with the gradient's curvature (the relative part). Measured at
 * most 6.7e-5 (seed 4).
 */
const GRADIENT_TOLERANCE = { absolute: 3e-4, relative: 1e-2 };

/**
 * Chat-format questions whose answer only the caption in the media slot decides: every caption
 * pairs a colour with a shape, each asked about both, so neither the question nor the answer's
 * frequency gives it away.
 */
const COLOURS = ['red', 'blue', 'green'];
const SHAPES = ['circle', 'square', 'star'];
const capitalized = (word: string): string => word[0]!.toUpperCase() + word.slice(1);
const QUESTIONS = COLOURS.flatMap((colour) => SHAPES.flatMap((shape) => [
  { prompt: `[INST] <Video>A ${colour} ${shape} moves.</Video> What colour is it? [/INST]`, answer: `${capitalized(colour)}.` },
  { prompt: `[INST] <Video>A ${colour} ${shape} moves.</Video> What shape is it? [/INST]`, answer: `${capitalized(shape)}.` },
]));

/** A model small enough for a step in tens of milliseconds, one thread: runs are bit-reproducible. */
const TINY: Omit<PretrainLlmOptions, 'out' | 'steps'> = {
  corpus: { documents: QUESTIONS.map((q) => `${q.prompt} ${q.answer} </s>`) },
  model: { embeddingWidth: 64, layers: 2, heads: 4, feedForwardWidth: 128 },
  window: 128,
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

/** Greedy reply to `prompt` (special tokens read as such) until `</s>`, as text. */
async function reply(model: LlmModel, prompt: string, max = 8): Promise<string> {
  await using context = await model.createContext({ contextSize: 256, sequences: 1 });
  const sequence = context.getSequence();
  const tokens = model.tokenize(prompt, { addBos: true, special: true });
  const out: number[] = [];
  for (let i = 0; i < max; i++) {
    const logits = await sequence.nextTokenLogits([[...tokens, ...out]]);
    const next = logits.indexOf(Math.max(...logits));
    if (next === 2) break; // </s>
    out.push(next);
  }
  return model.detokenize(out).trim();
}

describe('pretrainLlm: every weight of the LLaMA trained on our own graph', () => {
  it('matches central differences on every entry of every weight of a tiny LLaMA (token embeddings, norms, q/k/v/output, SwiGLU, output layer)', async () => {
    const file = path.join(dir, 'gradients.gguf');
    await writeTinyLlama(file, { embeddingWidth: 8, layers: 2, heads: 2, feedForwardWidth: 12, pieces: ['▁x'], seed: 4, outputStd: 0.5 });
    // Two windows of 6 tokens (+ their next tokens), as a step of two windows sees them.
    const tokens = Int32Array.of(1, 260, 261, 262, 263, 264, 265, 1, 270, 271, 272, 273, 274, 275);
    const report = await checkLlamaGradients(file, tokens, 6, { step: 1e-2 });
    const blocks = ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'];
    expect(report.tensors.map((t) => t.name)).toEqual([
      'token_embd.weight', ...[0, 1].flatMap((b) => blocks.map((n) => `blk.${b}.${n}.weight`)), 'output_norm.weight', 'output.weight',
    ]);
    for (const t of report.tensors) {
      console.log(`${t.name}: ${t.entries} entries, max |analytic - numeric| ${t.maxAbsError.toExponential(2)}, max |gradient| ${t.maxAbsGradient.toExponential(2)}`);
      expect(t.maxAbsGradient).toBeGreaterThan(1e-3);
      expect(t.maxAbsError).toBeLessThanOrEqual(GRADIENT_TOLERANCE.absolute + GRADIENT_TOLERANCE.relative * t.maxAbsGradient);
    }
  });

  it('overfits chat-format Q&A whose answer only the caption in the media slot decides; the saved GGUF loads in libllama with our graph\'s logits', async () => {
    const out = path.join(dir, 'overfit');
    const progress: number[] = [];
    const result = await pretrainLlm({ ...TINY, out, steps: 300, windowsPerStep: 2 }, { onProgress: (p) => progress.push(p.step) });
    expect(result.steps).toBe(300);
    expect(progress).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    await using model = await LlmModel.load(result.model);
    // The initial output layer is small: the first loss is close to ln(vocabulary size).
    expect(Math.abs(result.losses[0]! - Math.log(model.vocabularySize))).toBeLessThan(0.5);
    // The saved file keeps the initial model's metadata (context length, chat template).
    expect(model.trainContextSize).toBe(2048);
    expect(model.chatTemplate).toContain('[INST]');
    const answers = await Promise.all(QUESTIONS.map((q) => reply(model, q.prompt)));
    expect(answers).toEqual(QUESTIONS.map((q) => q.answer));

    // libllama (f32 KV cache) and our graph compute the same logits from the written file.
    const tokens = Int32Array.from(model.tokenize(QUESTIONS[0]!.prompt, { addBos: true, special: true }));
    const ours = await FrozenLlama.load(result.model);
    try {
      expect(maxAbsDiff(await ours.logits(tokens), await libllamaReferenceLogits(result.model, tokens))).toBeLessThan(1e-4);
    } finally {
      ours.dispose();
    }
  });
});

describe('pretrainLlm: checkpoints, abort and resume', () => {
  const steps = 12;
  const options = { ...TINY, steps, checkpointEvery: 4, windowsPerStep: 2 };

  it('an aborted run keeps a checkpoint of its steps with the AdamW moments; resumed, its losses equal an uninterrupted run\'s to the last bit', async () => {
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
    // The abort lands at or after the step it was sent in (a step it cuts short is not applied).
    const state = JSON.parse(await readFile(path.join(out, 'state.json'), 'utf8')) as { step: number; dataPosition: number; model: string; losses: number[] };
    expect(state.step).toBeGreaterThanOrEqual(5);
    expect(state.step).toBeLessThan(steps);
    expect(state.dataPosition).toBe(state.step * 2 * 128);
    expect((await stat(path.join(out, state.model))).size).toBeGreaterThan(0);
    expect(state.losses).toEqual(whole.losses.slice(0, state.step));

    const resumed = await pretrainLlm({ ...options, out });
    expect(resumed.resumedFrom).toBe(state.step);
    expect(resumed.steps).toBe(steps);
    // Same weights, same AdamW moments and step count, same windows: the same run.
    expect(resumed.losses).toEqual(whole.losses);
    expect(await readFile(resumed.model)).toEqual(await readFile(whole.model));

    // Asked again, a finished run has nothing left to do.
    const again = await pretrainLlm({ ...options, out });
    expect(again.resumedFrom).toBe(steps);
    expect(again.losses).toEqual(resumed.losses);
  });

  it('refuses to resume with other settings, and from a checkpoint that is not one', async () => {
    const out = path.join(dir, 'settings');
    await pretrainLlm({ ...options, steps: 2, out });
    await expect(pretrainLlm({ ...options, steps: 4, out, learningRate: 1e-2 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const state = JSON.parse(await readFile(path.join(out, 'state.json'), 'utf8')) as { model: string };
    // A model without AdamW moments where the checkpoint should be.
    await writeTinyLlama(path.join(out, state.model), { chatTemplate: LLAMA2_CHAT_TEMPLATE });
    await expect(pretrainLlm({ ...options, steps: 4, out })).rejects.toMatchObject({ code: 'INVALID_MODEL' });
  });

  it('bad options are INVALID_ARGUMENT naming the option', async () => {
    const out = path.join(dir, 'bad');
    const bad: Array<[Partial<PretrainLlmOptions>, string]> = [
      [{ steps: 0 }, 'options.steps'],
      [{ window: 1 }, 'options.window'],
      [{ window: 4096 }, 'options.contextLength'],
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
