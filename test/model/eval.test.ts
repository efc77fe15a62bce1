/**
 * `video-llama eval`: the scoring itself with planted replies (exact accuracies), and a run of the
 * command on the tiny random models (whatever they answer, each reply is scored by answerMatches).
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cachedRandomProjector, tinyProjector } from '../../src/dev/random-projector.js';
import { evaluateEntries, evaluateWorlds, type EvalReport, formatEvalTable, scoreQuestions } from '../../src/eval/evaluate.js';
import type { AskerModel, AskSample, MediaChoice } from '../../src/eval/chat-asker.js';
import type { ManifestEntry, ManifestTurn } from '../../src/train/manifest.js';
import { chatAsker, questionMedia } from '../../src/eval/chat-asker.js';
import { writeModelPackage } from '../../src/eval/model-package.js';
import { QUALITY_ATTRIBUTES, QUALITY_CLIPS, qualityScenes } from '../../src/eval/quality.js';
import { VideoLlama, type MediaEmbedding, type MediaKind } from '../../src/index.js';
import { sceneFileName } from '../../src/world/encode-file.js';
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

/** An asker that answers each question of a sample by `reply(turn)`, looked up by the sample's media and the question. */
function planted(samples: readonly ManifestEntry[], reply: (turn: ManifestTurn) => string): AskSample {
  const turns = new Map(samples.flatMap((e) => e.conversation!.map((t) => [`${e.media}|${t.q}`, t] as const)));
  return async (media, questions) => questions.map(({ q }) => reply(turns.get(`${media}|${q}`)!));
}

describe('scoring', () => {
  it('reference answers score 100 % on every attribute; planted wrong and empty replies score 0 %', async () => {
    const samples = entries(40);
    const reference = await evaluateEntries(samples, planted(samples, (turn) => turn.a));
    const asked = samples.reduce((n, e) => n + e.conversation!.length, 0);
    expect(reference.length).toBe(asked);
    for (const score of Object.values(scoreQuestions(reference))) expect(score).toMatchObject({ accuracy: 1 });
    expect(Object.keys(scoreQuestions(reference)).sort()).toEqual(['beepCount', 'colour', 'count', 'description', 'motion', 'pitch', 'shape', 'sound']);

    // Colour right, shape wrong, nothing else answered.
    const answered = await evaluateEntries(samples, planted(samples, (turn) => {
      if (turn.attribute === 'colour') return `It is ${turn.value}.`;
      if (turn.attribute === 'shape') return WRONG_SHAPE[turn.value!]!;
      return 'I do not know.';
    }));
    const scores = scoreQuestions(answered);
    const count = (attribute: string) => answered.filter((q) => q.attribute === attribute).length;
    expect(scores.colour).toEqual({ asked: count('colour'), correct: count('colour'), accuracy: 1 });
    expect(scores.shape).toEqual({ asked: count('shape'), correct: 0, accuracy: 0 });
    expect(scores.motion!.correct).toBe(0);
    expect(count('colour')).toBeGreaterThan(10);
  });

  it('asks `concurrency` samples at once and keeps the entry order', async () => {
    const samples = entries(9);
    let inFlight = 0;
    let most = 0;
    const delays = [30, 5, 20, 1, 25, 10, 2, 15, 8];
    const reference = planted(samples, (turn) => turn.a);
    const slow: AskSample = async (media, questions) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, delays[samples.findIndex((e) => e.media === media)]));
      inFlight--;
      return reference(media, questions);
    };
    const progress: number[] = [];
    const questions = await evaluateEntries(samples, slow, { concurrency: 3, onProgress: (done) => progress.push(done) });
    expect(most).toBe(3);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(questions.map((q) => `${q.id}|${q.question}`)).toEqual(samples.flatMap((e) => e.conversation!.map((t) => `${e.id}|${t.q}`)));
    expect(questions.every((q) => q.correct)).toBe(true);
    await expect(evaluateEntries(samples, slow, { concurrency: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it("'per-branch' sends the picture with questions about it, the sound with questions about that, both with a description", () => {
    const embedding = (kind: MediaKind): MediaEmbedding => ({ kind, tokens: 1, dim: 1, data: new Float32Array(1) });
    const [audio, video] = [embedding('audio'), embedding('video')];
    const both = [audio, video];
    for (const attribute of ['colour', 'shape', 'count', 'motion']) expect(questionMedia(both, { q: 'q', attribute }, 'per-branch')).toEqual([video]);
    for (const attribute of ['sound', 'pitch', 'beepCount']) expect(questionMedia(both, { q: 'q', attribute }, 'per-branch')).toEqual([audio]);
    expect(questionMedia(both, { q: 'q', attribute: 'description' }, 'per-branch')).toEqual(both);
    expect(questionMedia(both, { q: 'q' }, 'per-branch')).toEqual(both);
    expect(questionMedia([video], { q: 'q', attribute: 'sound' }, 'per-branch')).toEqual([video]);
    expect(questionMedia(both, { q: 'q', attribute: 'colour' }, 'together')).toEqual(both);
    const unused = {} as AskerModel;
    expect(() => chatAsker(unused, { media: 'video-only' as MediaChoice })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => chatAsker(unused, { maxTokens: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
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

  it('--json --parallel 3: every question asked once, scored by answerMatches, replies as one chat at a time gives them', async () => {
    const world = path.join(dir, 'heldout');
    const result = await runCli(['eval', '--llm', llm, '--projector', projector, '--world', world, '--json', '--max-tokens', '6', '--threads', '1', '--parallel', '3']);
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

    // The same questions, one sample and one chat at a time: the same greedy replies.
    await using llama = await VideoLlama.load({ llm, projector, threads: 1, sequences: 1, contextSize: 512 });
    const asker = chatAsker(llama, { maxTokens: 6 });
    const [alone] = await evaluateWorlds([world], asker.ask);
    await asker.dispose();
    expect(report!.questions.map((q) => q.reply)).toEqual(alone!.questions.map((q) => q.reply));
  }, 240_000);

  it('--model <package> --quality: the fixed held-out clips, asked about colour, shape, motion and sound', async () => {
    const pkg = path.join(dir, 'package');
    await writeModelPackage(pkg, { name: 'tiny random', llm, projector, template: 'llama2', training: { recipes: [], commit: 'none', data: 'none (random weights)' } });
    const clips = path.join(dir, 'quality');
    const result = await runCli(['eval', '--model', pkg, '--quality', '--quality-dir', clips, '--json', '--max-tokens', '4', '--threads', '1', '--parallel', '2']);
    expect(result.stderr).not.toMatch(/video-llama: /);
    expect(result.status).toBe(0);
    const [report] = JSON.parse(result.stdout) as EvalReport[];
    expect(report!.split).toBe('quality');
    expect(report!.samples).toBe(QUALITY_CLIPS);
    expect(Object.keys(report!.attributes).sort()).toEqual([...QUALITY_ATTRIBUTES].sort());
    for (const attribute of QUALITY_ATTRIBUTES) expect(report!.attributes[attribute]!.asked).toBe(QUALITY_CLIPS);
    expect(fs.readdirSync(path.join(clips, 'media')).sort()).toEqual(qualityScenes().map((scene) => sceneFileName(scene)).sort());
    for (const q of report!.questions) expect(q.correct).toBe(answerMatches(q.attribute, q.value, q.reply));
  }, 240_000);

  it('refuses a folder that is not a world', async () => {
    await expect(evaluateWorlds([dir], async () => [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(evaluateWorlds([], async () => [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
