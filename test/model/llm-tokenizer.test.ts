import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tinyLlamaVocabulary } from '../../src/dev/tiny-llama.js';
import type { LlmModel, VideoLlama } from '../../src/index.js';
import { loadTinyLlama, tinyLlamaFile } from '../support/tiny-llama.js';

describe('tokenizer (tiny LLaMA, SentencePiece vocabulary)', () => {
  let llama: VideoLlama;
  let model: LlmModel;
  beforeAll(async () => {
    llama = await loadTinyLlama();
    model = llama.model;
  });
  afterAll(() => llama.dispose());

  it('round-trips text through tokenize / detokenize, byte fallback included', () => {
    for (const text of ['Hello the video', 'Ünïcödé 日本語 🎬', '###Human: What? [INST] <<SYS>>\n\tx']) {
      const tokens = model.tokenize(text, { addBos: false });
      expect(tokens.length).toBeGreaterThan(0);
      expect(model.detokenize(tokens)).toBe(text);
    }
  });

  it('uses whole pieces and BOS as the model says', () => {
    const vocab = tinyLlamaVocabulary().tokens;
    const tokens = model.tokenize('Hello the video');
    expect(tokens.map((t) => vocab[t])).toEqual(['<s>', '▁Hello', '▁the', '▁video']);
    expect(model.detokenize(tokens, { special: true })).toBe('<s> Hello the video');
    // Special-token text is plain text unless asked for.
    expect(model.tokenize('</s>', { addBos: false, special: true })).toEqual([2]);
    expect(model.tokenize('</s>', { addBos: false })).not.toContain(2);
  });

  it('reports the sizes in the file', async () => {
    const info = await readGgufFileInfo(await tinyLlamaFile());
    const sizes = (info.metadata as unknown as { llama: { embedding_length: number; context_length: number } }).llama;
    expect(model.embeddingWidth).toBe(sizes.embedding_length);
    expect(model.trainContextSize).toBe(sizes.context_length);
    expect(model.vocabularySize).toBe(tinyLlamaVocabulary().tokens.length);
    expect(llama.defaultTemplate).toBe('vicuna');
  });

  it('rejects token ids outside the vocabulary', () => {
    expect(() => model.detokenize([model.vocabularySize])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => model.detokenize([-1])).toThrow(/outside the vocabulary/);
  });
});
