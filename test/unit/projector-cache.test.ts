/**
 * The projector with an EncodeCache (docs/caching.md): a hit skips the encoder, the key resolves
 * defaults and covers every result-changing option, a disk entry serves a new process, a
 * corrupted entry is recomputed; the bounded queue refuses with BUSY.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, expect, it, vi } from 'vitest';

import { EncodeCache } from '../../src/cache/encode-cache.js';
import { fileIdentity } from '../../src/cache/hashing.js';
import type { AddonProjector } from '../../src/bindings/projector.js';
import { VideoLlamaError } from '../../src/errors.js';
import { Projector } from '../../src/projector.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { runSupportScript } from '../support/vite-node-process.js';

/** Runs test/support/cache-projector-process.ts in a new Node process; resolves with its stdout. */
function otherProcess(...args: string[]): Promise<string> {
  return runSupportScript('cache-projector-process.ts', ...args);
}

/** The native projector under a Projector, to count encoder runs. */
function nativeOf(projector: Projector): AddonProjector {
  return (projector as unknown as { native: AddonProjector }).native;
}

describeWithFixtures(TINY_A, 'projector encode cache (tiny-a)', () => {
  const clip = fixture(TINY_A, 'inputs/clip.mp4');
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = tempDir('video-llama-projector-cache-');
    file = await convertFixture(TINY_A, 'f32', dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a hit skips the encoder; defaults are resolved before hashing; other options miss', async () => {
    const cache = new EncodeCache();
    await using projector = await Projector.load(file, { threads: 1, cache });
    const encodeVideo = vi.spyOn(nativeOf(projector), 'encodeVideo');
    const first = await projector.encodeVideo(clip);
    const frames = Math.min(8, projector.info.maxFrames);
    const again = await projector.encodeVideo(fs.readFileSync(clip), { frames });
    expect(encodeVideo).toHaveBeenCalledTimes(1);
    expect(cache.stats).toMatchObject({ misses: 1, memoryHits: 1 });
    expect(again.data).toEqual(first.data);
    expect(again.description).toBe(first.description);
    expect(first.projector).toBe(await fileIdentity(file));
    await projector.encodeVideo(clip, { frames: frames - 1 });
    await projector.encodeImage(clip);
    expect(encodeVideo).toHaveBeenCalledTimes(3);
    expect(cache.stats.misses).toBe(3);
  });

  it('two queued encodes of one file encode once', async () => {
    const cache = new EncodeCache();
    await using projector = await Projector.load(file, { threads: 1, cache });
    const encodeAudio = vi.spyOn(nativeOf(projector), 'encodeAudio');
    const encodeVideo = vi.spyOn(nativeOf(projector), 'encodeVideo');
    const [a, b] = await Promise.all([projector.encodeMedia(clip), projector.encodeMedia(clip)]);
    expect(encodeAudio).toHaveBeenCalledTimes(1);
    expect(encodeVideo).toHaveBeenCalledTimes(1);
    expect(b.map((e) => e.kind)).toEqual(a.map((e) => e.kind));
    expect(b[1]!.data).toEqual(a[1]!.data);
    // audio: false is another result ([video] only): a miss.
    expect((await projector.encodeMedia(clip, { audio: false })).map((e) => e.kind)).toEqual(['video']);
    expect(cache.stats).toMatchObject({ misses: 2, memoryHits: 1 });
  });

  it('a disk entry serves a new process without encoding; a corrupted one is recomputed', async () => {
    const cacheDir = path.join(dir, 'disk');
    const cache = new EncodeCache({ cacheDir });
    let expected: Float32Array;
    {
      await using projector = await Projector.load(file, { threads: 1, cache });
      expected = (await projector.encodeVideo(clip)).data;
    }
    const child = JSON.parse(await otherProcess(file, cacheDir, clip)) as { stats: Record<string, number>; head: number[]; projector: string };
    expect(child.stats).toMatchObject({ diskHits: 1, misses: 0, corrupt: 0 });
    expect(child.head).toEqual(Array.from(expected.subarray(0, 8)));
    expect(child.projector).toBe(await fileIdentity(file));

    const [entry] = fs.readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.vlme'));
    const bytes = fs.readFileSync(path.join(cacheDir, entry!));
    bytes[bytes.length >> 1]! ^= 0x40;
    fs.writeFileSync(path.join(cacheDir, entry!), bytes);
    const fresh = new EncodeCache({ cacheDir });
    await using projector = await Projector.load(file, { threads: 1, cache: fresh });
    const encodeVideo = vi.spyOn(nativeOf(projector), 'encodeVideo');
    const recomputed = await projector.encodeVideo(clip);
    expect(fresh.stats).toMatchObject({ corrupt: 1, misses: 1, diskHits: 0 });
    expect(encodeVideo).toHaveBeenCalledTimes(1);
    expect(recomputed.data).toEqual(expected);
  }, 60_000);

  it('refuses an encode past maxQueuedEncodes with BUSY and the queue length, and takes it once the queue drains', async () => {
    await using projector = await Projector.load(file, { threads: 1, maxQueuedEncodes: 2 });
    const queued = [projector.encodeVideo(clip), projector.encodeAudio(clip)];
    const error = await projector.encodeImage(clip).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(VideoLlamaError);
    expect(error).toMatchObject({ code: 'BUSY', details: { queued: 2, maxQueuedEncodes: 2 } });
    await Promise.all(queued);
    expect((await projector.encodeImage(clip)).kind).toBe('image');
    await expect(Projector.load(file, { maxQueuedEncodes: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describeWithFixtures(TINY_A, 'projector.plan (tiny-a)', () => {
  const clip = fixture(TINY_A, 'inputs/clip.mp4');
  let dir: string;
  let projector: Projector;

  beforeAll(async () => {
    dir = tempDir('video-llama-plan-');
    projector = await Projector.load(await convertFixture(TINY_A, 'f32', dir), { threads: 1 });
  });
  afterAll(async () => {
    await projector.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says what encodeMedia will take without encoding: kind, frame times, positions, FLOP; the estimate after a measured encode', async () => {
    const encodeVideo = vi.spyOn(nativeOf(projector), 'encodeVideo');
    const plan = await projector.plan(clip);
    expect(encodeVideo).not.toHaveBeenCalled();
    expect(plan.kind).toBe('video+audio');
    expect(plan.bytes).toBe(fs.statSync(clip).size);
    expect(plan.estimatedSeconds).toBeUndefined();
    expect(plan.flop).toBeGreaterThan(0);
    const media = await projector.encodeMedia(clip);
    expect(plan.mediaPositions).toBe(media.reduce((n, e) => n + e.tokens, 0));
    // The description names the sampled moments (one decimal); the plan has them before decoding.
    const described = /sampled at ([\d., ]+) seconds/.exec(media[1]!.description!)![1]!.split(', ').map(Number);
    expect(plan.frameTimes.map((t) => Number(t.toFixed(1)))).toEqual(described);
    expect(plan.audioRanges.length).toBeGreaterThan(0);
    expect(plan.audioRanges.at(-1)![1]).toBeLessThanOrEqual(plan.durationSeconds! + 0.05);
    const after = await projector.plan(clip, { audio: false });
    expect(after.kind).toBe('video');
    expect(after.mediaPositions).toBe(projector.info.videoQueries);
    expect(after.estimatedSeconds).toBeGreaterThan(0);
  });

  it('refuses a file over a limit with LIMIT_EXCEEDED naming it; says whether the context fits', async () => {
    for (const [limit, value] of [['maxPixels', 16], ['maxDurationSeconds', 0.5], ['maxUploadBytes', 1000]] as const) {
      await expect(projector.plan(clip, { [limit]: value })).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit } });
    }
    await expect(projector.plan(clip, { maxPixels: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const positions = projector.info.videoQueries + projector.info.audioQueries + 40;
    expect((await projector.plan(clip, { contextSize: positions, promptPositions: 40 })).context).toEqual({ positions, contextSize: positions, fits: true });
    expect((await projector.plan(clip, { contextSize: positions - 1, promptPositions: 40 })).context?.fits).toBe(false);
  });
});
