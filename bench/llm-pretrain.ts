/**
 * CPU seconds per pretraining step (256 tokens) of candidate demo-LLM sizes, in one process on one corpus:
 *   vite-node bench/llm-pretrain.ts [threads (1)]
 * Steps 3–12 of each (the first two also build the graphs); CPU time is the steady figure on a shared machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { worldDocuments } from '../src/train/llm-corpus.js';
import { pretrainLlm, type LlmTopology } from '../src/train/llm-pretrain.js';

const threads = Number(process.argv[2] ?? 1);
const documents = worldDocuments(1, 200);
const sizes: LlmTopology[] = [
  { embeddingWidth: 192, layers: 4, heads: 4, feedForwardWidth: 512 },
  { embeddingWidth: 256, layers: 4, heads: 4, feedForwardWidth: 704 },
  { embeddingWidth: 320, layers: 5, heads: 5, feedForwardWidth: 864 },
];
for (const model of sizes) {
  const out = mkdtempSync(path.join(tmpdir(), 'llm-pretrain-bench-'));
  const cpu: number[] = [];
  const wall: number[] = [];
  await pretrainLlm({ out, steps: 12, model, corpus: { documents }, threads, checkpointEvery: 100 }, {
    onProgress: () => {
      const usage = process.cpuUsage();
      cpu.push((usage.user + usage.system) / 1e6);
      wall.push(performance.now() / 1e3);
    },
  });
  const steps = cpu.length - 2;
  const cpuPerStep = (cpu.at(-1)! - cpu[1]!) / steps;
  console.log(JSON.stringify({ model, cpuSecondsPerStep: cpuPerStep, wallSecondsPerStep: (wall.at(-1)! - wall[1]!) / steps, tokensPerCpuSecond: 256 / cpuPerStep }));
  rmSync(out, { recursive: true, force: true });
}
