/**
 * `video-llama eval`: the scoring itself with planted replies (exact accuracies), and a run of the
 * command on the tiny random models (whatever they answer, each reply is scored by answerMatches).
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cachedRandomProjector, tinyProjector } from '../../src/dev/random-projector.js';
import { evaluateEntries, evaluateWorlds, type EvalReport, formatEvalTable, scoreQuestions } from '../../src/eval/evaluate.js';
import type { ManifestEntry } from '../../src/train/manifest.js';
import { writeDataset } from '../../src/world/dataset.js';
import { manifestRecord } from '../../src/world/dataset.js';
import { answerMatches } from '../../src/world/language.js';
import { makeScene } from '../../src/world/scene.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/projector-files.js';
import { CACHE_DIR, tinyLlamaFile } from '../support/tiny-llama.js';

/** Manifest entries of held-out samples 0 … n−1, without media (the planted replies need none). */
function entries(n: number): ManifestEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const record = manifestRecord(makeScene('heldout', 3, i), 2);
    return { ...record, manifest: 'planted', line: i + 1, facts: record.facts as Record<string, string> };
  });
}

const WRONG_SHAPE: Record<string, string> = { circle: 'A square.', square: 'A triangle.', triangle: 'A circle.' };

describe('scoring', () => {
  it('reference answers score 100 % on every attribute; planted wrong and empty replies score 0 %', async () => {
    const samples = entries(40);
    const byQuestion = new Map(samples.flatMap((e) => e.conversation!.map((t) => [`${e.id}|${t.q}`, t] as const)));
    const reference = await evaluateEntries(samples, async (entry, q) => byQuestion.get(`${entry.id}|${q}`)!.a);
    const asked = samples.reduce((n, e) => n + e.conversation!.length, 0);
    expect(reference.length).toBe(asked);
    for (const score of Object.values(scoreQuestions(reference))) expect(score).toMatchObject({ accuracy: 1 });
    expect(Object.keys(scoreQuestions(reference)).sort()).toEqual(['beepCount', 'colour', 'count', 'description', 'motion', 'pitch', 'shape', 'sound']);

    // Colour right, shape wrong, nothing else answered.
    const planted = await evaluateEntries(samples, async (entry, q) => {
      const turn = byQuestion.get(`${entry.id}|${q}`)!;
      if (turn.attribute === 'colour') return `It is ${turn.value}.`;
      if (turn.attribute === 'shape') return WRONG_SHAPE[turn.value!]!;
      return 'I do not know.';
    });
    const scores = scoreQuestions(planted);
    const count = (attribute: string) => planted.filter((q) => q.attribute === attribute).length;
    expect(scores.colour).toEqual({ asked: count('colour'), correct: count('colour'), accuracy: 1 });
    expect(scores.shape).toEqual({ asked: count('shape'), correct: 0, accuracy: 0 });
    expect(scores.motion!.correct).toBe(0);
    expect(count('colour')).toBeGreaterThan(10);
  });

  it('prints one row per attribute and a column per split', () => {
    const report = (split: string, correct: boolean[]): EvalReport => {
      const questions = correct.map((c, i) => ({ id: `s${i}`, attribute: i % 2 === 0 ? 'colour' as const : 'beepCount' as const, value: '1', question: 'q', reply: 'r', correct: c }));
      return { split, world: split, samples: correct.length, attributes: scoreQuestions(questions), questions };
    };
    const table = formatEvalTable([report('heldout', [true, true, false, false]), report('other-tool', [true, false, true, true])]);
    expect(table.split('\n')).toEqual([
      'attribute  heldout (4 samples)  other-tool (4 samples)',
      'colour     50.0 % (1/2)         100.0 % (2/2)',
      'beepCount  50.0 % (1/2)         50.0 % (1/2)',
      'all        50.0 % (2/4)         75.0 % (3/4)',
    ]);
  });
});

describe('video-llama eval on the tiny random models', () => {
  let dir: string;
  let llm: string;
  let projector: string;

  beforeAll(async () => {
    dir = tempDir('video-llama-eval-');
    await writeDataset({ out: path.join(dir, 'heldout'), count: 3, seed: 5, split: 'heldout', stages: [2], concurrency: 1 });
    [llm, projector] = await Promise.all([tinyLlamaFile(), cachedRandomProjector(CACHE_DIR, tinyProjector(96))]);
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--json: every question of the folder asked once and scored by answerMatches', async () => {
    const world = path.join(dir, 'heldout');
    const result = await runCli(['eval', '--llm', llm, '--projector', projector, '--world', world, '--json', '--max-tokens', '6', '--threads', '1']);
    expect(result.stderr).not.toMatch(/video-llama: /);
    expect(result.status).toBe(0);
    const [report] = JSON.parse(result.stdout) as EvalReport[];
    const lines = fs.readFileSync(path.join(world, 'stage2.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { conversation: unknown[] });
    expect(report!.split).toBe('heldout');
    expect(report!.samples).toBe(3);
    expect(report!.questions.length).toBe(lines.reduce((n, l) => n + l.conversation.length, 0));
    for (const q of report!.questions) expect(q.correct).toBe(answerMatches(q.attribute, q.value, q.reply));
    const total = Object.values(report!.attributes).reduce((n, s) => n + s.asked, 0);
    expect(total).toBe(report!.questions.length);
  }, 180_000);

  it('refuses a folder that is not a world', async () => {
    await expect(evaluateWorlds([dir], async () => 'unused')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(evaluateWorlds([], async () => 'unused')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
