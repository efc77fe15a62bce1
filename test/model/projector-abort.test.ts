/**
 * Aborting an encode while its graph runs on the CPU: the promise rejects with ABORTED soon after
 * abort(), long before the graph would have finished. The CPU backend polls the flag between graph
 * nodes (and the scheduler's eval callback at every layer end), so the latency is about one node
 * plus the hop back to JavaScript; the test asserts less than one ViT layer's time (median of three).
 */
import path from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { VideoLlamaError } from '../../src/errors.js';
import { loadAddon } from '../../src/native.js';
import { Projector, type TensorInput } from '../../src/projector.js';
import { describeWithFixtures, TINY_A } from '../support/fixtures.js';
import { convertFixture, ggufNumber, tempDir } from '../support/projector-files.js';
import { writeSyntheticProjector, type SyntheticSizes } from '../support/synthetic-projector.js';

/** A vision branch whose ViT layers are each made of several products of similar cost. */
const LARGER: SyntheticSizes = {
  llm: 64,
  vit: { imageSize: 112, patch: 14, width: 256, depth: 6, heads: 4, mlp: 768 },
  qformer: { width: 128, heads: 4, ffn: 256, layers: 2, queries: 8, crossFreq: 2 },
  video: { layers: 1, queries: 8, maxFrames: 8 },
  audio: { layers: 1, queries: 4, maxClips: 2 },
  imagebind: { width: 32, depth: 1, heads: 2, mlp: 64, out: 32, patch: 16, stride: 10, melBins: 32, targetFrames: 32 },
};

/** A video of Video-LLaMA's default 8 frames (fewer if the projector takes fewer), filled with a ramp. */
function defaultVideo(p: Projector): TensorInput {
  const { imageSize: s } = p.info;
  const t = Math.min(8, p.info.maxFrames);
  return { tensor: Float32Array.from({ length: t * 3 * s * s }, (_, i) => ((i % 97) - 48) / 48), shape: [t, 3, s, s] };
}

/** Seconds of a whole encode and of its ViT stage (from the progress events); the faster of two runs. */
async function timeEncode(p: Projector, video: TensorInput): Promise<{ full: number; vit: number }> {
  const runs: { full: number; vit: number }[] = [];
  for (let i = 0; i < 2; i++) {
    const start = performance.now();
    let vit = 0;
    await p.encodeVideo(video, { onProgress: ({ stage }) => { if (stage === 'vit') vit = performance.now() - start; } });
    runs.push({ full: (performance.now() - start) / 1000, vit: vit / 1000 });
  }
  return runs.reduce((a, b) => (a.full < b.full ? a : b));
}

/**
 * Starts an encode, aborts it `delay` seconds later and returns the seconds from abort() to the
 * rejection. If the encode finished first (a busy machine delays timers), tries again sooner.
 */
async function abortLatency(p: Projector, video: TensorInput, delay: number): Promise<number> {
  for (let attempt = 0; attempt < 4; attempt++, delay /= 2) {
    const controller = new AbortController();
    let abortedAt = 0;
    const timer = setTimeout(() => {
      abortedAt = performance.now();
      controller.abort();
    }, delay * 1000);
    const outcome = await p.encodeVideo(video, { signal: controller.signal }).then(() => undefined, (e: unknown) => e);
    const rejectedAt = performance.now();
    clearTimeout(timer);
    if (outcome === undefined) continue;
    expect(outcome).toBeInstanceOf(VideoLlamaError);
    expect((outcome as VideoLlamaError).code).toBe('ABORTED');
    return (rejectedAt - abortedAt) / 1000;
  }
  throw new Error('every encode finished before its abort');
}

/**
 * Aborts encodes at 30, 50 and 70 % of their ViT and checks that the median time to the rejection
 * is less than one ViT layer's (a layer is several products of similar cost: waiting for the
 * layer's end, or for the end of the graph, would take longer). The median: a busy machine can
 * delay any one hop back to JavaScript.
 */
async function expectAbortWithinALayer(label: string, p: Projector, file: string): Promise<void> {
  const video = defaultVideo(p);
  await p.encodeVideo(video);  // warm: buffers allocated
  const { full, vit } = await timeEncode(p, video);
  const layer = vit / ggufNumber(file, 'vl.vision.depth');
  const latencies: number[] = [];
  for (const at of [0.3, 0.5, 0.7]) latencies.push(await abortLatency(p, video, at * vit));
  const median = [...latencies].sort((a, b) => a - b)[1]!;
  const ms = (s: number): string => `${(s * 1e3).toFixed(1)} ms`;
  console.log(`${label}: encode ${ms(full)}, ViT ${ms(vit)}, one ViT layer ${ms(layer)}, ` +
    `abort() to rejection ${latencies.map(ms).join(', ')} (median ${ms(median)})`);
  expect(median).toBeLessThan(layer);
  // and the projector still encodes after an abort
  expect((await p.encodeVideo(video)).tokens).toBe(p.info.videoQueries);
}

describeWithFixtures(TINY_A, 'aborting an encode mid-graph (CPU)', () => {
  const files = { tiny: '', larger: '' };
  let tiny: Projector;
  let larger: Projector;

  beforeAll(async () => {
    const dir = tempDir('video-llama-abort-');
    files.tiny = await convertFixture(TINY_A, 'f32', dir);
    files.larger = path.join(dir, 'larger.gguf');
    await writeSyntheticProjector(files.larger, LARGER);
    tiny = await Projector.load(files.tiny, { threads: 1, gpu: false });
    larger = await Projector.load(files.larger, { threads: 1, gpu: false });
  });
  afterAll(async () => {
    await tiny?.dispose();
    await larger?.dispose();
  });

  it('lands within one ViT layer on the tiny fixture', async () => {
    await expectAbortWithinALayer('tiny-a', tiny, files.tiny);
  });

  it('names the first stage of either branch when the flag is set before the graph runs', async () => {
    type Encode = (tensor: Float32Array, shape: readonly number[], options: object) => Promise<unknown>;
    interface Binding {
      AddonProjector: new (path: string, options: object) => { load(): Promise<void>; encodeVideo: Encode; encodeAudio: Encode; dispose(): void };
      AbortFlag: new () => { abort(): void };
    }
    const { AddonProjector, AbortFlag } = loadAddon<Binding>();
    const native = new AddonProjector(files.tiny, { threads: 1 });
    await native.load();
    const flag = new AbortFlag();
    flag.abort();
    const { imageSize: s, melBins, targetFrames } = tiny.info;
    const video = native.encodeVideo(new Float32Array(3 * s * s), [1, 3, s, s], { abort: flag });
    const audio = native.encodeAudio(new Float32Array(melBins * targetFrames), [1, 1, melBins, targetFrames], { abort: flag });
    // Both handlers attached at once: the audio encode may reject while the video one is awaited.
    await Promise.all([
      expect(video).rejects.toMatchObject({ code: 'ABORTED', message: 'encoding was aborted before vit' }),
      expect(audio).rejects.toMatchObject({ code: 'ABORTED', message: 'encoding was aborted before imagebind' }),
    ]);
    native.dispose();
  });

  it('lands within one ViT layer on a larger synthetic projector', async () => {
    await expectAbortWithinALayer('larger synthetic', larger, files.larger);
  });
});
