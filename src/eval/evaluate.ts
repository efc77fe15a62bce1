/**
 * Evaluation on the world (docs/world.md): every question of a dataset folder's `stage2.jsonl` asked
 * about its media in a new chat, answered greedily, and scored by the world's `answerMatches`,
 * giving the accuracy per attribute and split.
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { invalidArgument, throwIfAborted, VideoLlamaError } from '../errors.js';
import { BadEntries, type ManifestEntry, readManifest } from '../train/manifest.js';
import { manifestRecord, writeMedia } from '../world/dataset.js';
import { answerMatches, type QaAttribute } from '../world/language.js';
import { ATTRIBUTES, type Scene } from '../world/scene.js';
import type { AskSample, ChatAsker } from './chat-asker.js';

/** The attributes scored, in table order. */
export const EVAL_ATTRIBUTES: readonly QaAttribute[] = [...ATTRIBUTES, 'description'];

/** One question asked, and how its reply scored. */
export interface EvalQuestion {
  /** The sample's id. */
  id: string;
  /** What the question asks about. */
  attribute: QaAttribute;
  /** The expected value (see `QaPair.value`). */
  value: string;
  /** The question asked. */
  question: string;
  /** The model's reply. */
  reply: string;
  /** Whether `answerMatches(attribute, value, reply)`. */
  correct: boolean;
}

/** Questions asked and answered correctly for one attribute. */
export interface AttributeScore {
  /** Questions asked about the attribute. */
  asked: number;
  /** Of them, answered correctly. */
  correct: number;
  /** `correct / asked`; NaN when nothing was asked. */
  accuracy: number;
}

/** The result of evaluating one dataset folder. */
export interface EvalReport {
  /** The folder's split (`dataset.json`), e.g. `heldout` or `other-tool`. */
  split: string;
  /** The dataset folder. */
  world: string;
  /** Samples evaluated. */
  samples: number;
  /** Scores per attribute (only attributes that were asked). */
  attributes: Partial<Record<QaAttribute, AttributeScore>>;
  /** Every question, in order. */
  questions: EvalQuestion[];
}

/** Scores per attribute of scored questions. */
export function scoreQuestions(questions: readonly Pick<EvalQuestion, 'attribute' | 'correct'>[]): Partial<Record<QaAttribute, AttributeScore>> {
  const scores: Partial<Record<QaAttribute, AttributeScore>> = {};
  for (const attribute of EVAL_ATTRIBUTES) {
    const asked = questions.filter((q) => q.attribute === attribute);
    if (asked.length === 0) continue;
    const correct = asked.filter((q) => q.correct).length;
    scores[attribute] = { asked: asked.length, correct, accuracy: correct / asked.length };
  }
  return scores;
}

/** What evaluation needs of a manifest entry: its media and its tagged conversation. */
export type EvalSample = Pick<ManifestEntry, 'id' | 'media' | 'conversation'>;

/** Options of {@link evaluateEntries}. */
export interface EvaluateEntriesOptions {
  /** Samples asked about at once (e.g. a {@link ChatAsker}'s `concurrency`); default 1. */
  concurrency?: number;
  /** Cancels between samples (ABORTED); passed on to `ask`. */
  signal?: AbortSignal;
  /** Called after each sample with samples done and their total. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Asks every tagged question of `entries` through `ask` (all of a sample's questions in one call,
 * `concurrency` samples at once) and scores the replies; turns without a world attribute are not
 * asked. The questions come back in entry order whatever order the samples finish in.
 */
export async function evaluateEntries(entries: readonly EvalSample[], ask: AskSample, options: EvaluateEntriesOptions = {}): Promise<EvalQuestion[]> {
  const { concurrency = 1, signal } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw invalidArgument('concurrency', 'an integer >= 1', concurrency);
  const results: EvalQuestion[][] = new Array(entries.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const index = next++;
      const entry = entries[index]!;
      throwIfAborted(signal, 'evaluation');
      const turns = (entry.conversation ?? []).filter((turn) => turn.attribute !== undefined && turn.value !== undefined);
      const replies = turns.length === 0 ? [] : await ask(entry.media, turns.map(({ q, attribute }) => ({ q, attribute })), signal);
      results[index] = turns.map((turn, i) => {
        const attribute = turn.attribute as QaAttribute;
        const reply = replies[i] ?? '';
        return { id: entry.id, attribute, value: turn.value!, question: turn.q, reply, correct: answerMatches(attribute, turn.value!, reply) };
      });
      options.onProgress?.(++done, entries.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, worker));
  return results.flat();
}

/** Options of {@link evaluateWorlds}. */
export interface EvaluateWorldsOptions extends EvaluateEntriesOptions {
  /** Samples per folder (the first ones); default all. */
  limit?: number;
  /** Called after each sample of each folder. */
  onProgress?: (done: number, total: number, world?: string) => void;
}

/**
 * Evaluates dataset folders (`video-llama world`, e.g. a held-out and an other-tool one): every
 * tagged question of each `stage2.jsonl` answered by `ask` and scored. The CLI's `ask` is a
 * {@link ChatAsker}'s: a new greedy chat per question with the sample's media, encoded once. Rejects with INVALID_ARGUMENT (a folder that
 * is not a world), FILE_NOT_FOUND, INVALID_MANIFEST, and what `ask` rejects with.
 */
export async function evaluateWorlds(worlds: readonly string[], ask: AskSample, options: EvaluateWorldsOptions = {}): Promise<EvalReport[]> {
  const { limit } = options;
  if (!Array.isArray(worlds) || worlds.length === 0) throw invalidArgument('worlds', 'a non-empty array of dataset folders', worlds);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw invalidArgument('limit', 'an integer >= 1', limit);
  const folders = await Promise.all(worlds.map(async (world) => ({ world, split: await worldSplit(world) })));
  const reports: EvalReport[] = [];
  for (const { world, split } of folders) {
    const entries = (await readManifest(path.join(world, 'stage2.jsonl'), { stage: 2, badEntries: new BadEntries('fail') })).slice(0, limit);
    const questions = await evaluateEntries(entries, ask, {
      concurrency: options.concurrency, signal: options.signal, onProgress: options.onProgress && ((done, total) => options.onProgress!(done, total, world)),
    });
    reports.push({ split, world, samples: entries.length, attributes: scoreQuestions(questions), questions });
  }
  return reports;
}

/** Options of {@link evaluateScenes}. */
export interface EvaluateScenesOptions extends EvaluateEntriesOptions {
  /** Folder the scenes' media files are written to (kept: a file already there is reused). */
  dir: string;
  /** Attributes asked about; default every one the scene's conversation has. */
  attributes?: readonly QaAttribute[];
}

/**
 * Asks about world scenes without a dataset folder: each scene's file is rendered into
 * `options.dir` (unless there), and its conversation's questions about `options.attributes` are
 * asked through `ask` and scored by `answerMatches`, like {@link evaluateWorlds}' questions.
 *
 * @example
 * ```ts
 * const scenes = [0, 1, 2].map((i) => makeScene('heldout', 7, i));
 * const questions = await evaluateScenes(scenes, asker.ask, { dir: 'clips', attributes: ['colour', 'shape'], concurrency: asker.concurrency });
 * ```
 */
export async function evaluateScenes(scenes: readonly Scene[], ask: AskSample, options: EvaluateScenesOptions): Promise<EvalQuestion[]> {
  const { dir, attributes } = options;
  await fs.mkdir(path.join(dir, 'media'), { recursive: true });
  const samples: EvalSample[] = [];
  for (const scene of scenes) {
    const record = manifestRecord(scene, 2);
    const media = path.resolve(dir, record.media);
    await writeMedia(scene, dir, options.signal);
    const conversation = record.conversation.filter((turn) => attributes === undefined || attributes.includes(turn.attribute));
    samples.push({ id: record.id, media, conversation });
  }
  return evaluateEntries(samples, ask, options);
}

/** The split named by a world folder's `dataset.json`. */
async function worldSplit(world: string): Promise<string> {
  const file = path.join(world, 'dataset.json');
  const identity = await fs.readFile(file, 'utf8').then((text) => JSON.parse(text) as { format?: string; split?: unknown }, () => undefined);
  if (identity?.format !== 'video-llama-world' || typeof identity.split !== 'string') {
    throw new VideoLlamaError('INVALID_ARGUMENT', `${world} is not a world dataset folder (no readable ${file}); make one with \`video-llama world\``, { world });
  }
  return identity.split;
}

/**
 * The accuracy table: one row per attribute, one column per report (its split), each cell
 * `accuracy % (correct/asked)`, and a row of every question together.
 *
 * @example
 * ```
 * attribute   heldout              other-tool
 * colour      92.0 % (46/50)       90.0 % (45/50)
 * ```
 */
export function formatEvalTable(reports: readonly EvalReport[]): string {
  const cell = (score: AttributeScore | undefined) => (score && score.asked > 0 ? `${(100 * score.accuracy).toFixed(1)} % (${score.correct}/${score.asked})` : '–');
  const total = (report: EvalReport): AttributeScore => {
    const asked = report.questions.length;
    const correct = report.questions.filter((q) => q.correct).length;
    return { asked, correct, accuracy: asked === 0 ? Number.NaN : correct / asked };
  };
  const attributes = EVAL_ATTRIBUTES.filter((a) => reports.some((r) => r.attributes[a]));
  const rows = [
    ['attribute', ...reports.map((r) => `${r.split} (${r.samples} samples)`)],
    ...attributes.map((a) => [a, ...reports.map((r) => cell(r.attributes[a]))]),
    ['all', ...reports.map((r) => cell(total(r)))],
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((text, column) => text.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}
