/**
 * Dataset folders of the world: media files plus JSON-lines manifests for the two training stages.
 *
 * ```
 * DIR/dataset.json      {"format":"video-llama-world","version":1,"split":"train","seed":1}
 * DIR/media/<id>.<ext>  one file per sample (mp4, png, jpg, wav, mp3; other formats for other-tool)
 * DIR/stage1.jsonl      {"id","media","kind","caption","facts"}            one line per sample
 * DIR/stage2.jsonl      {"id","media","kind","conversation":[{q,a,attribute,value}],"facts"}
 * ```
 * Deterministic for (split, seed, count) and resumable: media already there are kept (files appear
 * under their final name only once complete), the manifests are rewritten whole.
 * @module
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { invalidArgument, throwIfAborted, VideoLlamaError } from '../errors.js';
import { sceneFileName, writeAtomically, writeSceneFile } from './encode-file.js';
import { caption, conversation, type QaPair } from './language.js';
import { writeOtherToolFile } from './other-tool.js';
import { makeScene, type Scene, type SceneFacts, sceneFacts, type SceneKind, type Split, validateSeed, validateSplit } from './scene.js';

/** The manifest's identification, written to `dataset.json`. */
const FORMAT = { format: 'video-llama-world', version: 1 } as const;

/** The training stages a manifest can be written for. */
export type Stage = 1 | 2;

/** One line of `stage1.jsonl`: a sample and its caption. */
export interface Stage1Record {
  id: string;
  /** The media file, relative to the dataset folder (`media/<id>.<ext>`). */
  media: string;
  kind: SceneKind;
  caption: string;
  /** The ground truth (see `sceneFacts`). */
  facts: SceneFacts;
}

/** One line of `stage2.jsonl`: a sample and a conversation about it. */
export interface Stage2Record {
  id: string;
  /** The media file, relative to the dataset folder. */
  media: string;
  kind: SceneKind;
  conversation: QaPair[];
  /** The ground truth (see `sceneFacts`). */
  facts: SceneFacts;
}

/** The manifest line of a scene for a stage (no file is read or written). */
export function manifestRecord(scene: Scene, stage: 1): Stage1Record;
export function manifestRecord(scene: Scene, stage: 2): Stage2Record;
export function manifestRecord(scene: Scene, stage: Stage): Stage1Record | Stage2Record;
export function manifestRecord(scene: Scene, stage: Stage): Stage1Record | Stage2Record {
  const common = { id: scene.id, media: `media/${sceneFileName(scene)}`, kind: scene.kind };
  const facts = sceneFacts(scene);
  return stage === 1 ? { ...common, caption: caption(scene), facts } : { ...common, conversation: conversation(scene), facts };
}

/** Options of {@link writeDataset}. */
export interface WriteDatasetOptions {
  /** The dataset folder (created if missing). */
  out: string;
  /** Number of samples (indices 0 … count−1). */
  count: number;
  /** Dataset seed, an integer in [0, 2³²). */
  seed: number;
  split: Split;
  /** Manifests to write; default both. */
  stages?: readonly Stage[];
  /** ffmpeg processes at once; default the number of CPUs. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each sample: samples done so far (written or kept), and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link writeDataset} did. */
export interface WriteDatasetResult {
  /** Media files written by this call. */
  written: number;
  /** Media files that were already there and kept. */
  kept: number;
  /** The manifest files, absolute. */
  manifests: string[];
}

/**
 * Writes (or completes) a dataset folder: the media of samples 0 … count−1 of (split, seed) and
 * their manifests (see the module description). `train` and `heldout` media come from the
 * TypeScript renderer through ffmpeg's encoders, `other-tool` media from ffmpeg's filters.
 *
 * @example
 * ```ts
 * await writeDataset({ out: 'data/train', count: 1000, seed: 1, split: 'train' });
 * ```
 * @throws VideoLlamaError `INVALID_ARGUMENT` (bad option, or a folder holding another split or seed),
 *   `WRITE_FAILED`, `FFMPEG_NOT_FOUND`, `ABORTED`.
 */
export async function writeDataset(options: WriteDatasetOptions): Promise<WriteDatasetResult> {
  const { out, count, seed, split, stages = [1, 2], concurrency = os.availableParallelism(), signal, onProgress } = options;
  if (typeof out !== 'string' || out === '') throw invalidArgument('out', 'a folder path', out);
  if (!Number.isSafeInteger(count) || count < 1) throw invalidArgument('count', 'an integer ≥ 1', count);
  validateSeed(seed);
  validateSplit(split);
  if (!Array.isArray(stages) || stages.length === 0 || !stages.every((s) => s === 1 || s === 2)) {
    throw invalidArgument('stages', 'a non-empty array of 1 and 2', stages);
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw invalidArgument('concurrency', 'an integer ≥ 1', concurrency);

  await claimFolder(out, split, seed);
  const scenes = Array.from({ length: count }, (_, index) => makeScene(split, seed, index));
  let next = 0;
  let done = 0;
  let written = 0;
  const worker = async (): Promise<void> => {
    while (next < scenes.length) {
      const scene = scenes[next++]!;
      throwIfAborted(signal, 'writing the dataset');
      if (await writeMedia(scene, out, signal)) written++;
      onProgress?.(++done, scenes.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));

  const manifests: string[] = [];
  for (const stage of [...new Set(stages)].sort()) {
    const file = path.resolve(out, `stage${stage}.jsonl`);
    const lines = scenes.map((scene) => `${JSON.stringify(manifestRecord(scene, stage))}\n`).join('');
    await writeAtomically(file, (partial) => fs.writeFile(partial, lines));
    manifests.push(file);
  }
  return { written, kept: count - written, manifests };
}

/** Creates the folder and its `dataset.json`, or checks that an existing one is for the same split and seed. */
async function claimFolder(out: string, split: Split, seed: number): Promise<void> {
  const identity = { ...FORMAT, split, seed };
  const file = path.join(out, 'dataset.json');
  await fs.mkdir(path.join(out, 'media'), { recursive: true }).catch((error: Error) => {
    throw new VideoLlamaError('WRITE_FAILED', `cannot create the dataset folder ${out}: ${error.message}`, { out }, { cause: error });
  });
  const existing = await fs.readFile(file, 'utf8').then((text) => JSON.parse(text) as Record<string, unknown>, () => undefined);
  if (existing === undefined) {
    await fs.writeFile(file, `${JSON.stringify(identity)}\n`);
  } else if (existing.split !== split || existing.seed !== seed || existing.format !== FORMAT.format) {
    throw new VideoLlamaError('INVALID_ARGUMENT',
      `${out} holds ${String(existing.format)} split ${String(existing.split)} seed ${String(existing.seed)}, not split ${split} seed ${seed}: use another folder`,
      { name: 'out', expected: { split, seed }, found: existing });
  }
}

/**
 * Writes a scene's media to `out/media/<file>` (the folder must exist) unless a non-empty file is
 * already there, drawn by the other tool for the `other-tool` split; true when it wrote one.
 */
export async function writeMedia(scene: Scene, out: string, signal?: AbortSignal): Promise<boolean> {
  const file = path.join(out, 'media', sceneFileName(scene));
  const size = await fs.stat(file).then((stat) => stat.size, () => 0);
  if (size > 0) return false;
  await (scene.split === 'other-tool' ? writeOtherToolFile(scene, file, { signal }) : writeSceneFile(scene, file, { signal }));
  return true;
}
