/**
 * `video-llama world --out DIR --count N --seed S --split train|heldout|other-tool [--stage 1|2]`:
 * write a dataset of the world (media + manifests) for training and evaluation.
 * @internal
 * @module
 */
import { invalidArgument } from '../../errors.js';
import { type Stage, writeDataset } from '../../world/dataset.js';
import { type Split, SPLITS } from '../../world/scene.js';
import { requireString, type Command } from '../command.js';
import { optionalNumber, optionalString } from '../options.js';

/** `video-llama world --out data/train --count 1000 --seed 1 --split train`. */
export const worldCommand: Command = {
  name: 'world',
  summary: 'Write a dataset of short clips, images and sounds with known content, captions and questions',
  options: {
    out: { type: 'string', value: '<dir>', description: 'Dataset folder (required; resumes a partial one)' },
    count: { type: 'string', value: '<n>', description: 'Number of samples (required)' },
    seed: { type: 'string', value: '<s>', description: 'Dataset seed, 0 to 4294967295 (default 1)' },
    split: { type: 'string', value: SPLITS.join('|'), description: 'Which family of samples (default train)' },
    stage: { type: 'string', value: '1|2', description: 'Write only this stage\'s manifest (default both)' },
    concurrency: { type: 'string', value: '<n>', description: 'ffmpeg processes at once (default: CPU count)' },
  },
  async run(args) {
    if (args.positionals.length > 0) throw invalidArgument('arguments', 'options only', args.positionals.join(' '));
    const split = optionalString(args, 'split') ?? 'train';
    if (!SPLITS.includes(split as Split)) throw invalidArgument('--split', `one of ${SPLITS.join(', ')}`, split);
    const stage = optionalString(args, 'stage');
    if (stage !== undefined && stage !== '1' && stage !== '2') throw invalidArgument('--stage', '1 or 2', stage);
    const out = requireString(args, 'out');
    const count = optionalNumber(args, 'count', { integer: true, min: 1 });
    if (count === undefined) throw invalidArgument('--count', 'an integer >= 1', undefined);
    const started = performance.now();
    let lastReport = 0;
    const result = await writeDataset({
      out, count, split: split as Split,
      seed: optionalNumber(args, 'seed', { integer: true }) ?? 1,
      stages: stage === undefined ? [1, 2] : [Number(stage) as Stage],
      concurrency: optionalNumber(args, 'concurrency', { integer: true, min: 1 }),
      onProgress: (done, total) => {
        const now = performance.now();
        if (done === total || now - lastReport > 2000) {
          lastReport = now;
          process.stderr.write(`world: ${done}/${total} samples\n`);
        }
      },
    });
    const seconds = (performance.now() - started) / 1000;
    console.log(`wrote ${result.written} media files (kept ${result.kept}) in ${seconds.toFixed(1)} s ` +
      `(${(result.written / seconds).toFixed(1)} files/s)`);
    for (const manifest of result.manifests) console.log(manifest);
  },
};
