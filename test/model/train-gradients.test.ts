import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { normalSource, randomMatrix } from '../../src/dev/random.js';
import { FrozenLlama, IGNORE_LABEL, type ProjectedPrompt } from '../../src/train/frozen-llama.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';

const MEDIA_WIDTH = 24;
const MEDIA_ROWS = 4;
/** Central-difference step: large enough that f32 rounding of the loss (~1e-7 of ~6) stays below 1e-5 per derivative. */
const STEP = 1e-2;

let llm: FrozenLlama;
beforeAll(async () => {
  llm = await FrozenLlama.load(await tinyLlamaFile());
});
afterAll(() => llm.dispose());

/** 3 text tokens, the media rows, then 5 text tokens of which the last 3 are the answer. */
function example(seed = 5): ProjectedPrompt {
  const normal = normalSource(seed);
  const width = llm.embeddingWidth;
  const tokens = Int32Array.of(1, 300, 301, 0, 0, 0, 0, 302, 303, 304, 305, 306);
  const labels = new Int32Array(tokens.length).fill(IGNORE_LABEL);
  for (const i of [9, 10, 11]) labels[i] = tokens[i]!;
  return {
    media: randomMatrix(normal, MEDIA_ROWS * MEDIA_WIDTH, 1),
    mediaWidth: MEDIA_WIDTH,
    projWeight: randomMatrix(normal, width * MEDIA_WIDTH, 0.3),
    projBias: randomMatrix(normal, width, 0.3),
    tokens,
    mediaOffset: 3,
    labels,
  };
}

/** Entries of a tensor to check: a fixed spread of indices, and the largest-gradient entry. */
function probeIndices(gradient: Float32Array, count: number): number[] {
  let largest = 0;
  for (let i = 1; i < gradient.length; i++) if (Math.abs(gradient[i]!) > Math.abs(gradient[largest]!)) largest = i;
  const stride = Math.max(1, Math.floor(gradient.length / count));
  return [largest, ...Array.from({ length: count }, (_, k) => (k * stride + 7) % gradient.length)];
}

describe('the llama_proj loss through the frozen LLaMA', () => {
  it('averages the cross-entropy over the labelled (answer) positions only', async () => {
    const base = example();
    const only = async (positions: number[]) => {
      const labels = new Int32Array(base.labels.length).fill(IGNORE_LABEL);
      for (const i of positions) labels[i] = base.labels[i]!;
      return llm.loss({ ...base, labels });
    };
    const [all, a, b, c] = await Promise.all([only([9, 10, 11]), only([9]), only([10]), only([11])]);
    expect(all).toBeCloseTo((a + b + c) / 3, 5);
    // Each position is a loss of its own (not a constant): the mean above is not trivially equal.
    expect(a).toBeGreaterThan(0);
    expect(Math.abs(a - b)).toBeGreaterThan(1e-4);
  });

  it('depends on the media through llama_proj', async () => {
    const base = example();
    const other = { ...base, media: base.media.map((v) => v * 0.5) };
    expect(Math.abs((await llm.loss(base)) - (await llm.loss(other)))).toBeGreaterThan(1e-4);
  });

  it('ggml backward gradients of llama_proj weight and bias match central differences', async () => {
    const base = example();
    const grads = await llm.projectionGradients(base);
    expect(grads.loss).toBeCloseTo(await llm.loss(base), 6);
    for (const [name, analytic] of [['projWeight', grads.weight], ['projBias', grads.bias]] as const) {
      const scale = Math.max(...analytic.map(Math.abs));
      expect(scale).toBeGreaterThan(1e-4);
      for (const index of probeIndices(analytic, 12)) {
        const shifted = async (delta: number) => {
          const values = base[name].slice();
          values[index]! += delta;
          return llm.loss({ ...base, [name]: values });
        };
        const numeric = ((await shifted(STEP)) - (await shifted(-STEP))) / (2 * STEP);
        // Tolerance 0.2 % of the tensor's largest gradient (f32 rounding and the O(STEP²) term; 0.05 % passes today).
        expect(Math.abs(numeric - analytic[index]!), `${name}[${index}]`).toBeLessThan(0.002 * scale);
      }
    }
  });

  it('rejects bad examples with typed errors', async () => {
    const base = example();
    await expect(llm.loss({ ...base, labels: new Int32Array(base.tokens.length).fill(IGNORE_LABEL) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(llm.loss({ ...base, projBias: new Float32Array(3) })).rejects.toMatchObject({ code: 'DIMENSION_MISMATCH' });
    await expect(llm.loss({ ...base, mediaOffset: base.tokens.length - 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(llm.loss({ ...base, tokens: [1, 2] as unknown as Int32Array })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const controller = new AbortController();
    controller.abort();
    await expect(llm.loss(base, { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
