import { describe, expect, it } from 'vitest';

import { IGNORE_LABEL } from '../../src/train/example.js';
import { VISUAL_SYSTEM_PROMPT } from '../../src/chat/templates.js';
import { MEDIA_TOKEN, type PromptLayout, type PromptTokenizer, stage1Layout, stage2Layout } from '../../src/train/template.js';

/**
 * A character tokenizer that behaves like libllama's SentencePiece one where it matters: BOS on
 * request, `<s>` / `</s>` parsed as BOS / EOS, and a leading-space marker `▁` before each text
 * fragment (at the start of a call and after a special token). One character is one token, so
 * the original's length arithmetic can be followed by hand.
 */
const BOS = 1;
const EOS = 2;
const MARK = 3;
const charTokenizer: PromptTokenizer = {
  bos: BOS,
  tokenize(text, addBos) {
    const ids = addBos ? [BOS] : [];
    for (const part of text.split(/(<s>|<\/s>)/)) {
      if (part === '<s>') ids.push(BOS);
      else if (part === '</s>') ids.push(EOS);
      else if (part !== '') ids.push(MARK, ...Array.from(part, (c) => c.codePointAt(0)!));
    }
    return ids;
  },
};

const render = (id: number): string => (id === BOS ? '<s>' : id === EOS ? '</s>' : id === MARK ? '▁' : id === MEDIA_TOKEN ? '[M]' : String.fromCodePoint(id));
const text = (ids: Iterable<number>): string => Array.from(ids, render).join('');

/** The labelled runs, as text: what the original trains on. */
function targetRuns(layout: PromptLayout): string[] {
  const runs: string[] = [];
  let run = '';
  layout.labels.forEach((label, i) => {
    if (label === IGNORE_LABEL) {
      if (run) runs.push(run);
      run = '';
      return;
    }
    expect(label).toBe(layout.tokens[i]); // HF's labels are the input ids, unshifted
    run += render(label);
  });
  if (run) runs.push(run);
  return runs;
}

describe('stage 1 layout (VideoLLAMA.forward, no conv_type)', () => {
  it('is BOS, the media run, then the caption + end_sym as the only target', () => {
    const layout = stage1Layout(charTokenizer, { caption: 'A red dot.', queries: 3 });
    expect(text(layout.tokens)).toBe('<s>[M][M][M]▁A red dot.\n');
    expect(layout.mediaOffset).toBe(1);
    expect(Array.from(layout.labels.subarray(0, 4))).toEqual([IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL]);
    expect(targetRuns(layout)).toEqual(['▁A red dot.\n']);
  });

  it('truncates the caption tokens to max_txt_len and takes another end_sym', () => {
    const layout = stage1Layout(charTokenizer, { caption: 'A red dot.', queries: 2, endSymbol: '###', maxTextTokens: 5 });
    expect(text(layout.tokens)).toBe('<s>[M][M]▁A re');
    expect(targetRuns(layout)).toEqual(['▁A re']);
  });
});

describe("stage 2 layout, vicuna, masking 'aligned' (the default)", () => {
  it('trains each answer and the ### after it; everything else is masked', () => {
    const layout = stage2Layout(charTokenizer, {
      template: 'vicuna', conversation: [{ q: 'Q1', a: 'A1' }, { q: 'Q2', a: 'A2' }], media: { kind: 'video' }, queries: 1,
    });
    expect(text(layout.tokens)).toBe('<s>▁\n\n###Human: <Video>[M]▁</Video> Q1\n###Assistant: A1\n###Human: Q2\n###Assistant: A2\n###');
    expect(targetRuns(layout)).toEqual([' A1\n###', ' A2\n###']);
  });
});

describe("stage 2 layout, vicuna, masking 'original' (preprocess + _mask_targets)", () => {
  it('one turn: header masked, human sentence masked from its 3rd token with the BOS drift, the answer and the closing ### trained', () => {
    const layout = stage2Layout(charTokenizer, {
      template: 'vicuna', masking: 'original', conversation: [{ q: 'Colour?', a: 'Red.' }], media: { kind: 'video', description: 'msg. ' }, queries: 2,
    });
    expect(text(layout.tokens)).toBe('<s>▁\n\n###Human: <Video>[M][M]▁</Video> msg. Colour?\n###Assistant: Red.\n###');
    expect(layout.mediaOffset).toBe(text(layout.tokens).indexOf('[M]') - 2); // '<s>' renders as 3 characters for 1 token
    // Header "\n\n" alone is <s>▁\n\n (4). The human sentence alone is <s>▁###Human: <Video> [2] ▁</Video> msg. Colour?\n,
    // two tokens longer than inside the whole text (BOS and ▁): the mask [4 + 2, 4 + len) leaves "##" trained
    // and runs two tokens into "###Assistant".
    expect(targetRuns(layout)).toEqual(['##', '#Assistant: Red.\n###']);
  });

  it('two turns: the drift grows by two per sentence', () => {
    const layout = stage2Layout(charTokenizer, {
      template: 'vicuna', masking: 'original', conversation: [{ q: 'Q1', a: 'A1' }, { q: 'Q2', a: 'A2' }], media: { kind: 'video' }, queries: 1,
    });
    expect(text(layout.tokens)).toBe('<s>▁\n\n###Human: <Video>[M]▁</Video> Q1\n###Assistant: A1\n###Human: Q2\n###Assistant: A2\n###');
    // Human 1 alone is 33 tokens, 31 inside: cur runs 2 ahead, and 2 more after assistant 1 (19 alone, 17 inside),
    // so cur is 4 past the start of "###Human: Q2\n" (at 52); its mask [56 + 2, 56 + 15) starts at its 7th token
    // ("a") and ends 6 tokens into "###Assistant: A2\n" (at 65): "###Hum" and "istant: A2\n###" are trained.
    expect(targetRuns(layout)).toEqual(['##', '#Assistant: A1\n###Hum', 'istant: A2\n###']);
  });

  it('puts a system prompt in the header', () => {
    const layout = stage2Layout(charTokenizer, { template: 'vicuna', system: 'Sys', conversation: [{ q: 'Q', a: 'A' }], media: { kind: 'image' }, queries: 1 });
    expect(text(layout.tokens)).toBe('<s>▁Sys\n\n###Human: <Image>[M]▁</Image>  Q\n###Assistant: A\n###');
  });
});

describe('stage 2 layout, llama2 (preprocess_for_llama_v2)', () => {
  it('trains each answer with its </s>; the instruction up to "[/INST]" masked', () => {
    const layout = stage2Layout(charTokenizer, {
      template: 'llama2', conversation: [{ q: 'Q1', a: 'A1' }, { q: 'Q2', a: 'A2' }], media: { kind: 'video', description: 'm. ' }, queries: 2,
    });
    expect(text(layout.tokens)).toBe('<s>▁[INST] <<SYS>>\n \n<</SYS>>\n\n<Video>[M][M]▁</Video> m. Q1 [/INST] A1 </s><s>▁[INST] Q2 [/INST] A2 </s>');
    // Round 1 alone: the instruction "…[/INST] " has BOS and ▁ (−2 covers them), so its masked length ends one
    // token short, leaving the space after "[/INST]" trained; round 2 starts with "<s>" (a second BOS).
    expect(targetRuns(layout)).toEqual([' A1 </s>', ' A2 </s>']);
  });

  it('uses the given system prompt', () => {
    const layout = stage2Layout(charTokenizer, { template: 'llama2', system: 'S', conversation: [{ q: 'Q', a: 'A' }], media: { kind: 'audio' }, queries: 1 });
    expect(text(layout.tokens)).toBe('<s>▁[INST] <<SYS>>\nS\n<</SYS>>\n\nClose your eyes, open your ears and you imagine only based on the sound that: [M]▁. Q [/INST] A </s>');
    expect(targetRuns(layout)).toEqual([' A </s>']);
  });
});

describe("stage 2 layout, format 'chat' (what Chat sends at inference)", () => {
  const conversation = [{ q: 'Q1', a: 'A1' }, { q: 'Q2', a: 'A2' }];

  it('vicuna: the SINGLE-separator prompt with the upload wording; each reply and its ### are the targets', () => {
    const layout = stage2Layout(charTokenizer, { template: 'vicuna', format: 'chat', system: 'S', conversation, media: { kind: 'video', description: 'm. ' }, queries: 2 });
    expect(text(layout.tokens)).toBe('<s>▁S###Human: <Video>[M][M]▁</Video> m.  Q1###Assistant: A1###Human: Q2###Assistant: A2###');
    expect(targetRuns(layout)).toEqual([' A1###', ' A2###']);
  });

  it("llama2: the LLaMA-2 chat prompt; each reply and its </s> are the targets; the chat's default system prompt", () => {
    const layout = stage2Layout(charTokenizer, { template: 'llama2', format: 'chat', conversation, media: { kind: 'image' }, queries: 1 });
    expect(text(layout.tokens)).toBe(`<s>▁[INST] <<SYS>>\n${VISUAL_SYSTEM_PROMPT}\n<</SYS>>\n\n<Image>[M]▁</Image>  Q1 [/INST] A1 </s><s>▁[INST] Q2 [/INST] A2 </s>`);
    expect(targetRuns(layout)).toEqual([' A1 </s>', ' A2 </s>']);
  });
});

describe('layout errors', () => {
  it('refuses bad queries, an empty conversation and an unknown template', () => {
    expect(() => stage1Layout(charTokenizer, { caption: 'x', queries: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => stage2Layout(charTokenizer, { template: 'vicuna', conversation: [], media: { kind: 'video' }, queries: 1 }))
      .toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => stage2Layout(charTokenizer, { template: 'alpaca' as 'vicuna', conversation: [{ q: 'q', a: 'a' }], media: { kind: 'video' }, queries: 1 }))
      .toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
