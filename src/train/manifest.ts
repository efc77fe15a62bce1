/**
 * Training manifests: JSON lines naming a media file and its caption (stage 1) or a conversation
 * about it (stage 2), as `video-llama world` writes them (`Stage1Record` / `Stage2Record`) or as
 * users write them. A bad entry — malformed JSON, a record of the wrong shape, a missing media file,
 * an empty answer, and later, when examples are built, media that do not decode or a conversation
 * longer than the context — is reported with its line number, then skipped or fatal as the caller
 * chose ({@link BadEntryPolicy}).
 *
 * ```
 * {"media":"media/a.mp4","caption":"A red circle moves up."}
 * {"media":"/data/b.png","kind":"image","conversation":[{"q":"What colour is it?","a":"Blue."}]}
 * ```
 * `media` is relative to the manifest's folder unless absolute. Optional: `id`, `kind` (the world's
 * `video` | `silent-video` | `image` | `audio`; probed from the file when absent), `facts`, and per
 * turn `attribute` / `value` (the world's, used to keep questions a branch can answer).
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { invalidArgument, VideoLlamaError } from '../errors.js';
import { SCENE_KINDS, type SceneKind } from '../world/scene.js';

/** Which training stage a manifest feeds: captions (1) or conversations (2). */
export type ManifestStage = 1 | 2;

/** What to do with a bad entry: leave it out (and report it), or stop with a {@link ManifestError}. */
export type BadEntryPolicy = 'skip' | 'fail';

/** What was wrong with an entry. */
export type ManifestProblem =
  | 'malformed-json'
  | 'invalid-record'
  | 'missing-file'
  | 'empty-answer'
  | 'undecodable-media'
  | 'too-long';

/** One question and answer of a stage-2 entry. */
export interface ManifestTurn {
  /** The question. */
  q: string;
  /** The reference answer (the target). */
  a: string;
  /** The world's attribute the question asks about (`colour`, …, `description`), when known. */
  attribute?: string;
  /** The world's expected value, when known. */
  value?: string;
}

/** A good entry of a manifest. */
export interface ManifestEntry {
  /** The manifest file it came from. */
  manifest: string;
  /** Its line (1-based). */
  line: number;
  /** The record's `id`, else `<manifest name>:<line>`. */
  id: string;
  /** The media file, absolute. */
  media: string;
  /** The world's kind of sample, when the record says. */
  kind?: SceneKind;
  /** Stage 1: the caption. */
  caption?: string;
  /** Stage 2: the conversation. */
  conversation?: ManifestTurn[];
  /** The world's ground truth, when given. */
  facts?: Record<string, string>;
}

/** A bad entry, as reported. */
export interface BadEntry {
  /** The manifest file. */
  manifest: string;
  /** The entry's line (1-based). */
  line: number;
  /** What was wrong. */
  problem: ManifestProblem;
  /** What was wrong, for people. */
  message: string;
}

/**
 * A bad manifest entry under the `'fail'` policy: code `INVALID_MANIFEST`, `details` holds
 * `manifest`, `line` and `problem`.
 */
export class ManifestError extends VideoLlamaError {
  /** The bad entry. */
  readonly entry: BadEntry;

  constructor(entry: BadEntry, options?: { cause?: unknown }) {
    super('INVALID_MANIFEST', `${entry.manifest}:${entry.line}: ${entry.message}`, { ...entry }, options);
    this.name = 'ManifestError';
    this.entry = entry;
  }
}

/**
 * Collects bad entries under a policy: `report` throws a {@link ManifestError} under `'fail'`,
 * records the entry (and tells `onBadEntry`) under `'skip'`.
 */
export class BadEntries {
  /** The entries reported so far. */
  readonly list: BadEntry[] = [];

  /** Skip or fail. */
  readonly policy: BadEntryPolicy;

  constructor(policy: BadEntryPolicy = 'fail', private readonly listener?: (entry: BadEntry) => void) {
    this.policy = policy;
    if (policy !== 'skip' && policy !== 'fail') throw invalidArgument('onBadEntry', "'skip' or 'fail'", policy);
  }

  /** Reports a bad entry; throws under `'fail'`. */
  report(entry: BadEntry, cause?: unknown): void {
    if (this.policy === 'fail') throw new ManifestError(entry, { cause });
    this.list.push(entry);
    this.listener?.(entry);
  }
}

/** Options of {@link readManifest}. */
export interface ReadManifestOptions {
  /** The stage the manifest is for: decides whether `caption` or `conversation` is required. */
  stage: ManifestStage;
  /** Where bad entries go; default a new `'fail'` collector. */
  badEntries?: BadEntries;
}

/**
 * Reads a manifest: its good entries in file order. Blank lines are ignored. Rejects with
 * FILE_NOT_FOUND when the manifest cannot be read, INVALID_MANIFEST for the first bad entry
 * under the `'fail'` policy.
 */
export async function readManifest(file: string, options: ReadManifestOptions): Promise<ManifestEntry[]> {
  if (typeof file !== 'string' || file === '') throw invalidArgument('manifest', 'a file path', file);
  if (options.stage !== 1 && options.stage !== 2) throw invalidArgument('stage', '1 or 2', options.stage);
  const bad = options.badEntries ?? new BadEntries('fail');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new VideoLlamaError('FILE_NOT_FOUND', `the manifest ${file} cannot be read: ${(error as Error).message}`, { file }, { cause: error });
  }
  const entries: ManifestEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() === '') continue;
    const line = i + 1;
    const fault = (problem: ManifestProblem, message: string, cause?: unknown) => bad.report({ manifest: file, line, problem, message }, cause);
    let record: unknown;
    try {
      record = JSON.parse(lines[i]!);
    } catch (error) {
      fault('malformed-json', `not JSON: ${(error as Error).message}`, error);
      continue;
    }
    const parsed = parseRecord(record, options.stage);
    if ('problem' in parsed) {
      fault(parsed.problem, parsed.message);
      continue;
    }
    const media = path.resolve(path.dirname(file), parsed.media);
    if (!(await isFile(media))) {
      fault('missing-file', `the media file ${media} does not exist or is not a file`);
      continue;
    }
    entries.push({ ...parsed, manifest: file, line, media, id: parsed.id ?? `${path.basename(file)}:${line}` });
  }
  return entries;
}

async function isFile(file: string): Promise<boolean> {
  return fs.stat(file).then((stat) => stat.isFile(), () => false);
}

type ParsedRecord = Omit<ManifestEntry, 'manifest' | 'line' | 'id'> & { id?: string };

const isString = (value: unknown): value is string => typeof value === 'string';

/** The record's fields, or what is wrong with it. */
function parseRecord(record: unknown, stage: ManifestStage): ParsedRecord | { problem: ManifestProblem; message: string } {
  const invalid = (message: string) => ({ problem: 'invalid-record' as const, message });
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return invalid('a line must be a JSON object');
  const r = record as Record<string, unknown>;
  if (!isString(r.media) || r.media === '') return invalid('"media" must be a non-empty path');
  if (r.id !== undefined && !isString(r.id)) return invalid('"id" must be a string');
  if (r.kind !== undefined && !SCENE_KINDS.includes(r.kind as SceneKind)) return invalid(`"kind" must be one of ${SCENE_KINDS.join(', ')}`);
  if (r.facts !== undefined && !(typeof r.facts === 'object' && r.facts !== null && Object.values(r.facts).every(isString))) {
    return invalid('"facts" must be an object of strings');
  }
  const common = { media: r.media, id: r.id as string | undefined, kind: r.kind as SceneKind | undefined, facts: r.facts as Record<string, string> | undefined };
  if (stage === 1) {
    if (!isString(r.caption)) return invalid('a stage-1 line needs a "caption" string');
    if (r.caption.trim() === '') return { problem: 'empty-answer', message: 'the caption is empty' };
    return { ...common, caption: r.caption };
  }
  if (!Array.isArray(r.conversation) || r.conversation.length === 0) return invalid('a stage-2 line needs a non-empty "conversation" array');
  const conversation: ManifestTurn[] = [];
  for (const [i, turn] of (r.conversation as unknown[]).entries()) {
    const t = turn as Record<string, unknown> | null;
    if (typeof t !== 'object' || t === null || !isString(t.q) || !isString(t.a)) return invalid(`conversation[${i}] must be an object with "q" and "a" strings`);
    if (t.q.trim() === '') return invalid(`conversation[${i}] has an empty question`);
    if (t.a.trim() === '') return { problem: 'empty-answer', message: `conversation[${i}] has an empty answer` };
    if ((t.attribute !== undefined && !isString(t.attribute)) || (t.value !== undefined && !isString(t.value))) {
      return invalid(`conversation[${i}]: "attribute" and "value" must be strings`);
    }
    conversation.push({ q: t.q, a: t.a, attribute: t.attribute as string | undefined, value: t.value as string | undefined });
  }
  return { ...common, conversation };
}
