/**
 * A chat's token latency while encodes run, by encoder thread budget:
 *   vite-node bench/encode-vs-chat.ts <projector.gguf> <video> [encoder threads list (1,2)] [tokens (200)]
 * For each budget: a projector with that many threads encodes the video in a loop while a tiny
 * LLaMA (1 thread) streams a reply; prints the gaps between streamed pieces (median, p95, max,
 * ms) against a baseline without encodes, and the encodes finished per second.
 */
import { cachedTinyLlama } from '../src/dev/tiny-llama.js';
import { Projector } from '../src/projector.js';
import { VideoLlama } from '../src/video-llama.js';

const [projectorFile, video, budgetsText = '1,2', tokensText = '200'] = process.argv.slice(2);
if (!projectorFile || !video) throw new Error('usage: vite-node bench/encode-vs-chat.ts <projector.gguf> <video> [1,2] [tokens]');
const maxTokens = Number(tokensText);

const llama = await VideoLlama.load({ llm: await cachedTinyLlama('.cache'), threads: 1, contextSize: 1024 });

/** Gaps (ms) between the pieces of one streamed reply. */
async function replyGaps(): Promise<number[]> {
  const chat = llama.createChat();
  const gaps: number[] = [];
  let last = performance.now();
  for await (const piece of chat.stream({ text: 'Tell a long story.' }, { maxTokens, temperature: 0 })) {
    void piece;
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }
  await chat.dispose();
  return gaps.slice(1); // the first gap is the prompt's evaluation
}

function summary(gaps: number[]): { median: number; p95: number; max: number; pieces: number } {
  const sorted = [...gaps].sort((a, b) => a - b);
  const at = (q: number): number => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2));
  return { median: at(0.5), p95: at(0.95), max: at(1), pieces: gaps.length };
}

const report: Record<string, unknown> = { baseline: summary(await replyGaps()) };
for (const threads of budgetsText.split(',').map(Number)) {
  const projector = await Projector.load(projectorFile, { threads });
  let running = true;
  let encodes = 0;
  const started = performance.now();
  const loop = (async () => {
    while (running) {
      await projector.encodeVideo(video);
      encodes += 1;
    }
  })();
  const gaps = await replyGaps();
  running = false;
  await loop;
  await projector.dispose();
  report[`encoderThreads${threads}`] = { ...summary(gaps), encodesPerSecond: Number((encodes / ((performance.now() - started) / 1000)).toFixed(2)) };
}
console.log(JSON.stringify(report, null, 2));
await llama.dispose();
