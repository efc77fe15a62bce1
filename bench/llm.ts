/**
 * The LLM half of the performance goals: prefill, soft-prompt prefill and decode speed of our
 * chat against node-llama-cpp's own on the same GGUF and settings, in the same process with the
 * runs interleaved; time to first token after `chat.send` with an encoded video; peak RSS of
 * encode + chat against the bytes in use; RSS over 100 consecutive encodes.
 *
 *   npm run bench:llm -- [--shape 7b|3b|1b|tiny] [--reps 3] [--prompt 512] [--generate 128]
 *                        [--threads N] [--context 2048] [--batch 512] [--no-memory] [--no-speed]
 *
 * The model is a LLaMA-shaped GGUF with random weights (q4_K matrices, q6_K output), generated
 * once into `.cache/`. Prints the machine, the command and the numbers (medians) as Markdown.
 * Not part of `npm test`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { getLlama, type LlamaContextSequence, type Token } from 'node-llama-cpp';

import { cachedRandomProjector, tinyProjector } from '../src/dev/random-projector.js';
import { cachedTinyLlama, type TinyLlamaOptions } from '../src/dev/tiny-llama.js';
import { Chat, VideoLlama, type MediaEmbedding } from '../src/index.js';
import { CACHE_DIR, fmt, integers, machine, median, mib, q4kModel, repoRoot, rss, runChild, SHAPES } from './llm-shared.js';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: '7b' },
    reps: { type: 'string', default: '3' },
    prompt: { type: 'string', default: '512' },
    generate: { type: 'string', default: '128' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    context: { type: 'string', default: '2048' },
    batch: { type: 'string', default: '512' },
    'no-memory': { type: 'boolean', default: false },
    'no-speed': { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});

const shape = SHAPES[args.shape!];
if (!shape) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
const REPS = Number(args.reps);
const PROMPT = Number(args.prompt);
const GENERATE = Number(args.generate);
const THREADS = Number(args.threads);
const CONTEXT = Number(args.context);
const BATCH = Number(args.batch);
/** Video-LLaMA's video branch: 32 query vectors per clip of frames; 8 of them make a 256-vector soft prompt. */
const SOFT_VECTORS = 256;
const ENCODE_CALLS = 100;
/** Words of the chat message the decode runs after (the prompt is a little longer: the template). */
const DECODE_PROMPT = 64;

const MODEL_OPTIONS: TinyLlamaOptions = q4kModel(shape);

// ---------------------------------------------------------------------------------------------
// Helpers

/** `n` token ids that are plain pieces (not BOS/EOS/unknown), different for each seed. */
function randomTokens(n: number, seed: number, vocabularySize: number): number[] {
  const next = integers(seed, 3, vocabularySize);
  return Array.from({ length: n }, next);
}

/** Vectors of the scale of LLaMA's input embeddings (std ~0.02): what a projector hands the LLM. */
function randomEmbedding(tokens: number, dim: number, seed: number): MediaEmbedding {
  const next = integers(seed, 0, 2 ** 20);
  const data = new Float32Array(tokens * dim);
  for (let i = 0; i < data.length; i++) data[i] = ((next() / 2 ** 20) - 0.5) * 0.07;
  return { kind: 'video', tokens, dim, data };
}

// ---------------------------------------------------------------------------------------------
// The two engines, behind one shape

/** Wall-clock and CPU seconds (all threads of the process) of one timed step, and the items it processed. */
interface Timing { items: number; wall: number; cpu: number }

/**
 * Times `job`. CPU time is the second measure because the machine is shared: when another job
 * takes the cores, wall-clock time grows for whoever runs then, while the CPU time a step needs
 * grows much less (only through spinning at ggml's barriers while a thread is descheduled).
 */
async function timed(items: number, job: () => Promise<unknown>): Promise<Timing> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await job();
  const wall = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { items, wall, cpu: (used.user + used.system) / 1e6 };
}

interface Engine {
  name: string;
  /** Evaluates `tokens` from an empty cache. */
  prefill(tokens: number[]): Promise<Timing>;
  /**
   * From the logits of a prompt of about `promptLength` items, `n` greedy tokens: n samples and
   * n decodes (the prompt's last position, evaluated again, then n - 1 generated tokens).
   */
  decode(promptLength: number, n: number, seed: number): Promise<Timing>;
}

function ours(model: VideoLlama): Engine & { softPrefill(tokens: number[], media: MediaEmbedding, at: number): Promise<Timing> } {
  // One sequence for everything, as node-llama-cpp's side uses one.
  const sequence = model.context.getSequence();
  return {
    name: 'ours',
    prefill: (tokens) => timed(tokens.length, () => sequence.nextTokenLogits([tokens])),
    softPrefill: (tokens, media, at) => timed(tokens.length + media.tokens, () => sequence.nextTokenLogits([tokens.slice(0, at), media, tokens.slice(at)])),
    async decode(promptLength, n) {
      // Through the chat, as a user gets it ("▁the" is one token). The untimed first turn puts
      // the prompt in the sequence; a second chat on the same sequence then evaluates only its
      // last position again.
      const message = Array.from({ length: promptLength }, () => 'the').join(' ');
      await new Chat(sequence, { template: 'vicuna', system: '' }).send(message, { temperature: 0, maxTokens: 1 });
      const chat = new Chat(sequence, { template: 'vicuna', system: '' });
      const timing = await timed(n, () => chat.send(message, { temperature: 0, maxTokens: n }));
      const stats = chat.lastStats!;
      if (stats.generatedTokens !== n || stats.evaluatedItems !== 1) {
        throw new Error(`ours generated ${stats.generatedTokens} tokens (${stats.stopReason}) after ${stats.evaluatedItems} items, not ${n} after 1`);
      }
      lastPromptItems = stats.promptItems;
      return timing;
    },
  };
}

/** Prompt length of our last chat turn, so that node-llama-cpp decodes from the same position. */
let lastPromptItems = 0;

function nodeLlamaCpp(sequence: LlamaContextSequence, vocabularySize: number): Engine {
  return {
    name: 'node-llama-cpp',
    async prefill(tokens) {
      await sequence.clearHistory();
      return timed(tokens.length, () => sequence.evaluateWithoutGeneratingNewTokens(tokens as Token[]));
    },
    async decode(promptLength, n, seed) {
      await sequence.clearHistory();
      const prompt = randomTokens(promptLength, seed, vocabularySize) as Token[];
      await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
      return timed(n, async () => {
        let count = 0;
        for await (const token of sequence.evaluate(prompt.slice(-1), { temperature: 0 })) {
          void token;
          if (++count === n) break;
        }
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Speed (main process)

interface Samples { [metric: string]: { ours: number[]; nlc: number[] } }

async function speed(llmFile: string, projectorFile: string): Promise<{ samples: Samples; ttft: { ms: number[]; prompt: number[]; first: number[]; items: number } }> {
  const model = await VideoLlama.load({ llm: llmFile, projector: projectorFile, threads: THREADS, contextSize: CONTEXT, gpu: false });
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  // Read rather than mapped, as ours loads it (docs/performance.md, "The language model").
  const nlcModel = await llama.loadModel({ modelPath: llmFile, gpuLayers: 0, useMmap: false });
  const nlcContext = await nlcModel.createContext({ contextSize: CONTEXT, batchSize: BATCH, threads: THREADS, sequences: 1, flashAttention: 'auto' as never });
  const nlcSequence = nlcContext.getSequence();
  const mine = ours(model);
  const theirs = nodeLlamaCpp(nlcSequence, model.model.vocabularySize);
  const samples: Samples = {};
  const add = (metric: string, who: 'ours' | 'nlc', { items, wall, cpu }: Timing) => {
    for (const [name, value] of [[`${metric} tok/s`, items / wall], [`${metric} tok/CPU-s`, items / cpu]] as const) {
      samples[name] ??= { ours: [], nlc: [] };
      samples[name]![who].push(value);
    }
  };

  // One untimed round each: page the weights in, warm the thread pools.
  await mine.prefill(randomTokens(32, 999, model.model.vocabularySize));
  await theirs.prefill(randomTokens(32, 999, model.model.vocabularySize));

  const video = await model.encodeVideo({ tensor: new Float32Array(8 * 3 * 224 * 224).fill(0.1), shape: [8, 3, 224, 224] });
  const ttft = { ms: [] as number[], prompt: [] as number[], first: [] as number[], items: 0 };
  for (let rep = 0; rep < REPS; rep++) {
    // Alternate who goes first, so that neither always runs while the other's pages are hot.
    const order = rep % 2 === 0 ? [mine, theirs] : [theirs, mine];
    const tokens = randomTokens(PROMPT, 1000 + rep, model.model.vocabularySize);
    for (const engine of order) {
      const who = engine === mine ? 'ours' : 'nlc';
      add('prefill', who, await engine.prefill(tokens));
      if (engine === mine) {
        const soft = randomEmbedding(SOFT_VECTORS, model.model.embeddingWidth, 2000 + rep);
        add('soft-prompt prefill', 'ours', await mine.softPrefill(tokens.slice(0, PROMPT - SOFT_VECTORS), soft, 16));
      }
    }
    for (const engine of order) {
      const who = engine === mine ? 'ours' : 'nlc';
      add('decode', who, await engine.decode(lastPromptItems || DECODE_PROMPT, GENERATE, 3000 + rep));
    }
    // Time to the first piece of a reply about an already-encoded video.
    // A copy of the embedding is a new video to the KV cache: only the system prompt before it is reused.
    const chat = model.createChat();
    const started = performance.now();
    for await (const piece of chat.stream({ text: 'What happens in this video?', media: [{ ...video, data: video.data.slice() }] }, { temperature: 0, maxTokens: 16 })) {
      void piece;
      ttft.ms.push(performance.now() - started);
      break;
    }
    const counted = model.createChat();
    await counted.send({ text: 'What happens in this video?', media: [{ ...video, data: video.data.slice() }] }, { temperature: 0, maxTokens: 1 });
    ttft.prompt.push(counted.lastStats!.promptMs);
    ttft.first.push(counted.lastStats!.firstTokenMs);
    ttft.items = counted.lastStats!.evaluatedItems;
    process.stderr.write(`rep ${rep + 1}/${REPS} done\n`);
  }
  await nlcContext.dispose();
  await nlcModel.dispose();
  await llama.dispose();
  await model.dispose();
  return { samples, ttft };
}

// ---------------------------------------------------------------------------------------------
// Memory (a child process each, so that node-llama-cpp's copy of the model is not counted)

interface MemoryReport {
  afterLoad: number; afterEncode: number; afterChat: number; peak: number;
  encodeRss: number[];
  progress: string[];
}

async function memoryChild(llmFile: string, projectorFile: string): Promise<void> {
  const model = await VideoLlama.load({ llm: llmFile, projector: projectorFile, threads: THREADS, contextSize: CONTEXT, gpu: false });
  const report: MemoryReport = { afterLoad: rss().current, afterEncode: 0, afterChat: 0, peak: 0, encodeRss: [], progress: [] };
  const tensor = { tensor: new Float32Array(8 * 3 * 224 * 224).fill(0.1), shape: [8, 3, 224, 224] };
  const video = await model.encodeVideo(tensor, { onProgress: (p) => report.progress.push(`${p.stage} ${p.completed}/${p.total}`) });
  report.afterEncode = rss().current;
  const chat = model.createChat();
  await chat.send({ text: 'What happens in this video?', media: [video] }, { temperature: 0, maxTokens: GENERATE });
  await chat.send(randomTokens(PROMPT, 5, model.model.vocabularySize).map(() => 'the').join(' '), { temperature: 0, maxTokens: GENERATE });
  report.afterChat = rss().current;
  for (let i = 1; i <= ENCODE_CALLS; i++) {
    await model.encodeVideo(tensor);
    if (i % 10 === 0) report.encodeRss.push(rss().current);
  }
  report.peak = rss().peak;
  await model.dispose();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** Runs the memory child; returns its report and libllama's buffer sizes from its log. */
function memory(): Promise<{ report: MemoryReport; buffers: Map<string, number> }> {
  return runChild<MemoryReport>(path.join(repoRoot, 'bench', 'llm.ts'), 'memory');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const generating = performance.now();
  const llmFile = await cachedTinyLlama(CACHE_DIR, MODEL_OPTIONS);
  const projectorFile = await cachedRandomProjector(CACHE_DIR, tinyProjector(shape!.embeddingWidth!));
  const generatedMs = performance.now() - generating;
  if (args.child === 'memory') return memoryChild(llmFile, projectorFile);

  const llmBytes = fs.statSync(llmFile).size;
  const projectorBytes = fs.statSync(projectorFile).size;
  const lines = [
    `# LLM benchmark (${new Date().toISOString()})`, '',
    ...machine().map((l) => `- ${l}`),
    `- Command: \`npm run bench:llm -- ${process.argv.slice(2).filter((a) => a !== '--').join(' ')}\``,
    `- Model: ${args.shape}-shaped LLaMA, random weights, ${JSON.stringify(MODEL_OPTIONS)}; ${fmt(mib(llmBytes))} MiB (${path.basename(llmFile)}; ready in ${fmt(generatedMs / 1000)} s)`,
    `- Projector: tiny random (tinyProjector(${shape!.embeddingWidth})), ${fmt(mib(projectorBytes))} MiB`,
    `- Settings (both): threads ${THREADS}, context ${CONTEXT}, batch = ubatch ${BATCH}, flash attention auto, weights read (no mmap), greedy; prompt ${PROMPT} tokens, ` +
      `soft prompt ${SOFT_VECTORS} vectors + ${PROMPT - SOFT_VECTORS} tokens, ${GENERATE} generated tokens; ${REPS} interleaved repetitions, medians`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  if (!args['no-speed']) await printSpeed(llmFile, projectorFile);
  if (!args['no-memory']) await printMemory(llmFile, projectorFile);
}

async function printSpeed(llmFile: string, projectorFile: string): Promise<void> {
  const { samples, ttft } = await speed(llmFile, projectorFile);
  // Ratios of the two runs of the same repetition (adjacent in time, so under the same load).
  const pairRatios = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
  const table = [
    '| metric | ours | node-llama-cpp | ours / node-llama-cpp (median of per-repetition ratios) | ours (all runs) | node-llama-cpp (all runs) |',
    '|---|---|---|---|---|---|',
  ];
  const all = (xs: number[]) => xs.map((x) => fmt(x, 2)).join(', ');
  for (const [metric, { ours: o, nlc: n }] of Object.entries(samples)) {
    const ratio = n.length ? `${fmt(median(pairRatios(o, n)), 3)} (${pairRatios(o, n).map((x) => fmt(x, 3)).join(', ')})` : '–';
    table.push(`| ${metric} | ${fmt(median(o), 2)} | ${n.length ? fmt(median(n), 2) : '–'} | ${ratio} | ${all(o)} | ${all(n)} |`);
  }
  for (const unit of ['tok/s', 'tok/CPU-s']) {
    const softRatios = pairRatios(samples[`soft-prompt prefill ${unit}`]!.ours, samples[`prefill ${unit}`]!.ours);
    table.push(`| soft-prompt / text prefill ${unit}, ours (median of per-repetition ratios) | ${fmt(median(softRatios), 3)} | | | ${softRatios.map((x) => fmt(x, 3)).join(', ')} | |`);
  }
  table.push(`| time to first piece after chat.stream, encoded video (ms) | ${fmt(median(ttft.ms), 0)} | | | ${ttft.ms.map((x) => fmt(x, 0)).join(', ')} | |`);
  table.push(`| chat.lastStats.firstTokenMs of such a turn (ms) | ${fmt(median(ttft.first), 0)} | | | ${ttft.first.map((x) => fmt(x, 0)).join(', ')} | |`);
  table.push(`| prompt evaluation of such a turn, ${ttft.items} new items (ms) | ${fmt(median(ttft.prompt), 0)} | | | ${ttft.prompt.map((x) => fmt(x, 0)).join(', ')} | |`);
  process.stdout.write(`${table.join('\n')}\n\n`);

}

async function printMemory(llmFile: string, projectorFile: string): Promise<void> {
  const llmBytes = fs.statSync(llmFile).size;
  const projectorBytes = fs.statSync(projectorFile).size;
  const { report, buffers } = await memory();
  const bufferBytes = [...buffers.values()].reduce((a, b) => a + b, 0);
  const budget = llmBytes + projectorBytes + bufferBytes;
  const growth = report.encodeRss.at(-1)! - report.encodeRss[0]!;
  const memLines = [
    '| memory (separate process: load, encode a video, two chat turns, 100 encodes) | MiB |', '|---|---|',
    `| weights: LLM GGUF + projector GGUF | ${fmt(mib(llmBytes + projectorBytes))} |`,
    ...[...buffers].map(([k, v]) => `| buffer: ${k} | ${fmt(mib(v))} |`),
    `| RSS after load / after encode / after chat | ${fmt(mib(report.afterLoad))} / ${fmt(mib(report.afterEncode))} / ${fmt(mib(report.afterChat))} |`,
    `| peak RSS (VmHWM) | ${fmt(mib(report.peak))} |`,
    `| peak RSS / (weights + buffers) | ${fmt(report.peak / budget, 3)} |`,
    `| RSS after encode 10, 20, … ${ENCODE_CALLS} | ${report.encodeRss.map((x) => fmt(mib(x), 0)).join(', ')} |`,
    `| RSS growth from encode 10 to ${ENCODE_CALLS} | ${fmt(mib(growth), 1)} |`,
    '', `Encode progress reported to the caller: ${report.progress.join('; ')}`,
  ];
  process.stdout.write(`${memLines.join('\n')}\n`);
}

await main();
