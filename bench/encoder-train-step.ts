/**
 * Seconds per optimizer step of the branch trainer at the demo model's sizes (`demoProjector()`,
 * the demo LLM's 256/4/4/704 topology and 1,049-token vocabulary), encoders frozen (cached
 * features) against unfrozen (media through the whole branch), in one process:
 *   vite-node bench/encoder-train-step.ts [threads (1)] [steps (4)]
 * Video: batches of 4 examples of 8 frames at 112²; audio: batches of 4 examples of 8 clips.
 * Each example is a stage-1 prompt (BOS, the branch's media positions, a 16-token caption).
 * The first step (graph building, first-touch allocation) is not counted; CPU seconds are the
 * steadier figure on a shared machine. Also times the forward pass alone (`loss`), and prints the
 * process's peak resident memory so far (the runs go from the smallest graph to the largest).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { normalSource, randomMatrix } from '../src/dev/random.js';
import { cachedRandomProjector, demoProjector } from '../src/dev/random-projector.js';
import { cachedTinyLlama } from '../src/dev/tiny-llama.js';
import { IGNORE_LABEL, type TrainingBranch, type TrainingExample, type UnfreezePart } from '../src/train/example.js';
import { Trainer } from '../src/train/trainer.js';

const threads = Number(process.argv[2] ?? 1);
const steps = Number(process.argv[3] ?? 4);
const cache = mkdtempSync(path.join(tmpdir(), 'encoder-train-bench-'));
const llm = await cachedTinyLlama(cache, { embeddingWidth: 256, layers: 4, heads: 4, feedForwardWidth: 704, vocabularySize: 1049 });
const projector = await cachedRandomProjector(cache, demoProjector(256));

function examples(trainer: Trainer, branch: TrainingBranch): TrainingExample[] {
  const units = 8;
  const caption = Array.from({ length: 16 }, (_, i) => 300 + i);
  const tokens = Int32Array.of(1, ...new Array<number>(trainer.queries).fill(0), ...caption);
  const labels = new Int32Array(tokens.length).fill(IGNORE_LABEL);
  labels.set(caption, tokens.length - caption.length);
  return [1, 2, 3, 4].map((seed) => ({
    branch, input: trainer.input, units, tokens, mediaOffset: 1, labels,
    features: randomMatrix(normalSource(seed), units * trainer.unitRows * trainer.featureWidth, 1),
  }));
}

const cpuSeconds = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

async function measure(branch: TrainingBranch, unfreeze: UnfreezePart[]): Promise<void> {
  const trainer = await Trainer.create({ llm, projector, branch, unfreeze, threads });
  try {
    const batch = examples(trainer, branch);
    const run = { epochs: 1, stepsPerEpoch: steps + 1, batchSize: 4, warmupSteps: 0, dropout: 0.1 };
    await trainer.train(batch, { ...run, steps: 1 });
    const [cpu0, wall0] = [cpuSeconds(), performance.now()];
    await trainer.train(batch, run);
    const [cpu1, wall1] = [cpuSeconds(), performance.now()];
    await trainer.loss(batch);
    const [cpu2, wall2] = [cpuSeconds(), performance.now()];
    console.log(JSON.stringify({
      branch, unfreeze, trainable: trainer.tensorNames.length,
      cpuSecondsPerStep: +((cpu1 - cpu0) / steps).toFixed(3), wallSecondsPerStep: +((wall1 - wall0) / 1000 / steps).toFixed(3),
      forwardCpuSeconds: +(cpu2 - cpu1).toFixed(3), forwardWallSeconds: +((wall2 - wall1) / 1000).toFixed(3),
      peakRssMiBSoFar: Math.round(process.resourceUsage().maxRSS / 1024),
    }));
  } finally {
    await trainer.dispose();
  }
}

await measure('video', []);
await measure('video', ['encoder']);
await measure('video', ['encoder', 'qformer']);
await measure('audio', []);
await measure('audio', ['encoder']);
