import { describe, expect, it } from 'vitest';

import { ReplyText } from '../../src/chat/reply-text.js';
import {
  defaultTemplateName,
  LLAMA2_SYSTEM_PROMPT,
  LLAMA2_TEMPLATE,
  orderMedia,
  userMessage,
  VICUNA_TEMPLATE,
  VISUAL_SYSTEM_PROMPT,
} from '../../src/chat/templates.js';
import type { MediaEmbedding, MediaKind } from '../../src/media-embedding.js';

const media = (kind: MediaKind, description?: string): MediaEmbedding => ({ kind, tokens: 1, dim: 4, data: new Float32Array(4), description });

// Expected strings are what conversation_video.py's get_prompt() returns for the same
// messages (worked out from its code: SINGLE and LLAMA_2 separator styles).
describe('conversation templates', () => {
  it('vicuna: system###Human: …###Assistant: …###, ending with "Assistant:"', () => {
    expect(VICUNA_TEMPLATE.prompt('', [{ user: 'Hi' }])).toBe('###Human: Hi###Assistant:');
    expect(VICUNA_TEMPLATE.prompt('Be brief.', [{ user: 'Hi', assistant: 'Hello!' }, { user: 'Bye' }]))
      .toBe('Be brief.###Human: Hi###Assistant: Hello!###Human: Bye###Assistant:');
    // Python's `if message:` renders an empty message like the pending reply.
    expect(VICUNA_TEMPLATE.prompt('', [{ user: '' }])).toBe('###Human:Assistant:');
    expect(VICUNA_TEMPLATE.stopStrings).toEqual(['###']);
  });

  it('llama2: [INST] <<SYS>> … [/INST] reply </s><s>[INST] …, leading <s> stripped', () => {
    expect(LLAMA2_TEMPLATE.prompt('S', [{ user: 'Hi' }])).toBe('[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST]');
    expect(LLAMA2_TEMPLATE.prompt('S', [{ user: 'Hi', assistant: 'Hello!' }, { user: 'Bye' }]))
      .toBe('[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]');
    expect(LLAMA2_TEMPLATE.stopStrings).toEqual([]);
  });

  it("chooses the demos' system prompts by the first message's media", () => {
    const kinds = (...k: MediaKind[]) => new Set(k);
    expect(VICUNA_TEMPLATE.defaultSystem(kinds())).toBe('');
    expect(LLAMA2_TEMPLATE.defaultSystem(kinds())).toBe(LLAMA2_SYSTEM_PROMPT);
    expect(LLAMA2_TEMPLATE.defaultSystem(kinds('image'))).toBe(VISUAL_SYSTEM_PROMPT);
    expect(VICUNA_TEMPLATE.defaultSystem(kinds('video'))).toBe(VISUAL_SYSTEM_PROMPT);
    expect(LLAMA2_TEMPLATE.defaultSystem(kinds('video', 'audio'))).toBe('');
  });

  it('picks llama2 for a LLaMA-2 chat template in the GGUF, vicuna otherwise', () => {
    expect(defaultTemplateName("{% if messages[0]['role'] == 'system' %}<<SYS>>\\n{{ system }}\\n<</SYS>>{% endif %}[INST] {{ content }} [/INST]"))
      .toBe('llama2');
    expect(defaultTemplateName('')).toBe('vicuna');
    expect(defaultTemplateName('{{ bos_token }}USER: {{ content }} ASSISTANT:')).toBe('vicuna');
  });
});

describe('media wording (Chat.upload_* then Chat.ask)', () => {
  it('video: "<Video><ImageHere></Video> " + load_video msg, joined to the question by a space', () => {
    expect(userMessage('What happens?', [media('video', 'The video contains 8 frames sampled at 0.0, 0.5 seconds. ')]))
      .toBe('<Video><ImageHere></Video> The video contains 8 frames sampled at 0.0, 0.5 seconds.  What happens?');
    expect(userMessage('Q', [media('video')])).toBe('<Video><ImageHere></Video>  Q');
  });

  it('image: "<Image><ImageHere></Image> "', () => {
    expect(userMessage('Q', [media('image')])).toBe('<Image><ImageHere></Image>  Q');
  });

  it("audio + video: the demo's audio-visual text verbatim, audio placeholder first", () => {
    const expected = 'Close your eyes, open your ears and you imagine only based on the sound that: <ImageHere>.' + ' '.repeat(17) +
      'Close your ears, open your eyes and you see that <Video><ImageHere></Video>.' + ' '.repeat(18) +
      'Now answer my question based on what you have just seen and heard. Q';
    const video = media('video', 'ignored with audio');
    const audio = media('audio');
    expect(userMessage('Q', [video, audio])).toBe(expected);
    expect(orderMedia([video, audio])).toEqual([audio, video]);
  });

  it('keeps text without media as it is', () => {
    expect(userMessage('just text', [])).toBe('just text');
  });
});

describe('ReplyText', () => {
  const feed = (stops: string[], pieces: string[]) => {
    const reply = new ReplyText(stops);
    const released = pieces.map((p) => reply.push(p));
    released.push(reply.finish());
    return { released, text: reply.text };
  };

  it("cuts at the first stop string and strips like the original's split(stop)[0].strip()", () => {
    const { released, text } = feed(['###'], [' Hello', ' world', '#', '#', '# Human', ': more']);
    expect(text).toBe('Hello world');
    expect(released.join('')).toBe(text);
    // "#" could start "###": it is held back until it cannot.
    expect(released.slice(0, 4)).toEqual(['Hello', ' world', '', '']);
  });

  it('releases a held-back partial stop string that does not complete', () => {
    const { released, text } = feed(['###'], ['a', ' #', '#b', ' c ']);
    expect(text).toBe('a ##b c');
    expect(released.join('')).toBe(text);
  });

  it('never releases trailing whitespace', () => {
    const { released, text } = feed([], ['  x ', '\n', 'y\n\n']);
    expect(text).toBe('x \ny');
    expect(released).toEqual(['x', '', ' \ny', '']);
  });
});
