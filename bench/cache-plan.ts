/**
 * Encode cache hit vs miss latency, and `plan()` time:
 *   vite-node bench/cache-plan.ts <projector.gguf> <video> [long video for plan] [reps (5)]
 * Prints one JSON report: median seconds of an encode without the cache entry (miss), from
 * memory, from disk (a fresh EncodeCache on the same folder), and of plan() on each video.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { EncodeCache } from '../src/cache/encode-cache.js';
import { Projector } from '../src/projector.js';

const [projectorFile, video, longVideo, repsText = '5'] = process.argv.slice(2);
if (!projectorFile || !video) throw new Error('usage: vite-node bench/cache-plan.ts <projector.gguf> <video> [long video] [reps]');
const reps = Number(repsText);

async function median(run: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await run();
    times.push((performance.now() - start) / 1000);
  }
  return times.sort((a, b) => a - b)[reps >> 1]!;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-llama-bench-cache-'));
try {
  let cache = new EncodeCache({ cacheDir: dir });
  const projector = await Projector.load(projectorFile, { threads: 1, cache });
  // The bench swaps the projector's cache to start empty (a miss) or with an empty memory tier (a disk hit).
  const useCache = (next: EncodeCache): void => {
    cache = next;
    (projector as unknown as { limits: { cache: EncodeCache } }).limits.cache = next;
  };
  await projector.encodeVideo(video); // warm up: the projector's identity and buffers
  const miss = await median(() => { useCache(new EncodeCache({ cacheDir: fs.mkdtempSync(path.join(dir, 'miss-')) })); return projector.encodeVideo(video); });
  useCache(new EncodeCache({ cacheDir: dir }));
  await projector.encodeVideo(video);
  const memoryHit = await median(() => projector.encodeVideo(video));
  const diskHit = await median(() => { useCache(new EncodeCache({ cacheDir: dir })); return projector.encodeVideo(video); });
  const planShort = await median(() => projector.plan(video));
  const planLong = longVideo ? await median(() => projector.plan(longVideo)) : undefined;
  const longPlan = longVideo ? await projector.plan(longVideo) : undefined;
  console.log(JSON.stringify({
    reps, miss, memoryHit, diskHit, missOverMemoryHit: miss / memoryHit, missOverDiskHit: miss / diskHit,
    planShort, planLong, longDurationSeconds: longPlan?.durationSeconds, stats: cache.stats,
  }, null, 2));
  await projector.dispose();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
