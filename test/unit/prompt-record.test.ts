import { describe, expect, it } from 'vitest';

import { PositionRecord, runData, runsFrom, type PromptItem } from '../../src/llm/prompt-record.js';

const tokens = (...ids: number[]): PromptItem => ({ type: 'tokens', tokens: Int32Array.from(ids) });
const rows = (count: number, width = 2): PromptItem => ({ type: 'embeddings', data: Float32Array.from({ length: count * width }, (_, i) => i), count });

describe('PositionRecord', () => {
  it('matches tokens by id and embeddings by their data and row', () => {
    const video = rows(3);
    const record = new PositionRecord();
    for (const run of runsFrom([tokens(1, 5, 7), video], 0)) record.append(run);
    expect(record.length).toBe(6);
    expect(record.commonPrefix([tokens(1, 5, 7), video, tokens(9)])).toBe(6);
    expect(record.commonPrefix([tokens(1, 5, 8), video])).toBe(2);
    // Equal values in another array are another embedding: the cache cannot know they match.
    expect(record.commonPrefix([tokens(1, 5, 7), rows(3)])).toBe(3);
  });

  it('resumes inside an embedding at the right row', () => {
    const video = rows(4);
    const record = new PositionRecord();
    const [first, second] = runsFrom([tokens(1, 2), video], 0);
    record.append(first!);
    record.append(second!, 1);
    expect(record.commonPrefix([tokens(1, 2), video])).toBe(3);
    const rest = runsFrom([tokens(1, 2), video, tokens(3)], 3);
    expect(rest.map((r) => r.from)).toEqual([1, 0]);
    expect(Array.from(runData(rest[0]!))).toEqual([2, 3, 4, 5, 6, 7]);
    for (const run of rest) record.append(run);
    expect(record.commonPrefix([tokens(1, 2), video, tokens(3)])).toBe(7);
  });

  it('truncates to what the cache keeps', () => {
    const record = new PositionRecord();
    record.append({ item: tokens(4, 5, 6), from: 0 });
    record.truncate(1);
    expect(record.commonPrefix([tokens(4, 5, 6)])).toBe(1);
    record.truncate(10);
    expect(record.length).toBe(1);
  });
});
