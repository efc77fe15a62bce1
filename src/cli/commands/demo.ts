/**
 * `video-llama demo`: the whole pipeline — ffmpeg decoding of a video and its sound, the vision
 * and audio encoders, streamed chat answers. With the trained demo model in the package
 * (`models/demo/`, a model package: docs/demo-model.md) it makes a world clip the model has never
 * seen, says what is in it, asks the model the world's questions about it and marks each answer.
 * Without it, it runs generated tiny models with RANDOM weights: everything runs end to end, and the
 * answer is nonsense.
 * @internal
 * @module
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';

import { cachedRandomProjector, tinyProjector } from '../../dev/random-projector.js';
import { cachedTinyLlama } from '../../dev/tiny-llama.js';
import { questionMedia } from '../../eval/chat-asker.js';
import { demoModelDir, hasModelPackage, readModelPackage, type ModelPackage } from '../../eval/model-package.js';
import { decodeFailure, runFfmpeg } from '../../media/ffmpeg.js';
import { manifestRecord, writeMedia } from '../../world/dataset.js';
import { answerMatches, caption, type QaAttribute } from '../../world/language.js';
import { makeScene, type Scene } from '../../world/scene.js';
import { invalidArgument } from '../../errors.js';
import type { Command, ParsedArgs } from '../command.js';
import { modelOptions, optionalNumber, optionalString, printStats } from '../options.js';
import { Progress } from '../progress.js';
import { describeMedia, encodeForChat, loadWithProgress } from './describe.js';

/** Width of the tiny random LLM and of the projector's output. */
const DEMO_WIDTH = 96;

/**
 * Where the trained demo's clips come from: the world's held-out split (training uses the `train`
 * split) with a seed of its own, so no clip shown was trained on.
 */
export const DEMO_CLIP_SOURCE = { split: 'heldout', seed: 2027 } as const;

/** What the trained demo model knows and does not, said after its answers (and in docs/demo-model.md). */
export const DEMO_MODEL_SCOPE = [
  'What this demo model knows: one small generated world. Clips of one to three circles, squares or',
  'triangles of one colour (red, green, blue, yellow or white) on a dark background, moving left, right,',
  'up or down or staying still, with a low or high tone, one to three beeps, or silence; and short',
  'questions about their colour, shape, number, motion, sound, pitch and beeps.',
  'What it does not know: anything else. Real videos, people, things, speech and music, and any other',
  'question, are outside what it was trained on: it answers them in the words of its world, confidently',
  'and wrongly. It is small (under 25 MB) and trained on two CPU cores; for real answers, convert the released',
  'Video-LLaMA weights (docs/converting.md).',
].join('\n');

/** A 4-second test pattern with a rising tone: something to look at and to listen to. */
async function demoClip(dir: string): Promise<string> {
  const file = path.join(dir, 'demo-clip.mp4');
  try {
    await fs.access(file);
    return file;
  } catch {
    const partial = `${file}.${process.pid}.partial.mp4`;
    const result = await runFfmpeg([
      '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi',
      '-i', 'aevalsrc=0.4*sin(2*PI*(200+100*t)*t):s=44100:d=4', '-t', '4', '-pix_fmt', 'yuv420p', '-shortest', partial,
    ], { what: 'making the demo clip' });
    if (result.code !== 0) throw decodeFailure('making the demo clip', partial, result);
    await fs.rename(partial, file);
    return file;
  }
}

/** The first clip with picture and sound at or after `index` of {@link DEMO_CLIP_SOURCE}. */
export function demoScene(index: number): Scene {
  for (let i = index; ; i++) {
    const scene = makeScene(DEMO_CLIP_SOURCE.split, DEMO_CLIP_SOURCE.seed, i);
    if (scene.kind === 'video') return scene;
  }
}

/** The trained model: a new world clip, what is in it, the model's answer to each of the world's questions about it. */
async function trainedDemo(pkg: ModelPackage, args: ParsedArgs, cache: string, log: (line: string) => void): Promise<void> {
  const chosen = optionalNumber(args, 'scene', { integer: true, min: 0 });
  const scene = demoScene(chosen ?? Math.floor(Math.random() * 1_000_000));
  log(`video-llama demo: ${pkg.manifest.name} (${path.relative(process.cwd(), pkg.dir) || '.'}), trained on ${pkg.manifest.training.data}.`);
  const clips = path.join(cache, 'demo-clips');
  await fs.mkdir(path.join(clips, 'media'), { recursive: true });
  await writeMedia(scene, clips);
  const record = manifestRecord(scene, 2);
  const file = path.join(clips, record.media);
  process.stdout.write(`A clip the model has never seen: held-out scene ${scene.index} (again: --scene ${scene.index}), ${file}\n`);
  process.stdout.write(`What is in it: ${caption(scene)}\n\n`);
  const progress = new Progress();
  // One thread unless told: the demo model is so small that ggml's threads mostly wait for each other
  // (measured on the shared 2-core machine: 8 s with one thread, 1 min 49 s with two).
  const threads = optionalNumber(args, 'threads', { integer: true, min: 1 }) ?? 1;
  const llama = await loadWithProgress({ llm: pkg.llm, projector: pkg.projector, threads }, progress);
  try {
    const media = await encodeForChat(llama, file, { progress });
    progress.done(`encoded ${media.map((m) => m.kind).join(' + ')}`);
    const maxTokens = optionalNumber(args, 'max-tokens', { integer: true, min: 1 }) ?? 40;
    let right = 0;
    for (const turn of record.conversation) {
      process.stdout.write(`Q: ${turn.q}\nA: `);
      const chat = llama.createChat({ template: pkg.manifest.template });
      let reply = '';
      try {
        // Each question with the media of the branch that perceives it: the prompt stage 2 trained on.
        for await (const piece of chat.stream({ text: turn.q, media: questionMedia(media, turn, 'per-branch') }, { temperature: 0, maxTokens })) {
          reply += piece;
          process.stdout.write(piece);
        }
      } finally {
        await chat.dispose();
      }
      const correct = answerMatches(turn.attribute as QaAttribute, turn.value, reply);
      if (correct) right++;
      process.stdout.write(correct ? '   [right]\n' : `   [wrong: ${turn.a}]\n`);
      if (args.values.stats === true) printStats(chat.lastStats);
    }
    process.stdout.write(`\n${right} of ${record.conversation.length} answers right.\n\n${DEMO_MODEL_SCOPE}\n`);
  } finally {
    await llama.dispose();
  }
}

/** No trained model: generated tiny models with random weights, a test pattern, one streamed (nonsense) answer. */
async function randomDemo(args: ParsedArgs, cache: string, log: (line: string) => void): Promise<void> {
  log('video-llama demo: the models below are GENERATED WITH RANDOM WEIGHTS, so the answer is nonsense.');
  log('It runs every stage for real: ffmpeg decoding, EVA-ViT/Q-Former and ImageBind/Q-Former graphs,');
  log('soft prompts in the LLaMA-2 template, streamed sampling. Convert the released weights for real answers.');
  const started = performance.now();
  const [llm, projector, clip] = await Promise.all([
    cachedTinyLlama(cache, { embeddingWidth: DEMO_WIDTH }),
    cachedRandomProjector(cache, tinyProjector(DEMO_WIDTH)),
    demoClip(cache),
  ]);
  log(`models and clip ready in ${cache} (${((performance.now() - started) / 1000).toFixed(2)} s)`);
  const progress = new Progress();
  const llama = await loadWithProgress({ llm, projector, ...modelOptions(args) }, progress);
  try {
    const { stats } = await describeMedia(llama, clip, {
      template: 'llama2',
      generate: { maxTokens: optionalNumber(args, 'max-tokens', { integer: true }) ?? 40, temperature: 0.8, seed: 1 },
      write: (piece) => process.stdout.write(piece),
      progress,
    });
    process.stdout.write('\n');
    printStats(stats);
  } finally {
    await llama.dispose();
  }
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Ask the trained demo model about a world clip it has never seen (or, without it, run random-weight tiny models)',
  options: {
    model: { type: 'string', value: '<dir>', description: 'A model package folder (default: $VIDEO_LLAMA_DEMO_MODEL, else the package\'s models/demo)' },
    scene: { type: 'string', value: '<n>', description: 'Which held-out clip to show (default: a random one; the demo prints its number)' },
    cache: { type: 'string', value: '<dir>', description: 'Where generated models and clips are kept (default: $VIDEO_LLAMA_CACHE or ~/.cache/video-llama)' },
    'max-tokens': { type: 'string', value: '<n>', api: 'options.maxTokens', description: 'Longest answer in tokens (default 40)' },
    threads: { type: 'string', value: '<n>', api: 'options.threads', description: 'CPU threads (default: 1 for the trained demo model, all cores for the random-weight run)' },
    stats: { type: 'boolean', description: 'Print token counts and timings after each answer (to stderr)' },
  },
  async run(args) {
    if (args.positionals.length > 0) throw invalidArgument('arguments', 'options only', args.positionals.join(' '));
    const cache = optionalString(args, 'cache') ?? process.env.VIDEO_LLAMA_CACHE ?? path.join(os.homedir(), '.cache', 'video-llama');
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    const explicit = optionalString(args, 'model');
    const dir = explicit ?? demoModelDir();
    // A folder named on the command line must hold a package; the default one is optional.
    if (explicit !== undefined || await hasModelPackage(dir)) {
      await trainedDemo(await readModelPackage(dir), args, cache, log);
      return;
    }
    log(`(No trained demo model in ${dir}.)`);
    await randomDemo(args, cache, log);
  },
};
