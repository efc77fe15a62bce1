/**
 * Projector.plan with a chat: the positions it counts, from the chat's template and tokenizer,
 * are the positions the chat's next turn then evaluates (issue 9, "plan's position count equals
 * what the chat then uses").
 */
import fs from 'node:fs';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { Chat, LlmModel, Projector, type LlmContext } from '../../src/index.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { GREEDY, tinyLlamaFile } from '../support/tiny-llama.js';

describeWithFixtures(TINY_A, 'plan() counts the prompt of the chat that will take the media (tiny-a)', () => {
  const clip = fixture(TINY_A, 'inputs/clip.mp4');
  let dir: string;
  let projector: Projector;
  let model: LlmModel;
  let context: LlmContext;

  beforeAll(async () => {
    dir = tempDir('video-llama-plan-chat-');
    projector = await Projector.load(await convertFixture(TINY_A, 'f32', dir), { threads: 1 });
    model = await LlmModel.load(await tinyLlamaFile());
    context = await model.createContext({ contextSize: 1024, sequences: 2, threads: 1 });
  });
  afterAll(async () => {
    await projector.dispose();
    await model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each(['vicuna', 'llama2'] as const)('%s: the planned positions are the promptItems of the turns that follow', async (template) => {
    await using chat = new Chat(context.getSequence(), { template });
    // First turn: video with its sound (audio wording, the system prompt chosen from the media).
    const first = await projector.plan(clip, { chat, message: 'What happens in this video?' });
    expect(first.kind).toBe('video+audio');
    await chat.send({ text: 'What happens in this video?', media: await projector.encodeMedia(clip) }, { ...GREEDY, maxTokens: 4 });
    expect(first.context).toEqual({ positions: chat.lastStats!.promptItems, contextSize: context.size, fits: true });
    // Second turn, after the history: the video alone (its description of the sampled frames is in the prompt).
    const second = await projector.plan(clip, { chat, message: 'And then?', audio: false });
    expect(second.kind).toBe('video');
    await chat.send({ text: 'And then?', media: await projector.encodeMedia(clip, { audio: false }) }, { ...GREEDY, maxTokens: 4 });
    expect(second.context!.positions).toBe(chat.lastStats!.promptItems);
    expect(second.context!.positions).toBeGreaterThan(first.context!.positions + projector.info.videoQueries);
  });

  it('says when the prompt does not fit; refuses promptPositions beside a chat', async () => {
    await using chat = new Chat(context.getSequence());
    const { context: fit } = await projector.plan(clip, { chat });
    const tight = await projector.plan(clip, { chat, contextSize: fit!.positions - 1 });
    expect(tight.context).toEqual({ positions: fit!.positions, contextSize: fit!.positions - 1, fits: false });
    await expect(projector.plan(clip, { chat, promptPositions: 10 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(projector.plan(clip, { chat, message: 7 as unknown as string })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => chat.promptPositions({ text: 'x', media: [{ kind: 'video', tokens: 0 }] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
