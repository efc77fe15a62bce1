/**
 * Load on the server: `video-llama serve` on the tiny models in a child process, 32 concurrent
 * clients sending a few hundred requests that mix text, image, video and audio, some streamed,
 * some dropped after their first token. Rounds are repeated to show whether memory grows.
 *
 *   npx vite-node bench/serve.ts -- [--clients 32] [--requests 240] [--rounds 3] [--max-tokens 32]
 *                                   [--threads 1] [--concurrency 8] [--parallel-tokens 128] [--reps 5]
 *
 * Counts failed requests (a status other than 200, or a reply without its end) and lost ones
 * (no answer at all); prints p50/p99 latency, requests/s, generated tokens/s, and the server's
 * peak RSS and RSS after each round, as Markdown. Images (PNG data URLs) and audio (WAV, base64)
 * are sent inline, so each is probed again; the video (the fixture clip, with sound) is uploaded
 * once and named by its id. Every media file is the same few bytes, so after the first encode of
 * each the encode cache answers (as for a user asking several questions about one upload).
 *
 * Peers, in the same run: aggregate throughput of `--concurrency` parallel greedy chats through
 * the server, through the library in this process (as many sequences), and through
 * node-llama-cpp with as many sequences on one context — the same GGUF, the same threads, the
 * same prompt lengths and the same number of generated tokens per chat (interleaved
 * repetitions); and one text question at a time through HTTP against the library directly, to
 * show what the server adds per request.
 * Not part of `npm test`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { cachedRandomProjector, tinyProjector } from '../src/dev/random-projector.js';
import { cachedTinyLlama } from '../src/dev/tiny-llama.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { getLlama, type Token } from 'node-llama-cpp';

import { Engine } from '../src/server/engine.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE_DIR = path.join(repoRoot, '.cache');
const CLIP = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'videollama-tiny-a', 'inputs', 'clip.mp4');
const WAV = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'videollama-tiny-a', 'inputs', 'audio.wav');

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '32' },
    requests: { type: 'string', default: '240' },
    rounds: { type: 'string', default: '3' },
    'max-tokens': { type: 'string', default: '32' },
    threads: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '8' },
    'parallel-tokens': { type: 'string', default: '128' },
    reps: { type: 'string', default: '5' },
  },
});
const CLIENTS = Number(args.clients);
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const MAX_TOKENS = Number(args['max-tokens']);
const THREADS = Number(args.threads);
const CONCURRENCY = Number(args.concurrency);
const PARALLEL_TOKENS = Number(args['parallel-tokens']);
const REPS = Number(args.reps);
/** KV cells per sequence (a conversation of the load test takes about 150). */
const CELLS_PER_CHAT = 512;
/** The server's context: shared by its sequences, as node-llama-cpp's is split among its. */
const CONTEXT = CELLS_PER_CHAT * CONCURRENCY;

type Kind = 'text' | 'image' | 'video' | 'audio';
interface Outcome { ok: boolean; lost: boolean; ms: number; tokens: number; dropped: boolean; failure?: string }

/** The `code` of an OpenAI error record in a body, else the first characters of the body. */
function failureOf(status: number, text: string): string {
  return `${status} ${/"code":"([^"]+)"/.exec(text)?.[1] ?? text.slice(0, 80)}`;
}

async function pngFrame(): Promise<Buffer> {
  const file = path.join(CACHE_DIR, 'bench-serve-frame.png');
  if (!fs.existsSync(file)) {
    const result = await runFfmpeg(['-y', '-i', CLIP, '-frames:v', '1', file], { what: 'making a frame' });
    if (result.code !== 0) throw new Error('ffmpeg failed');
  }
  return fs.readFileSync(file);
}

/** The tiny LLaMA and its projector, made once in .cache. */
function tinyModels(): Promise<[llm: string, projector: string]> {
  return Promise.all([cachedTinyLlama(CACHE_DIR, { embeddingWidth: 96 }), cachedRandomProjector(CACHE_DIR, tinyProjector(96))]);
}

/** Starts `video-llama serve` and resolves to its URL and pid once the model is ready. */
async function startServer(): Promise<{ url: string; pid: number; stop: () => Promise<number | null> }> {
  const [llm, projector] = await tinyModels();
  const child = spawn(path.join(repoRoot, 'node_modules', '.bin', 'vite-node'), [
    path.join(repoRoot, 'src', 'cli', 'main.ts'), 'serve', '--llm', llm, '--projector', projector, '--port', '0',
    '--threads', String(THREADS), '--context-size', String(CONTEXT), '--concurrency', String(CONCURRENCY), '--queue-length', String(4 * CLIENTS),
  ], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    let log = '';
    child.stdout.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`serve exited:\n${log}`)));
  });
  for (let i = 0; i < 300 && (await fetch(`${url}/health`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  return { url, pid: child.pid!, stop: () => { child.kill('SIGTERM'); return exited; } };
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

function content(kind: Kind, media: Record<Exclude<Kind, 'text'>, string>): unknown {
  const question = { type: 'text', text: 'What is going on here?' };
  if (kind === 'text') return 'Tell me a story.';
  if (kind === 'image') return [{ type: 'image_url', image_url: { url: media.image } }, question];
  if (kind === 'audio') return [{ type: 'input_audio', input_audio: { data: media.audio, format: 'wav' } }, question];
  return [{ type: 'file', file: { file_id: media.video } }, question];
}

/** Uploads the clip once (`POST /v1/files`): video questions name it by id, as after an upload from the page. */
async function uploadClip(url: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([fs.readFileSync(CLIP)]), 'clip.mp4');
  const response = await fetch(`${url}/v1/files`, { method: 'POST', body: form });
  return (await response.json() as { id: string }).id;
}

/** One request; `drop` reads the first content chunk of a stream and then disconnects. */
async function one(url: string, body: unknown, stream: boolean, drop: boolean): Promise<Outcome> {
  const started = performance.now();
  const controller = new AbortController();
  try {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: controller.signal,
    });
    if (response.status !== 200) {
      return { ok: false, lost: false, ms: performance.now() - started, tokens: 0, dropped: drop, failure: failureOf(response.status, await response.text()) };
    }
    if (!stream) {
      const json = await response.json() as { usage?: { completion_tokens: number } };
      return { ok: json.usage !== undefined, lost: false, ms: performance.now() - started, tokens: json.usage?.completion_tokens ?? 0, dropped: false };
    }
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      if (drop && text.includes('"content":"')) {
        controller.abort();
        return { ok: true, lost: false, ms: performance.now() - started, tokens: 0, dropped: true };
      }
    }
    const usage = /"usage":\{"prompt_tokens":\d+,"completion_tokens":(\d+)/.exec(text);
    const ok = text.trimEnd().endsWith('data: [DONE]') && usage !== null;
    return { ok, lost: false, ms: performance.now() - started, tokens: Number(usage?.[1] ?? 0), dropped: false, failure: ok ? undefined : failureOf(200, text) };
  } catch (error) {
    // A dropped stream may end before its first content chunk (a reply of one empty token).
    return { ok: drop, lost: !drop, ms: performance.now() - started, tokens: 0, dropped: drop, failure: drop ? undefined : String(error) };
  }
}

/** What one round measured (milliseconds, MiB, per second). */
interface RoundResult {
  requests: number; failures: string[]; failed: number; lost: number; dropped: number;
  p50: number; p99: number; perSecond: number; tokensPerSecond: number; peakRss: number; rssAfter: number;
}

async function round(url: string, pid: number, media: Record<Exclude<Kind, 'text'>, string>): Promise<RoundResult> {
  const kinds: Kind[] = ['text', 'image', 'video', 'audio'];
  let next = 0;
  const outcomes: Outcome[] = [];
  let peakDuring = 0;
  const sampler = setInterval(() => { peakDuring = Math.max(peakDuring, memory(pid).rss); }, 100);
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < REQUESTS) {
      const i = next++;
      const stream = i % 3 !== 0;
      const drop = stream && i % 10 === 1;
      const body = {
        model: 'video-llama', messages: [{ role: 'user', content: content(kinds[i % 4]!, media) }], max_tokens: MAX_TOKENS, seed: i,
        stream, ...(stream ? { stream_options: { include_usage: true } } : {}),
      };
      outcomes.push(await one(url, body, stream, drop));
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const latencies = outcomes.filter((o) => !o.dropped).map((o) => o.ms).sort((a, b) => a - b);
  const quantile = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  // The server lets go of finished work shortly after; give it a moment before reading RSS.
  await new Promise((r) => setTimeout(r, 1000));
  return {
    requests: outcomes.length,
    failures: outcomes.flatMap((o) => (o.failure ? [o.failure] : [])),
    failed: outcomes.filter((o) => !o.ok).length,
    lost: outcomes.filter((o) => o.lost).length,
    dropped: outcomes.filter((o) => o.dropped).length,
    p50: quantile(0.5),
    p99: quantile(0.99),
    perSecond: outcomes.length / seconds,
    tokensPerSecond: outcomes.reduce((s, o) => s + o.tokens, 0) / seconds,
    peakRss: Math.max(peakDuring, memory(pid).peak),
    rssAfter: memory(pid).rss,
  };
}

/** Milliseconds per text question (median), one after another: through HTTP, and through the engine in this process. */
async function overhead(url: string, engine: Engine, count: number): Promise<{ http: number; direct: number }> {
  const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const http: number[] = [];
  const direct: number[] = [];
  // Interleaved, so that the shared machine's load falls on both alike.
  for (let i = 0; i < count; i++) {
    let started = performance.now();
    await one(url, { messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: MAX_TOKENS, seed: i, temperature: 0 }, false, false);
    http.push(performance.now() - started);
    started = performance.now();
    await directReply(engine, 'Tell me a story.', MAX_TOKENS);
    direct.push(performance.now() - started);
  }
  return { http: median(http), direct: median(direct) };
}

/** A greedy reply to `text` through the library in this process (the engine the server wraps). */
async function directReply(engine: Engine, text: string, maxTokens: number): Promise<number> {
  const result = await engine.reply({
    history: [], message: { text, media: [] }, sampling: { maxTokens, temperature: 0, stop: [] }, signal: new AbortController().signal,
  }, () => {});
  return result.completionTokens;
}

/** One chat's work: prompt positions and generated tokens. */
interface ChatWork { prompt: number; generated: number }

const story = (rep: number, i: number): string => `Tell me story number ${rep * CONCURRENCY + i}.`;

/** `CONCURRENCY` greedy text chats sent at once through the server: their work and the wall time. */
async function serverParallel(url: string, rep: number): Promise<{ seconds: number; chats: ChatWork[] }> {
  const started = performance.now();
  const chats = await Promise.all(Array.from({ length: CONCURRENCY }, async (_, i) => {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: story(rep, i) }], max_tokens: PARALLEL_TOKENS, temperature: 0 }),
    });
    const body = await response.text();
    const usage = (JSON.parse(body) as { usage?: { prompt_tokens: number; completion_tokens: number } }).usage;
    if (!usage) throw new Error(`the server answered ${response.status}: ${body.slice(0, 200)}`);
    return { prompt: usage.prompt_tokens, generated: usage.completion_tokens };
  }));
  return { seconds: (performance.now() - started) / 1000, chats };
}

/** The same chats through the library in this process, on as many sequences: generated tokens per second. */
async function directParallel(engine: Engine, rep: number): Promise<number> {
  const started = performance.now();
  const generated = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => directReply(engine, story(rep, i), PARALLEL_TOKENS)));
  return generated.reduce((sum, n) => sum + n, 0) / ((performance.now() - started) / 1000);
}

/**
 * node-llama-cpp on the same GGUF: one context of `CONCURRENCY` sequences (its batching
 * evaluates them together), each given a prompt of the same length as the server's chat and
 * made to generate as many greedy tokens.
 */
async function nodeLlamaCppPeer(): Promise<{ run: (chats: ChatWork[]) => Promise<number>; dispose: () => Promise<void> }> {
  const [llm] = await tinyModels();
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  const model = await llama.loadModel({ modelPath: llm, gpuLayers: 0, useMmap: false });
  // node-llama-cpp gives each sequence its own contextSize cells: the same cells in all.
  const context = await model.createContext({ contextSize: CELLS_PER_CHAT, sequences: CONCURRENCY, threads: THREADS });
  const sequences = Array.from({ length: CONCURRENCY }, () => context.getSequence());
  const words = model.tokenize('Tell me a story about a long journey. ');
  return {
    async run(chats) {
      await Promise.all(sequences.map((sequence) => sequence.clearHistory()));
      const started = performance.now();
      await Promise.all(chats.map(async (chat, i) => {
        const prompt = Array.from({ length: chat.prompt }, (_, k) => words[k % words.length]!) as Token[];
        if (chat.generated === 0) return;
        let count = 0;
        for await (const token of sequences[i]!.evaluate(prompt, { temperature: 0 })) {
          void token;
          if (++count === chat.generated) break;
        }
      }));
      return (performance.now() - started) / 1000;
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

/**
 * Interleaved repetitions of the parallel chats: through the server, through the library in
 * this process, and through node-llama-cpp with the server's work.
 */
async function parallelComparison(url: string, engine: Engine): Promise<void> {
  const peer = await nodeLlamaCppPeer();
  const rows: { server: number; library: number; peer: number }[] = [];
  // One untimed round each: warm all three.
  await peer.run((await serverParallel(url, REPS)).chats);
  await directParallel(engine, REPS);
  for (let rep = 0; rep < REPS; rep++) {
    const ours = await serverParallel(url, rep);
    const tokens = ours.chats.reduce((sum, chat) => sum + chat.generated, 0);
    const library = await directParallel(engine, rep);
    const theirs = await peer.run(ours.chats);
    rows.push({ server: tokens / ours.seconds, library, peer: tokens / theirs });
  }
  await peer.dispose();
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const cells = (values: number[]): string => values.map((v, i) => (i < 3 ? v.toFixed(0) : v.toFixed(2))).join(' | ');
  const ratios = (row: { server: number; library: number; peer: number }): number[] => [row.server, row.library, row.peer, row.server / row.peer, row.library / row.peer];
  console.log(`\n${CONCURRENCY} parallel greedy chats of up to ${PARALLEL_TOKENS} tokens, aggregate generated tokens/s (prompt included in the time):\n`);
  console.log('| repetition | server (HTTP) | library, in process | node-llama-cpp, the server\'s work | server / node-llama-cpp | library / node-llama-cpp |');
  console.log('|---|---|---|---|---|---|');
  rows.forEach((row, i) => console.log(`| ${i + 1} | ${cells(ratios(row))} |`));
  const table = rows.map(ratios);
  console.log(`| median | ${cells(table[0]!.map((_, column) => median(table.map((r) => r[column]!))))} |`);
}

const server = await startServer();
try {
  const [llm, projector] = await tinyModels();
  // The library in this process, with the server's sequences: the peer that shows what HTTP adds.
  const engine = await Engine.load({ llm, projector, threads: THREADS, contextSize: CONTEXT, sequences: CONCURRENCY });
  const media = {
    image: `data:image/png;base64,${(await pngFrame()).toString('base64')}`,
    video: await uploadClip(server.url),
    audio: fs.readFileSync(WAV).toString('base64'),
  };
  console.log(`# bench/serve.ts — ${os.cpus()[0]?.model} (${os.availableParallelism()} threads), Node ${process.version}`);
  console.log(`command: npx vite-node bench/serve.ts -- --clients ${CLIENTS} --requests ${REQUESTS} --rounds ${ROUNDS} --max-tokens ${MAX_TOKENS} ` +
    `--threads ${THREADS} --concurrency ${CONCURRENCY} --parallel-tokens ${PARALLEL_TOKENS} --reps ${REPS}`);
  console.log(`server RSS after loading: ${memory(server.pid).rss.toFixed(0)} MiB\n`);
  console.log('| round | requests | failed | lost | dropped early | p50 ms | p99 ms | requests/s | tokens/s | peak RSS MiB | RSS after MiB |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (let r = 1; r <= ROUNDS; r++) {
    const n = await round(server.url, server.pid, media);
    console.log(`| ${r} | ${n.requests} | ${n.failed} | ${n.lost} | ${n.dropped} | ${n.p50.toFixed(0)} | ${n.p99.toFixed(0)} | ${n.perSecond.toFixed(1)} | ${n.tokensPerSecond.toFixed(0)} | ${n.peakRss.toFixed(0)} | ${n.rssAfter.toFixed(0)} |`);
    if (n.failures.length > 0) console.error(`round ${r} failures: ${n.failures.join('; ')}`);
  }
  await parallelComparison(server.url, engine);
  const peer = await overhead(server.url, engine, 40);
  await engine.dispose();
  console.log(`\nOne text question at a time (median of 40, ${MAX_TOKENS} tokens, greedy): ${peer.http.toFixed(1)} ms through HTTP, ` +
    `${peer.direct.toFixed(1)} ms through the library directly (ratio ${(peer.http / peer.direct).toFixed(2)})`);
} finally {
  console.log(`server exit code after SIGTERM: ${await server.stop()}`);
}
