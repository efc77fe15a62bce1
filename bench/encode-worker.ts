/**
 * One benchmark configuration in its own process (so that its peak RSS is its own): loads a
 * projector, times video and audio encodes stage by stage, optionally repeats encodes to watch the
 * RSS, and writes a JSON report. Run by bench/run.ts:
 *   vite-node bench/encode-worker.ts <options JSON> <report path>
 * The parent sets VIDEO_LLAMA_CPU_ISA for the whole process (with avx2, ggml loads its AVX2 CPU
 * variant too); `kernels: 'ggml'` then turns our kernels off for the projector only.
 */
import fs from 'node:fs';
import path from 'node:path';

import { normalSource, randomMatrix } from '../src/dev/random.js';
import { addon } from '../src/bindings/addon.js';
import { Projector, type EncodeProgress, type TensorInput } from '../src/projector.js';

/** What the worker runs. */
export interface WorkerOptions {
  projector: string;
  threads: number;
  frames: number;
  clips: number;
  videoReps: number;
  audioReps: number;
  /** Extra 1-frame video encodes after the timed ones, for the RSS-growth check (0: none). */
  growthCalls: number;
  /** Our kernels (of the instruction sets VIDEO_LLAMA_CPU_ISA allows) or ggml's only. */
  kernels: 'own' | 'ggml';
  /** Where the last video and audio embeddings are written (`<outPrefix>-video.f32`, `-audio.f32`). */
  outPrefix: string;
}

/** One timed encode: wall time, each stage's, and the process's CPU time (all threads: what a shared machine does not distort). */
export interface EncodeTiming {
  seconds: number;
  stages: Record<string, number>;
  cpuSeconds: number;
}

/** What the worker reports. */
export interface WorkerReport {
  loadSeconds: number;
  backend: string;
  ownKernelLayers: number;
  weightBytes: number;
  computeBytes: number;
  video: EncodeTiming[];
  audio: EncodeTiming[];
  rssBeforeLoad: number;
  rssAfterLoad: number;
  /** RSS after the 10th and the last growth call (0 when not run). */
  rssGrowth: { calls: number; after10: number; afterAll: number };
  peakRss: number;
}

/** Runs `encode` once, timing each stage from the progress events. */
async function timed(encode: (onProgress: (p: EncodeProgress) => void) => Promise<unknown>): Promise<EncodeTiming> {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let last = start;
  const stages: Record<string, number> = {};
  await encode((p) => {
    const now = performance.now();
    stages[p.stage] = (now - last) / 1000;
    last = now;
  });
  const cpu = process.cpuUsage(cpuStart);
  return { seconds: (performance.now() - start) / 1000, stages, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** RSS after a full garbage collection (when the process runs with --expose-gc). */
function settledRss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

function writeF32(file: string, data: Float32Array): void {
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2]!) as WorkerOptions;
  const reportPath = process.argv[3]!;
  addon(); // ggml's backends are chosen now, under the parent's VIDEO_LLAMA_CPU_ISA
  if (options.kernels === 'ggml') process.env.VIDEO_LLAMA_CPU_ISA = 'none'; // read by Projector.load
  const rssBeforeLoad = process.memoryUsage().rss;
  const loadStart = performance.now();
  const projector = await Projector.load(options.projector, { threads: options.threads });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const rssAfterLoad = process.memoryUsage().rss;
  const { imageSize, melBins, targetFrames } = projector.info;

  // Normalised inputs are roughly standard normal; the same seed gives every configuration the same input.
  const normal = normalSource(7);
  const video: TensorInput = { tensor: randomMatrix(normal, options.frames * 3 * imageSize * imageSize, 1), shape: [options.frames, 3, imageSize, imageSize] };
  const audio: TensorInput = { tensor: randomMatrix(normal, options.clips * melBins * targetFrames, 1), shape: [options.clips, 1, melBins, targetFrames] };

  const videoTimes: EncodeTiming[] = [];
  let videoOut: Float32Array | undefined;
  for (let i = 0; i < options.videoReps; i++) {
    videoTimes.push(await timed(async (onProgress) => { videoOut = (await projector.encodeVideo(video, { onProgress })).data; }));
  }
  const audioTimes: EncodeTiming[] = [];
  let audioOut: Float32Array | undefined;
  for (let i = 0; i < options.audioReps; i++) {
    audioTimes.push(await timed(async (onProgress) => { audioOut = (await projector.encodeAudio(audio, { onProgress })).data; }));
  }
  if (videoOut) writeF32(`${options.outPrefix}-video.f32`, videoOut);
  if (audioOut) writeF32(`${options.outPrefix}-audio.f32`, audioOut);

  const rssGrowth = { calls: options.growthCalls, after10: 0, afterAll: 0 };
  const oneFrame: TensorInput = { tensor: video.tensor.subarray(0, 3 * imageSize * imageSize), shape: [1, 3, imageSize, imageSize] };
  for (let i = 1; i <= options.growthCalls; i++) {
    await projector.encodeVideo(oneFrame);
    if (i === 10) rssGrowth.after10 = settledRss();
  }
  if (options.growthCalls > 0) rssGrowth.afterAll = settledRss();

  const report: WorkerReport = {
    loadSeconds,
    backend: projector.info.backend,
    ownKernelLayers: projector.info.ownKernelLayers,
    weightBytes: projector.info.weightBytes,
    computeBytes: await projector.computeBytes(),
    video: videoTimes,
    audio: audioTimes,
    rssBeforeLoad,
    rssAfterLoad,
    rssGrowth,
    peakRss: process.resourceUsage().maxRSS * 1024,
  };
  await projector.dispose();
  fs.mkdirSync(path.dirname(reportPath), { recursive: true });
  fs.writeFileSync(reportPath, JSON.stringify(report, null, 2));
}

await main();
