/**
 * `video-llama eval` at the scale with the demo model's sizes and random weights: the demo
 * projector (`demoProjector()`) and a 256-wide, 4-block LLaMA with the world vocabulary and the
 * LLaMA-2 chat template, as the demo LLM's pretraining starts from. Random weights never say EOS
 * (the tiny LLaMA's EOS row is zero), so every reply runs to `--max-tokens`: the worst case.
 *
 *   npx vite-node bench/eval-scale.ts -- --world <heldout dir> --world <other-tool dir> [--compare 20] [--parallel 2] [--max-tokens 64] [--threads 2] [--compare-only]
 *
 * Make the folders first: `video-llama world --out D --count 200 --seed 1 --split heldout --stage 2`
 * (and `--split other-tool`). It prints, in one process: (1) on the first `--compare` samples of the
 * first folder, the old way (one chat at a time, each question on a fresh sequence) against the
 * parallel asker, same models; (2) every folder with the parallel asker and an empty on-disk encode
 * cache; (3) the first `--compare` samples of each folder again, the cache now full (nothing encoded). Each with wall and CPU seconds (the
 * steadier figure on a shared machine). Not part of `npm test`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { EncodeCache } from '../src/cache/encode-cache.js';
import { cachedRandomProjector, demoProjector } from '../src/dev/random-projector.js';
import { cachedTinyLlama } from '../src/dev/tiny-llama.js';
import { chatAsker } from '../src/eval/chat-asker.js';
import { evaluateWorlds, formatEvalTable, type EvalReport } from '../src/eval/evaluate.js';
import { DEFAULT_TOPOLOGY } from '../src/train/llm-pretrain.js';
import { LLAMA2_CHAT_TEMPLATE, worldPieces } from '../src/train/llm-corpus.js';
import type { AskSample } from '../src/eval/chat-asker.js';
import { VideoLlama } from '../src/video-llama.js';

const { values: args } = parseArgs({
  options: {
    world: { type: 'string', multiple: true },
    compare: { type: 'string', default: '20' },
    parallel: { type: 'string', default: '2' },
    'max-tokens': { type: 'string', default: '64' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    'compare-only': { type: 'boolean', default: false },
  },
});
const worlds = args.world ?? [];
if (worlds.length === 0) throw new Error('usage: vite-node bench/eval-scale.ts -- --world <dir> [--world <dir>] [--compare n] [--parallel n] [--max-tokens n]');
const parallel = Number(args.parallel);
const maxTokens = Number(args['max-tokens']);
const threads = Number(args.threads);
const cacheRoot = path.resolve('.cache');

const [llm, projector] = await Promise.all([
  cachedTinyLlama(cacheRoot, { ...DEFAULT_TOPOLOGY, pieces: worldPieces(), chatTemplate: LLAMA2_CHAT_TEMPLATE, name: 'demo-sized LLM (random weights)' }),
  cachedRandomProjector(cacheRoot, demoProjector()),
]);
console.log(`machine: ${os.cpus()[0]?.model}, ${os.availableParallelism()} hardware threads, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`models: ${path.basename(llm)} (${(fs.statSync(llm).size / 1e6).toFixed(1)} MB), ${path.basename(projector)} (${(fs.statSync(projector).size / 1e6).toFixed(1)} MB)`);

/** CPU seconds (user + system, all threads) of this process since `from`. */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
}

/** Runs `evaluateWorlds` with a fresh load of the models; returns the seconds and the reports. */
async function timed(what: string, sequences: number, ask: (llama: VideoLlama) => { ask: AskSample; concurrency: number; dispose?: () => Promise<void> },
  folders: string[], limit?: number, cacheDir?: string): Promise<{ seconds: number; cpu: number; reports: EvalReport[] }> {
  const llama = await VideoLlama.load({ llm, projector, threads, sequences, contextSize: sequences * 512, cache: new EncodeCache({ cacheDir }) });
  const asker = ask(llama);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const reports = await evaluateWorlds(folders, asker.ask, {
    limit, concurrency: asker.concurrency,
    onProgress: (done, total, world) => {
      if (done % 25 === 0) console.log(`  ${world}: ${done}/${total} (${((performance.now() - started) / 1000).toFixed(0)} s, ${cpuSeconds(cpu).toFixed(0)} CPU s)`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const cpuUsed = cpuSeconds(cpu);
  await asker.dispose?.();
  await llama.dispose();
  const questions = reports.reduce((n, r) => n + r.questions.length, 0);
  const samples = reports.reduce((n, r) => n + r.samples, 0);
  console.log(`${what}: ${samples} samples, ${questions} questions in ${seconds.toFixed(1)} s, ${cpuUsed.toFixed(1)} CPU s (${(cpuUsed / samples).toFixed(2)} CPU s a sample)`);
  return { seconds, cpu: cpuUsed, reports };
}

/** The eval command before this change: each question in a new chat on a fresh sequence (the whole prompt evaluated again), one at a time. */
function oneChatAtATime(llama: VideoLlama): { ask: AskSample; concurrency: number } {
  return {
    concurrency: 1,
    async ask(media, questions) {
      const embeddings = await llama.encodeMedia(media);
      const replies: string[] = [];
      for (const question of questions) {
        const chat = llama.createChat();
        replies.push(await chat.send({ text: question.q, media: embeddings }, { temperature: 0, maxTokens }));
        await chat.dispose();
      }
      return replies;
    },
  };
}

const compare = Number(args.compare);
if (compare > 0) {
  const before = await timed(`one chat at a time (first ${compare} of ${worlds[0]})`, 1, oneChatAtATime, [worlds[0]!], compare);
  const after = await timed(`parallel asker, ${parallel} sequences (same samples)`, parallel, (llama) => chatAsker(llama, { maxTokens, media: 'together' }), [worlds[0]!], compare);
  console.log(`ratio: ${(before.seconds / after.seconds).toFixed(2)}x faster (wall), ${(before.cpu / after.cpu).toFixed(2)}x (CPU)`);
}
if (args['compare-only']) process.exit(0);
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-scale-cache-'));
const cold = await timed(`all folders, parallel ${parallel}, empty disk cache`, parallel, (llama) => chatAsker(llama, { maxTokens }), worlds, undefined, cacheDir);
await timed(`first ${compare} of each folder, parallel ${parallel}, disk cache full`, parallel, (llama) => chatAsker(llama, { maxTokens }), worlds, compare, cacheDir);
console.log(formatEvalTable(cold.reports));
fs.rmSync(cacheDir, { recursive: true, force: true });
