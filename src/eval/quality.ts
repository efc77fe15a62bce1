/**
 * The end-to-end quality check of a trained model: a few fixed held-out world clips (with picture
 * and sound), asked greedily about their colour, shape, motion and sound, each reply scored by the
 * world's `answerMatches`. `video-llama eval --quality` prints it; the demo model's end-to-end test
 * asks it of the shipped package (docs/demo-model.md).
 * @module
 */
import type { QaAttribute } from '../world/language.js';
import { makeScene, type Scene } from '../world/scene.js';
import type { ChatAsker } from './chat-asker.js';
import { evaluateScenes, scoreQuestions, type EvalReport } from './evaluate.js';

/** The attributes the quality check asks about. */
export const QUALITY_ATTRIBUTES: readonly QaAttribute[] = ['colour', 'shape', 'motion', 'sound'];

/** The world split and seed the check's clips come from: held out, so never trained on (training uses the `train` split). */
export const QUALITY_SOURCE = { split: 'heldout', seed: 13 } as const;

/** Clips in the check. */
export const QUALITY_CLIPS = 8;

/** The check's clips: the first {@link QUALITY_CLIPS} videos with sound of {@link QUALITY_SOURCE}, so that every attribute is asked of each. */
export function qualityScenes(): Scene[] {
  const scenes: Scene[] = [];
  for (let index = 0; scenes.length < QUALITY_CLIPS; index++) {
    const scene = makeScene(QUALITY_SOURCE.split, QUALITY_SOURCE.seed, index);
    if (scene.kind === 'video') scenes.push(scene);
  }
  return scenes;
}

/** Options of {@link checkQuality}. */
export interface CheckQualityOptions {
  /** Folder the clips are rendered into (kept, and reused when there). */
  dir: string;
  /** Cancels between clips (ABORTED). */
  signal?: AbortSignal;
}

/**
 * Asks `asker`'s model about the check's clips (`qualityScenes()`: the first 8 videos with sound of
 * the held-out split, seed 13) about {@link QUALITY_ATTRIBUTES}
 * and scores the replies: a report whose split is `quality`, for {@link formatEvalTable} or a test's
 * thresholds.
 *
 * @example
 * ```ts
 * const asker = chatAsker(llama);
 * const report = await checkQuality(asker, { dir: 'quality-clips' });
 * console.log(report.attributes.colour?.accuracy);
 * ```
 */
export async function checkQuality(asker: ChatAsker, options: CheckQualityOptions): Promise<EvalReport> {
  const scenes = qualityScenes();
  const questions = await evaluateScenes(scenes, asker.ask, {
    dir: options.dir, attributes: QUALITY_ATTRIBUTES, concurrency: asker.concurrency, signal: options.signal,
  });
  return { split: 'quality', world: options.dir, samples: scenes.length, attributes: scoreQuestions(questions), questions };
}
