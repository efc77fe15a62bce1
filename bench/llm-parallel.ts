/**
 * Parallel chats (issue 9): aggregate decode tokens/s and time to first token with 1, 2, 4 and 8
 * chats generating at once, through our library (one context, a sequence per chat, continuous
 * batching) and through node-llama-cpp (one context with as many sequences, its own batching),
 * on the same GGUF, in the same process, the two alternating. For each model: the roofline of a
 * decode step (bytes and FLOP against the memory bandwidth and product rate measured here), and,
 * in a child process, peak RSS with 8 chats against weights + KV cache + compute buffers.
 *
 *   npm run bench:llm-parallel -- [--models small,7b|1b] [--chats 1,2,4,8] [--reps 3] [--words 24]
 *                                 [--generate 16] [--threads N] [--no-memory]
 *
 * Models (random weights, generated once into `.cache/`): `7b` and `1b`, the LLM bench's q4_K
 * files of those shapes (`npm run bench:llm -- --shape`); `small`, a ~270M-parameter LLaMA in
 * f16 (1024 wide, 16 blocks), memory-bound like the others but small enough for 8 chats'
 * products to fit the machine. Not part of `npm test`.
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';

import { userMessage, VICUNA_TEMPLATE } from '../src/chat/templates.js';
import { cachedTinyLlama, type TinyLlamaOptions } from '../src/dev/tiny-llama.js';
import { Chat, LlmModel, type LlmContext } from '../src/index.js';
import { CACHE_DIR, fmt, integers, machine, median, mib, percentile, q4kModel, repoRoot, rss, runChild, SHAPES } from './llm-shared.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'small,7b' },
    chats: { type: 'string', default: '1,2,4,8' },
    reps: { type: 'string', default: '3' },
    words: { type: 'string', default: '24' },
    generate: { type: 'string', default: '16' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    'no-memory': { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});

const MODELS: Record<string, TinyLlamaOptions> = {
  '7b': q4kModel(SHAPES['7b']!),
  '1b': q4kModel(SHAPES['1b']!),
  small: {
    embeddingWidth: 1024, layers: 16, heads: 16, feedForwardWidth: 2816, vocabularySize: 32000,
    weightType: 'f16', tokenEmbeddingType: 'f16', outputType: 'f16', pooledWeights: true,
  },
};
const CHATS = args.chats!.split(',').map(Number);
const REPS = Number(args.reps);
const WORDS = Number(args.words);
const GENERATE = Number(args.generate);
const THREADS = Number(args.threads);
const BATCH = 512;
/** KV cells per chat: its prompt (~WORDS + 15 positions with the template) and reply, with room. */
const CELLS_PER_CHAT = 256;
/** Tokens of the prefill that measures the product rate. */
const PREFILL = 128;
/** Bytes per weight of the GGUF types used here. */
const BYTES_PER_WEIGHT: Record<string, number> = { f16: 2, q4_K: 144 / 256, q6_K: 210 / 256 };

// ---------------------------------------------------------------------------------------------
// What one chat did in a run

interface ChatTiming {
  /** Milliseconds from the start of the run to the chat's first generated token. */
  firstMs: number;
  /** Milliseconds from the start of the run to the chat's last token. */
  endMs: number;
  tokens: number;
}

/**
 * Aggregate decode rate: the tokens the chats generated after their first, over the span from
 * the first chat's first token to the last chat's last. (A sum of per-chat rates would count
 * chats that decode one after another as if they decoded together.)
 */
function aggregateRate(chats: readonly ChatTiming[]): number {
  const tokens = chats.reduce((sum, c) => sum + Math.max(0, c.tokens - 1), 0);
  const span = Math.max(...chats.map((c) => c.endMs)) - Math.min(...chats.map((c) => c.firstMs));
  return (tokens * 1000) / span;
}

/** The message of chat `i` in repetition `rep`: `WORDS` words the tiny vocabulary holds whole. */
function message(rep: number, i: number): string {
  const words = 'the of and to in is it you that he was for on are with as his they be at one have this from'.split(' ');
  const next = integers(7919 * (rep + 1) + i, 0, words.length);
  return Array.from({ length: WORDS }, () => words[next()]).join(' ');
}

interface Engine {
  name: 'ours' | 'node-llama-cpp';
  /** Runs `n` chats at once (repetition `rep`); each chat's timing. */
  run(n: number, rep: number): Promise<ChatTiming[]>;
  dispose(): Promise<void>;
}

/** Our library: one context of `n` sequences (CELLS_PER_CHAT cells each, shared), a Chat per sequence. */
async function ourEngine(file: string): Promise<Engine & { model: LlmModel }> {
  const model = await LlmModel.load(file, { gpu: false });
  const contexts = new Map<number, LlmContext>();
  return {
    name: 'ours',
    model,
    async run(n, rep) {
      if (!contexts.has(n)) contexts.set(n, await model.createContext({ contextSize: n * CELLS_PER_CHAT, sequences: n, threads: THREADS, batchSize: BATCH }));
      const context = contexts.get(n)!;
      const started = performance.now();
      return Promise.all(Array.from({ length: n }, async (_, i) => {
        const chat = new Chat(context.getSequence(), { template: 'vicuna', system: '' });
        await chat.send(message(rep, i), { temperature: 0, maxTokens: GENERATE });
        const stats = chat.lastStats!;
        const endMs = performance.now() - started;
        await chat.dispose();
        return { firstMs: stats.firstTokenMs, endMs, tokens: stats.generatedTokens };
      }));
    },
    async dispose() {
      await model.dispose();
    },
  };
}

/** node-llama-cpp: one context of `n` sequences (`contextSize` is per sequence there), `sequence.evaluate` of the same prompt tokens. */
async function peerEngine(file: string, promptTokens: (rep: number, i: number) => number[]): Promise<Engine> {
  const llama: Llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  // Read rather than mapped, as ours loads it.
  const model: LlamaModel = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: false });
  const contexts = new Map<number, { context: LlamaContext; sequences: LlamaContextSequence[] }>();
  return {
    name: 'node-llama-cpp',
    async run(n, rep) {
      if (!contexts.has(n)) {
        const context = await model.createContext({ contextSize: CELLS_PER_CHAT, sequences: n, threads: THREADS, batchSize: BATCH, flashAttention: 'auto' as never });
        contexts.set(n, { context, sequences: Array.from({ length: n }, () => context.getSequence()) });
      }
      const { sequences } = contexts.get(n)!;
      await Promise.all(sequences.map((s) => s.clearHistory()));
      const started = performance.now();
      return Promise.all(sequences.map(async (sequence, i) => {
        let tokens = 0;
        let firstMs = 0;
        for await (const token of sequence.evaluate(promptTokens(rep, i) as Token[], { temperature: 0 })) {
          void token;
          if (++tokens === 1) firstMs = performance.now() - started;
          if (tokens === GENERATE) break;
        }
        return { firstMs, endMs: performance.now() - started, tokens };
      }));
    },
    async dispose() {
      for (const { context } of contexts.values()) await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The machine's limits

/** Read bandwidth (bytes/s) of `threads` threads each comparing two equal 256 MiB buffers (memcmp), best of 3. */
async function memoryBandwidth(threads: number): Promise<number> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const size = 256 * 2 ** 20;
    const a = Buffer.alloc(size, 1), b = Buffer.alloc(size, 1);
    parentPort.on('message', () => {
      const t = performance.now();
      for (let i = 0; i < 4; i++) a.compare(b);
      parentPort.postMessage((8 * size) / ((performance.now() - t) / 1000));
    });
    parentPort.postMessage(0);`;
  const workers = Array.from({ length: threads }, () => new Worker(code, { eval: true }));
  const next = (w: Worker) => new Promise<number>((resolve) => w.once('message', resolve));
  await Promise.all(workers.map(next));
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    const rates = Promise.all(workers.map(next));
    workers.forEach((w) => w.postMessage('go'));
    best = Math.max(best, (await rates).reduce((s, r) => s + r, 0));
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return best;
}

/** The model's sizes that decide a decode step's cost. */
interface Shape {
  width: number;
  layers: number;
  /** Weights of the matrix products of one token (the blocks and the output layer). */
  productWeights: number;
  /** Bytes a step reads of the weights: the file less the token-embedding table, of which it reads a few rows. */
  weightBytes: number;
}

function shapeOf(options: TinyLlamaOptions, fileBytes: number): Shape {
  const E = options.embeddingWidth!;
  const F = options.feedForwardWidth!;
  const L = options.layers!;
  const V = options.vocabularySize!;
  return {
    width: E, layers: L,
    productWeights: L * (4 * E * E + 3 * E * F) + V * E,
    weightBytes: fileBytes - V * E * BYTES_PER_WEIGHT[options.tokenEmbeddingType!]!,
  };
}

/** FLOP of one token at context length `positions`: the products, and attention's two products over the cache. */
const tokenFlop = (s: Shape, positions: number): number => 2 * s.productWeights + 4 * s.width * s.layers * positions;

/** Product rate (FLOP/s) of this model's kernels: a PREFILL-token prompt from an empty sequence, best of 3. */
async function productRate(model: LlmModel, shape: Shape): Promise<number> {
  const context = await model.createContext({ contextSize: 256, threads: THREADS, batchSize: BATCH });
  const sequence = context.getSequence();
  const next = integers(4242, 3, model.vocabularySize);
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    // Other tokens each pass: nothing is reused from the pass before.
    const tokens = Array.from({ length: PREFILL }, next);
    const t = performance.now();
    await sequence.nextTokenLogits([tokens]);
    best = Math.max(best, (PREFILL * tokenFlop(shape, PREFILL / 2)) / ((performance.now() - t) / 1000));
  }
  await context.dispose();
  return best;
}

/**
 * The fastest aggregate decode a step of `n` chats allows: the step reads the weights once and
 * each chat's KV cache (f16 K and V), and does `n` tokens' FLOP; it takes at least the longer of
 * bytes / bandwidth and FLOP / product rate.
 */
function roofline(shape: Shape, n: number, positions: number, bandwidth: number, rate: number) {
  const bytes = shape.weightBytes + n * positions * shape.layers * 2 * shape.width * 2;
  const flop = n * tokenFlop(shape, positions);
  const seconds = Math.max(bytes / bandwidth, flop / rate);
  return { bytes, flop, ceiling: n / seconds, bound: bytes / bandwidth >= flop / rate ? 'memory' : 'products' };
}

// ---------------------------------------------------------------------------------------------
// Memory (child process: our library alone, the largest number of chats)

interface MemoryReport { peak: number; beforeLoad: number; afterLoad: number }

async function memoryChild(file: string): Promise<void> {
  const beforeLoad = rss().current;
  const engine = await ourEngine(file);
  const afterLoad = rss().current;
  await engine.run(Math.max(...CHATS), 0);
  const report: MemoryReport = { peak: rss().peak, beforeLoad, afterLoad };
  await engine.dispose();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

// ---------------------------------------------------------------------------------------------

/** One run of n chats: each chat's timing, and the CPU seconds the process used (all threads). */
interface Run { chats: ChatTiming[]; cpuSeconds: number }
interface Runs { ours: Run[]; peer: Run[] }

/**
 * Runs `engine` with `n` chats, also measuring CPU time: on a shared machine, wall-clock time
 * swings with the other jobs, while the CPU time the same work takes barely moves (one thread:
 * no spinning at ggml's barriers).
 */
async function measured(engine: Engine, n: number, rep: number): Promise<Run> {
  const cpu = process.cpuUsage();
  const chats = await engine.run(n, rep);
  const used = process.cpuUsage(cpu);
  return { chats, cpuSeconds: (used.user + used.system) / 1e6 };
}

async function benchModel(name: string, options: TinyLlamaOptions): Promise<string[]> {
  const generating = performance.now();
  const file = await cachedTinyLlama(CACHE_DIR, options);
  const fileBytes = fs.statSync(file).size;
  const shape = shapeOf(options, fileBytes);
  const ours = await ourEngine(file);
  // The same prompt tokens as our chat evaluates: the vicuna template with an empty system prompt.
  const promptTokens = (rep: number, i: number) =>
    ours.model.tokenize(VICUNA_TEMPLATE.prompt('', [{ user: userMessage(message(rep, i), []) }]), { addBos: true, special: true });
  const peer = await peerEngine(file, promptTokens);
  const promptPositions = promptTokens(0, 0).length;
  process.stderr.write(`${name}: ready in ${fmt((performance.now() - generating) / 1000)} s\n`);

  // Untimed warm-up of both: pages in, thread pools up.
  await ours.run(1, 99);
  await peer.run(1, 99);
  const bandwidth = await memoryBandwidth(THREADS);
  const rate = await productRate(ours.model, shape);
  const runs = new Map<number, Runs>(CHATS.map((n) => [n, { ours: [], peer: [] }]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const [k, n] of CHATS.entries()) {
      // Alternate who goes first, so that neither always runs right after the other.
      const order = (rep + k) % 2 === 0 ? [ours, peer] : [peer, ours];
      for (const engine of order) runs.get(n)![engine === ours ? 'ours' : 'peer'].push(await measured(engine, n, rep));
      process.stderr.write(`${name}: rep ${rep + 1}/${REPS}, ${n} chats done\n`);
    }
  }
  await peer.dispose();
  await ours.dispose();
  const raw = path.join(CACHE_DIR, 'bench', `llm-parallel-${name}.json`);
  fs.mkdirSync(path.dirname(raw), { recursive: true });
  fs.writeFileSync(raw, JSON.stringify({ options, promptPositions, bandwidth, rate, runs: [...runs] }));

  const single = median(runs.get(CHATS[0]!)!.ours.map((r) => aggregateRate(r.chats)));
  const lines = [
    `### ${name}: ${JSON.stringify(options)}, ${fmt(mib(fileBytes))} MiB (every run: .cache/bench/llm-parallel-${name}.json)`, '',
    `Prompt ${promptPositions} positions (vicuna template, ${WORDS} words), ${GENERATE} greedy tokens per chat. ` +
      `Measured here: read bandwidth ${fmt(bandwidth / 1e9, 1)} GB/s (${THREADS} threads, memcmp), product rate ${fmt(rate / 1e9, 1)} GFLOP/s ` +
      `(a ${PREFILL}-token prefill of this model through libllama). A step reads ${fmt(mib(shape.weightBytes))} MiB of weights.`, '',
    '| chats | ours: aggregate decode tok/s | node-llama-cpp | ours / peer (median of per-repetition ratios) | ours / ours with 1 chat | roofline tok/s (bound) | ours / roofline | TTFT p50 / p99 ms, ours | TTFT p50 / p99 ms, node-llama-cpp | CPU-s per run (prefill + decode), ours / peer |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const n of CHATS) {
    const { ours: o, peer: p } = runs.get(n)!;
    const oRates = o.map((r) => aggregateRate(r.chats));
    const pRates = p.map((r) => aggregateRate(r.chats));
    const cpuRatios = o.map((r, i) => r.cpuSeconds / p[i]!.cpuSeconds);
    const ratios = oRates.map((r, i) => r / pRates[i]!);
    const roof = roofline(shape, n, promptPositions + GENERATE / 2, bandwidth, rate);
    const ttft = (rs: Run[]) => rs.flatMap((r) => r.chats.map((c) => c.firstMs));
    lines.push(`| ${n} | ${fmt(median(oRates), 2)} (${oRates.map((r) => fmt(r, 2)).join(', ')}) | ${fmt(median(pRates), 2)} (${pRates.map((r) => fmt(r, 2)).join(', ')}) ` +
      `| ${fmt(median(ratios), 3)} (${ratios.map((r) => fmt(r, 2)).join(', ')}) | ${fmt(median(oRates) / single, 2)} | ${fmt(roof.ceiling, 1)} (${roof.bound}; ` +
      `${fmt(mib(roof.bytes), 0)} MiB, ${fmt(roof.flop / 1e9, 1)} GFLOP per step) | ${fmt(median(oRates) / roof.ceiling, 2)} ` +
      `| ${fmt(percentile(ttft(o), 50), 0)} / ${fmt(percentile(ttft(o), 99), 0)} | ${fmt(percentile(ttft(p), 50), 0)} / ${fmt(percentile(ttft(p), 99), 0)} ` +
      `| ${fmt(median(o.map((r) => r.cpuSeconds)), 1)} / ${fmt(median(p.map((r) => r.cpuSeconds)), 1)} = ${fmt(median(cpuRatios), 3)} (${cpuRatios.map((r) => fmt(r, 2)).join(', ')}) |`);
  }
  if (!args['no-memory']) lines.push('', ...(await memoryLines(name, fileBytes)));
  return lines;
}

async function memoryLines(name: string, fileBytes: number): Promise<string[]> {
  const { report, buffers } = await runChild<MemoryReport>(path.join(repoRoot, 'bench', 'llm-parallel.ts'), `memory-${name}`);
  const bufferBytes = [...buffers.values()].reduce((a, b) => a + b, 0);
  return [
    `Memory (child process, our library alone, ${Math.max(...CHATS)} chats): weights ${fmt(mib(fileBytes))} MiB + libllama buffers ` +
      `${[...buffers].map(([k, v]) => `${k} ${fmt(mib(v))}`).join(', ')} MiB; RSS before load (Node and vite-node) ${fmt(mib(report.beforeLoad))} MiB, ` +
      `after load ${fmt(mib(report.afterLoad))} MiB, peak ${fmt(mib(report.peak))} MiB = **${fmt(report.peak / (fileBytes + bufferBytes), 3)}x** weights + buffers ` +
      `(peak less the RSS before load: ${fmt((report.peak - report.beforeLoad) / (fileBytes + bufferBytes), 3)}x).`,
  ];
}

async function main(): Promise<void> {
  const names = args.models!.split(',');
  for (const name of names) if (!MODELS[name]) throw new Error(`--models: one of ${Object.keys(MODELS).join(', ')}`);
  if (args.child?.startsWith('memory-')) {
    const name = args.child.slice('memory-'.length);
    return memoryChild(await cachedTinyLlama(CACHE_DIR, MODELS[name]!));
  }
  const out = [
    `## Parallel chats benchmark (${new Date().toISOString()})`, '',
    ...machine().map((l) => `- ${l}`),
    `- Command: \`npm run bench:llm-parallel -- ${process.argv.slice(2).filter((a) => a !== '--').join(' ')}\``,
    `- Both engines: threads ${THREADS}, batch ${BATCH}, flash attention auto, f16 KV cache, ${CELLS_PER_CHAT} cells per chat, weights read (no mmap), greedy; ` +
      `${REPS} repetitions, the two engines alternating, medians (every run in parentheses). The machine is shared: numbers are noisy.`,
    '',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  for (const name of names) process.stdout.write(`${(await benchModel(name, MODELS[name]!)).join('\n')}\n\n`);
}

await main();
