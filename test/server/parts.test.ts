/**
 * The server's pieces without a model: the bounded queue, and how OpenAI messages become a
 * conversation.
 */
import { describe, expect, it } from 'vitest';

import { ApiError } from '../../src/server/api-error.js';
import { parseConversation } from '../../src/server/messages.js';
import { RequestQueue } from '../../src/server/request-queue.js';

describe('RequestQueue', () => {
  it('runs jobs in arrival order within its concurrency, refuses beyond its wait list, and drops a waiter that leaves', async () => {
    const queue = new RequestQueue(1, 2, 3);
    const order: string[] = [];
    let release!: () => void;
    const first = queue.run(new AbortController().signal, () => new Promise<void>((resolve) => { release = resolve; order.push('first'); }));
    const leaving = new AbortController();
    const left = queue.run(leaving.signal, async () => { order.push('left'); });
    const second = queue.run(new AbortController().signal, async () => { order.push('second'); });
    expect([queue.running, queue.waiting]).toEqual([1, 2]);
    let refused: unknown;
    try {
      await queue.run(new AbortController().signal, async () => undefined);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(ApiError);
    expect([(refused as ApiError).status, (refused as ApiError).retryAfter]).toEqual([429, 3]);
    leaving.abort(new Error('gone'));
    await expect(left).rejects.toThrow('gone');
    expect(queue.waiting).toBe(1);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect([queue.running, queue.waiting]).toEqual([0, 0]);
  });
});

describe('parseConversation', () => {
  it('joins system texts and consecutive user messages, and pairs each assistant turn with its question', () => {
    const conversation = parseConversation([
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: [{ type: 'text', text: 'Be kind.' }] },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: [{ type: 'text', text: 'Look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
      { role: 'user', content: 'at this' },
    ]);
    expect(conversation.system).toBe('Be brief.\nBe kind.');
    expect(conversation.history).toEqual([{ user: { text: 'Hi', media: [] }, assistant: 'Hello.' }]);
    expect(conversation.message.text).toBe('Look\nat this');
    expect(conversation.message.media).toEqual([{ source: { type: 'url', url: 'data:image/png;base64,AAAA' }, kind: 'image', param: 'messages[4].content[1]' }]);
  });

  it('names the field of a malformed conversation', () => {
    const param = (messages: Parameters<typeof parseConversation>[0]): string | null => {
      try {
        parseConversation(messages);
        return null;
      } catch (error) {
        return (error as ApiError).param;
      }
    };
    expect(param([{ role: 'assistant', content: 'Hi' }])).toBe('messages[0]');
    expect(param([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yes' }])).toBe('messages');
    expect(param([{ role: 'user', content: [{ type: 'input_video', input_video: { data: 'AA', url: 'data:,' } }] }])).toBe('messages[0].content[0].input_video');
    expect(param([{ role: 'assistant', content: [{ type: 'image_url' }] }, { role: 'user', content: 'x' }])).toBe('messages[0]');
    expect(param([{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'image_url' }] }, { role: 'user', content: 'y' }]))
      .toBe('messages[1].content[0].type');
  });
});
