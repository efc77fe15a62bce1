import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { VICUNA_TEMPLATE } from '../../src/chat/templates.js';
import { f32Bytes, GgufWriter } from '../../src/gguf/writer.js';
import { VideoLlama, VideoLlamaError, type ContextSequence, type LlmModel, type MediaEmbedding } from '../../src/index.js';
import { GREEDY, loadTinyLlama, tinyLlamaFile } from '../support/tiny-llama.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-llm-errors-'));

async function loadError(file: string): Promise<VideoLlamaError> {
  const error = await VideoLlama.load({ llm: file, threads: 1 }).then(
    () => { throw new Error(`loading ${file} should have failed`); },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VideoLlamaError);
  return error as VideoLlamaError;
}

describe('bad language model files', () => {
  it('a missing file gives FILE_NOT_FOUND naming it', async () => {
    const file = path.join(tmp, 'missing.gguf');
    const error = await loadError(file);
    expect(error.code).toBe('FILE_NOT_FOUND');
    expect(error.message).toContain(file);
    expect((await loadError(tmp)).code).toBe('FILE_NOT_FOUND');
  });

  it('a file that is not GGUF gives INVALID_MODEL before libllama sees it', async () => {
    const file = path.join(tmp, 'not.gguf');
    fs.writeFileSync(file, 'PK\u0003\u0004 this is a zip, not a model');
    const error = await loadError(file);
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toMatch(/not a GGUF file: expected it to start with "GGUF", found "PK/);
  });

  it('a truncated GGUF gives INVALID_MODEL, wherever it is cut, and nothing crashes', async () => {
    const full = fs.readFileSync(await tinyLlamaFile());
    // In the header, the metadata, the tensor infos, the tensor data, and one byte short.
    for (const length of [4, 24, 2000, 40_000, Math.floor(full.length / 2), full.length - 1]) {
      const file = path.join(tmp, `truncated-${length}.gguf`);
      fs.writeFileSync(file, full.subarray(0, length));
      const error = await loadError(file);
      expect(error.code, `cut at ${length} bytes`).toBe('INVALID_MODEL');
      expect(error.message).toContain(file);
    }
    // libllama's own reason is part of the message, e.g. for cut tensor data:
    expect((await loadError(path.join(tmp, `truncated-${full.length - 1}.gguf`))).message).toMatch(/not within the file bounds/);
    const llama = await loadTinyLlama();
    expect(llama.model.tokenize('still fine').length).toBeGreaterThan(0);
    await llama.dispose();
  });

  it('a projector GGUF passed as the LLM is recognised as such', async () => {
    const file = path.join(tmp, 'projector.gguf');
    await new GgufWriter()
      .set('general.architecture', { type: 'string', value: 'video-llama-projector' })
      .set('vl.llm_width', { type: 'u32', value: 96 })
      .addTensor('vid.proj.bias', [96], 'f32', () => f32Bytes(new Float32Array(96)))
      .write(file);
    const error = await loadError(file);
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toMatch(/is a Video-LLaMA projector GGUF .* not a language model/);
  });

  it('a GGUF of another kind (no token embeddings) gives INVALID_MODEL', async () => {
    const file = path.join(tmp, 'other.gguf');
    await new GgufWriter()
      .set('general.architecture', { type: 'string', value: 'clip' })
      .addTensor('v.patch_embd.weight', [4], 'f32', () => f32Bytes(new Float32Array(4)))
      .write(file);
    const error = await loadError(file);
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toMatch(/general.architecture = clip\) has no token_embd.weight/);
  });
});

describe('bad input to a loaded model', () => {
  let llama: VideoLlama;
  let model: LlmModel;
  let sequence: ContextSequence;
  beforeAll(async () => {
    llama = await loadTinyLlama({ contextSize: 128 });
    model = llama.model;
    sequence = llama.context.getSequence();
  });
  afterAll(() => llama.dispose());

  const embedding = (dim: number, tokens = 4): MediaEmbedding => ({ kind: 'video', tokens, dim, data: new Float32Array(tokens * dim) });

  it('an embedding of the wrong width gives DIMENSION_MISMATCH stating both widths; the chat goes on', async () => {
    await using chat = llama.createChat();
    const wrong = model.embeddingWidth + 32;
    const error = await chat.send({ text: 'What is this?', media: [embedding(wrong)] }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DIMENSION_MISMATCH' });
    expect((error as Error).message).toContain(`width ${wrong}, but the language model's embedding width is ${model.embeddingWidth}`);
    await expect(sequence.nextTokenLogits([embedding(wrong)])).rejects.toMatchObject({ code: 'DIMENSION_MISMATCH' });
    expect(await chat.send({ text: 'What is this?', media: [embedding(model.embeddingWidth)] }, { ...GREEDY, maxTokens: 3 }))
      .toEqual(expect.any(String));
  });

  it('a MediaEmbedding whose data length is not tokens * dim is rejected', async () => {
    const bad = { ...embedding(model.embeddingWidth), tokens: 5 };
    await using chat = llama.createChat();
    await expect(chat.send({ text: 'x', media: [bad] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(chat.send({ text: 'x', media: [{ ...bad, kind: 'smell' as 'video' }] }))
      .rejects.toThrow(/Expected one of 'video', 'audio', 'image' for message.media\[0\].kind/);
  });

  it('a prompt longer than the context gives CONTEXT_OVERFLOW with the tokens needed', async () => {
    const text = 'the video shows a dog '.repeat(80);
    const needed = model.tokenize(VICUNA_TEMPLATE.prompt('', [{ user: text }]), { special: true }).length;
    expect(needed).toBeGreaterThan(llama.context.size);
    await using chat = llama.createChat({ template: 'vicuna' });
    const error = await chat.send(text).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONTEXT_OVERFLOW', details: { needed, contextSize: llama.context.size } });
    expect((error as Error).message).toContain(`needs ${needed} tokens but the context holds ${llama.context.size}`);
  });

  it("a reply that fills the context stops with contextFull; with contextOverflow 'error' the next turn overflows", async () => {
    const noStops = { name: 'no-stops', stopStrings: [], defaultSystem: () => '', prompt: (_: string, turns: readonly { user: string; assistant?: string }[]) => turns.map((t) => `${t.user}\n${t.assistant ?? ''}`).join('\n') };
    await using chat = llama.createChat({ template: noStops, contextOverflow: 'error' });
    await chat.send('Hello', { ...GREEDY, maxTokens: 1000 });
    expect(chat.lastStats).toMatchObject({ stopReason: 'contextFull' });
    expect(chat.lastStats!.promptItems + chat.lastStats!.generatedTokens).toBe(llama.context.size + 1);
    await expect(chat.send('And?')).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW' });
  });

  it('rejects bad options with INVALID_ARGUMENT, naming them', async () => {
    await using chat = llama.createChat();
    await expect(chat.send('x', { temperature: -1 })).rejects.toThrow(/Expected a number >= 0 for options.temperature but received -1/);
    await expect(chat.send('x', { topP: 0 })).rejects.toThrow(/options.topP/);
    await expect(chat.send('x', { maxTokens: 1.5 })).rejects.toThrow(/options.maxTokens/);
    await expect(chat.send('x', { signal: 'stop' as unknown as AbortSignal })).rejects.toThrow(/options.signal/);
    await expect(chat.send(42 as unknown as string)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(chat.send('look: <ImageHere>')).rejects.toThrow(/contains <ImageHere>/);
    expect(() => llama.createChat({ template: 'alpaca' as 'vicuna' })).toThrow(/options.template/);
    await expect(sequence.nextTokenLogits([[model.vocabularySize + 5]])).rejects.toThrow(/outside the vocabulary/);
    await expect(VideoLlama.load({ llm: 'x.gguf', threads: 0 })).rejects.toThrow(/options.threads/);
    await expect(VideoLlama.load({} as { llm: string })).rejects.toThrow(/options.llm/);
  });
});
