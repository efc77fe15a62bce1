/**
 * `video-llama demo`: the whole pipeline — ffmpeg decoding of a video and its sound, the vision
 * and audio encoders, a streamed chat answer — on generated tiny models with RANDOM weights.
 * It shows that everything runs end to end, and how fast; the answer itself is nonsense.
 * @internal
 * @module
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';

import { cachedRandomProjector, tinyProjector } from '../../dev/random-projector.js';
import { cachedTinyLlama } from '../../dev/tiny-llama.js';
import { decodeFailure, runFfmpeg } from '../../media/ffmpeg.js';
import type { Command } from '../command.js';
import { modelOptions, optionalNumber, optionalString, printStats } from '../options.js';
import { Progress } from '../progress.js';
import { describeMedia, loadWithProgress } from './describe.js';

/** Width of the tiny LLM and of the projector's output. */
const DEMO_WIDTH = 96;

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

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the whole pipeline on generated tiny models with random weights (answers are nonsense)',
  options: {
    cache: { type: 'string', value: '<dir>', description: 'Where the generated models and clip are kept (default: $VIDEO_LLAMA_CACHE or ~/.cache/video-llama)' },
    'max-tokens': { type: 'string', value: '<n>', api: 'options.maxTokens', description: 'Length of the answer in tokens (default 40)' },
    threads: { type: 'string', value: '<n>', api: 'options.threads', description: 'CPU threads (default: all cores)' },
  },
  async run(args) {
    const cache = optionalString(args, 'cache') ?? process.env.VIDEO_LLAMA_CACHE ?? path.join(os.homedir(), '.cache', 'video-llama');
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
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
  },
};
