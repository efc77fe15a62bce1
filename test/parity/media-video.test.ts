import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

import { beforeAll, expect, test } from 'vitest';

import { probe } from '../../src/media/index.js';
import { CLIP_MEAN, CLIP_STD, normalizeFrames } from '../../src/processors/normalize.js';
import { BICUBIC, BILINEAR, resizeRgb } from '../../src/processors/resize.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { decodeVideoFrames, loadImageTensor } from '../support/media-path.js';
import { maxAbsDiff, readNpy, readNpyF32 } from '../support/npy.js';

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describeWithFixtures(TINY_A, 'video input path (load_video with decord)', () => {
  const clip = fixture(TINY_A, 'inputs/clip.mp4');
  let expectedFrames: Uint8Array;
  let frameInfo: { indices: number[]; vlen: number; avg_fps: number; normalize_mean: number[]; normalize_std: number[] };

  beforeAll(() => {
    expectedFrames = readNpy(fixture(TINY_A, 'inputs/frames_uint8.npy')).data as Uint8Array;
    frameInfo = JSON.parse(fs.readFileSync(fixture(TINY_A, 'inputs/frame_indices.json'), 'utf8'));
  });

  test('probe finds the h264 video with its frame count and the AAC audio with its sample count', async () => {
    const found = await probe(clip);
    expect(found).toMatchObject({ kind: 'video', hasVideo: true, hasAudio: true, video: { codec: 'h264', width: 320, height: 240 } });
    expect(found.frameCount).toBe(frameInfo.vlen);
    expect(found.audio?.codec).toBe('aac');
    expect(found.audioSamples).toBe(192512); // mono 48 kHz, as ffmpeg decodes it to PCM
  });

  test('same indices, vlen and fps as the original; frames within 2 levels (measured: identical)', async () => {
    const video = await decodeVideoFrames(clip, { frames: 8, size: 224 });
    expect(video.indices).toEqual(frameInfo.indices);
    expect(video.totalFrames).toBe(frameInfo.vlen);
    expect(video.fps).toBe(frameInfo.avg_fps);
    expect(video.rgb.length).toBe(8 * 224 * 224 * 3);
    const maxDiff = maxAbsDiff(video.rgb, expectedFrames);
    const meanDiff = meanAbsDiff(video.rgb, expectedFrames);
    console.log(`decoded frames vs frames_uint8.npy: max |Δ| ${maxDiff}, mean |Δ| ${meanDiff}`);
    // swscale builds differ by ±1 (fixtures README pitfall 12); this ffmpeg reproduces them exactly
    expect(maxDiff).toBeLessThanOrEqual(2);
    expect(meanDiff).toBeLessThan(0.05);
  });

  test('bytes input gives the same frames as the path', async () => {
    const fromPath = await decodeVideoFrames(clip, { frames: 4, size: 112 });
    const fromBytes = await decodeVideoFrames(new Uint8Array(fs.readFileSync(clip)), { frames: 4, size: 112 });
    expect(maxAbsDiff(fromBytes.rgb, fromPath.rgb)).toBe(0);
    expect(fromBytes.indices).toEqual([0, 25, 50, 75]);
  });

  test('normalising frames_uint8.npy reproduces frames.npy within 1e-6 (measured: 0)', () => {
    const tensor = normalizeFrames(expectedFrames, 8, 224, frameInfo.normalize_mean, frameInfo.normalize_std);
    const reference = readNpyF32(fixture(TINY_A, 'inputs/frames.npy'));
    expect(reference.shape).toEqual([8, 3, 224, 224]);
    expect(maxAbsDiff(tensor, reference.data)).toBeLessThanOrEqual(1e-6);
  });

  test('already-decoded 224×224 frames are sampled without resizing', async () => {
    const video = await decodeVideoFrames({ rgb: expectedFrames, width: 224, height: 224, frames: 8 }, { frames: 4 });
    expect(video.indices).toEqual([0, 2, 4, 6]);
    const frameBytes = 224 * 224 * 3;
    video.indices.forEach((index, t) => {
      expect(maxAbsDiff(video.rgb.subarray(t * frameBytes, (t + 1) * frameBytes), expectedFrames.subarray(index * frameBytes, (index + 1) * frameBytes))).toBe(0);
    });
  });

  test('already-decoded frames of another size: the triangle filter is within 2 levels of swscale bilinear (measured 1)', async () => {
    // all 100 frames at 320×240 rgb24, then the same frames scaled by swscale from rgb24 (what a
    // decoder handing us RGB would get from decord's scaler)
    const native = new Uint8Array(execFileSync('ffmpeg', ['-v', 'error', '-i', clip, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 64e6 }));
    const frameBytes = 320 * 240 * 3;
    const frame50 = native.subarray(50 * frameBytes, 51 * frameBytes);
    const swscale = new Uint8Array(execFileSync('ffmpeg', ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '320x240', '-i', '-',
      '-vf', 'scale=224:224:flags=bilinear', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { input: frame50 }));
    const video = await decodeVideoFrames({ rgb: native, width: 320, height: 240, frames: native.length / frameBytes, fps: 25 }, { frames: 8 });
    expect(video.indices).toEqual(frameInfo.indices);
    expect(video.fps).toBe(25);
    const ours = video.rgb.subarray(4 * 224 * 224 * 3, 5 * 224 * 224 * 3); // index 50
    expect(maxAbsDiff(ours, resizeRgb(frame50, 320, 240, 224, 224, BILINEAR))).toBe(0);
    const maxDiff = maxAbsDiff(ours, swscale);
    const meanDiff = meanAbsDiff(ours, swscale);
    console.log(`triangle filter vs swscale bilinear on frame 50: max |Δ| ${maxDiff}, mean |Δ| ${meanDiff}`);
    // on this smooth test picture; on white noise the two differ by up to 7 levels (mean 0.4)
    expect(maxDiff).toBeLessThanOrEqual(2);
    expect(meanDiff).toBeLessThan(0.1);
  });
});

describeWithFixtures(TINY_A, 'image input path (Blip2ImageEvalProcessor)', () => {
  test('a PNG is decoded losslessly, resized with Pillow bicubic and normalised', async () => {
    const clip = fixture(TINY_A, 'inputs/clip.mp4');
    const png = new Uint8Array(execFileSync('ffmpeg', ['-v', 'error', '-i', clip, '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', '-']));
    const raw = new Uint8Array(execFileSync('ffmpeg', ['-v', 'error', '-i', clip, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']));
    const fromFile = await loadImageTensor(png);
    const fromPixels = await loadImageTensor({ rgb: raw, width: 320, height: 240, frames: 1 });
    expect(fromFile.length).toBe(3 * 224 * 224);
    expect(maxAbsDiff(fromFile, fromPixels)).toBe(0);
    const expected = normalizeFrames(resizeRgb(raw, 320, 240, 224, 224, BICUBIC), 1, 224, CLIP_MEAN, CLIP_STD);
    expect(maxAbsDiff(fromFile, expected)).toBe(0);
  });
});
