/**
 * Encoding never stalls the event loop: decoding a big picture, resizing it, the frames of a
 * video and the fbank of an audio file run in slices or off the main thread. Measured with the
 * event-loop monitor of test/support/event-loop.ts on the inputs of issue 11, through the public
 * encode calls of a projector (a synthetic one: Video-LLaMA's input sizes, tiny widths, so the
 * graphs cost nothing): a 4032×3024 JPEG and an 8000² PNG to `encodeImage`, 8 RGB frames of
 * 1920×1080 to `encodeVideo`, a 4 s mp3 to `encodeAudio`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { Projector } from '../../src/projector.js';
import { describeStall, longestStall } from '../support/event-loop.js';
import { tempDir } from '../support/projector-files.js';
import { TINY_SIZES, writeSyntheticProjector, type SyntheticSizes } from '../support/synthetic-projector.js';

/**
 * Longest stall allowed, in CPU time of the main thread (issue 11). Before: 1 300 – 5 300 ms
 * (resizing at once), then ~150 ms for the photo and ~0.9 s for the 8000² picture (joining
 * ffmpeg's output chunks in one copy).
 */
const MAX_STALL_MS = 50;

/**
 * The bound for the 8000² picture: measured 24, 46 and 53 ms on the loaded 2-core machine. The
 * rest is outside our code: starting ffmpeg (`child_process.spawn`, a fork in Node 20's libuv
 * 1.46) costs the main thread ~8 ms of CPU per 100 MB the process holds — 4–9 ms with nothing
 * held, 17–27 ms with 230 MB, 35–41 ms with 460 MB (a plain Node script spawning `ffmpeg
 * -version`) — and this test process holds the earlier cases' pictures until they are collected.
 */
const MAX_STALL_MS_64_MEGAPIXELS = 80;

/** Video-LLaMA's input sizes (224² frames, 8 frames, 8 clips of 128 × 204 fbank) at tiny widths. */
const SIZES: SyntheticSizes = {
  ...TINY_SIZES,
  vit: { ...TINY_SIZES.vit, imageSize: 224 },
  video: { ...TINY_SIZES.video, maxFrames: 8 },
  audio: { ...TINY_SIZES.audio, maxClips: 8 },
  imagebind: { ...TINY_SIZES.imagebind, melBins: 128, targetFrames: 204 },
};

const dir = tempDir('video-llama-stall-');
const media = {
  photo: path.join(dir, 'photo.jpg'),
  big: path.join(dir, 'big.png'),
  speech: path.join(dir, 'four-seconds.mp3'),
  small: path.join(dir, 'small.jpg'),
};

function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

/** Synthetic RGB frames (a gradient, so the resize has work to do). */
function frames(width: number, height: number, count: number): { rgb: Uint8Array; width: number; height: number; frames: number } {
  const rgb = new Uint8Array(count * width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 7) & 0xff;
  return { rgb, width, height, frames: count };
}

describe('encoding keeps the event loop running', () => {
  let projector: Projector;

  beforeAll(async () => {
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=4032x3024', '-frames:v', '1', '-q:v', '3', media.photo);
    // a flat picture: quick for ffmpeg to write and decode; the stall is about the 192 MB it decodes to
    ffmpeg('-f', 'lavfi', '-i', 'color=c=gray:size=8000x8000', '-frames:v', '1', media.big);
    ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=4:sample_rate=44100', '-ac', '2', media.speech);
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=640x480', '-frames:v', '1', media.small);
    const file = path.join(dir, 'synthetic.gguf');
    await writeSyntheticProjector(file, SIZES);
    projector = await Projector.load(file, { threads: 1 });
    // The first call of each path runs unoptimised code for a while (JIT warm-up, ~70 ms of CPU
    // once per process); the bound is about the steady state.
    await projector.encodeImage(media.small);
    await projector.encodeVideo(frames(640, 480, 8));
    await projector.encodeAudio(media.speech, { clips: 1 });
  }, 300_000);
  afterAll(async () => projector?.dispose());

  test.each([
    ['a 4032×3024 JPEG', () => media.photo, MAX_STALL_MS],
    ['an 8000×8000 PNG', () => media.big, MAX_STALL_MS_64_MEGAPIXELS],
  ])('encodeImage of %s', async (name, file, bound) => {
    const stall = await longestStall(() => projector.encodeImage(file()));
    console.log(`encodeImage of ${name}: longest stall ${describeStall(stall)}`);
    expect(stall.cpuMs).toBeLessThan(bound);
  }, 180_000);

  test('encodeVideo of 8 RGB frames of 1920×1080', async () => {
    const input = frames(1920, 1080, 8);
    const stall = await longestStall(() => projector.encodeVideo(input));
    console.log(`encodeVideo of 8 frames of 1080p: longest stall ${describeStall(stall)}`);
    expect(stall.cpuMs).toBeLessThan(MAX_STALL_MS);
  }, 120_000);

  test('encodeAudio of a 4 s mp3 (44.1 kHz stereo: resampled, then 8 fbank clips)', async () => {
    const stall = await longestStall(() => projector.encodeAudio(media.speech));
    console.log(`encodeAudio of 4 s of mp3: longest stall ${describeStall(stall)}`);
    expect(stall.cpuMs).toBeLessThan(MAX_STALL_MS);
  }, 120_000);
});
