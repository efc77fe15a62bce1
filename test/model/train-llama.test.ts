import { describe, expect, it } from 'vitest';

import { LlmModel } from '../../src/index.js';
import { FrozenLlama, libllamaReferenceLogits } from '../../src/train/frozen-llama.js';
import { maxAbsDiff } from '../support/npy.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';

/** Grouped-query attention and a rope base other than 10000 would be caught too: not the defaults only. */
const MODELS = {
  default: {},
  gqa: { heads: 6, kvHeads: 2, layers: 3, seed: 7 },
  f16: { weightType: 'f16', seed: 3 },
} as const;

describe('the frozen training LLaMA computes libllama\'s logits', () => {
  for (const [name, options] of Object.entries(MODELS)) {
    it(`${name}: logits at every position within 1e-4 of libllama's (f32 KV cache)`, async () => {
      const file = await tinyLlamaFile(options);
      await using model = await LlmModel.load(file);
      const tokens = Int32Array.from(model.tokenize('Hello, what is the sound of the water in this video?', { addBos: true }));
      const frozen = await FrozenLlama.load(file);
      try {
        const ours = await frozen.logits(tokens);
        expect(ours.length).toBe(tokens.length * frozen.vocabularySize);
        expect(maxAbsDiff(ours, await libllamaReferenceLogits(file, tokens))).toBeLessThan(1e-4);
        // libllama's default numerics (f16 KV cache) stay close: the same model, not another one.
        await using context = await model.createContext({ contextSize: 256, sequences: 1 });
        const lastLogits = await context.getSequence().nextTokenLogits([Array.from(tokens)]);
        expect(maxAbsDiff(ours.subarray(ours.length - frozen.vocabularySize), lastLogits)).toBeLessThan(2e-2);
      } finally {
        frozen.dispose();
      }
    });
  }

  it('rejects a missing file, a non-LLaMA file and out-of-vocabulary tokens with typed errors', async () => {
    await expect(FrozenLlama.load('/nonexistent/model.gguf')).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(FrozenLlama.load(new URL('../../package.json', import.meta.url).pathname)).rejects.toMatchObject({ code: 'INVALID_MODEL' });
    const frozen = await FrozenLlama.load(await tinyLlamaFile());
    try {
      await expect(frozen.logits(Int32Array.of(1, frozen.vocabularySize))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(frozen.logits(new Int32Array(0))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      frozen.dispose();
    }
  });
});
