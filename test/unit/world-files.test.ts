import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, test } from 'vitest';

import { parseCommandArgs } from '../../src/cli/command.js';
import { worldCommand } from '../../src/cli/commands/world.js';
import { MediaSource, probe as probeMedia } from '../../src/media/index.js';
import { uniformFrameIndices } from '../../src/processors/frame-sampling.js';
import { manifestRecord, writeDataset } from '../../src/world/dataset.js';
import { sceneFileName, writeSceneFile } from '../../src/world/encode-file.js';
import { writeOtherToolFile } from '../../src/world/other-tool.js';
import { makeScene, type Scene, type Split } from '../../src/world/scene.js';
import { colourName, findBursts, findObjects, meanCentroid, zeroCrossingFrequency } from '../support/world-checks.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-llama-world-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The first scene of (split, seed) that `keep` accepts, preferring small ones to keep the test fast. */
function findScene(split: Split, keep: (scene: Scene) => boolean): Scene {
  for (let index = 0; ; index++) {
    const scene = makeScene(split, 1, index);
    const small = !scene.picture || scene.kind === 'image' || (scene.picture.width * scene.picture.height * scene.picture.frameCount <= 200 * 200 * 50);
    if (small && keep(scene)) return scene;
  }
}

/** Side of the square frames decoded for the checks. */
const SIDE = 128;

/** Decodes a written file with the library's own decoders and checks it against its scene. */
async function expectFileMatchesScene(scene: Scene, file: string): Promise<void> {
  const probe = await probeMedia(file);
  expect(probe.hasVideo, 'video stream').toBe(scene.picture !== undefined);
  expect(probe.hasAudio, 'audio stream').toBe(scene.audio !== undefined);
  // containers round their duration to a frame (avi at 6 fps: 0.17 s) or to audio packets
  const durationTolerance = 0.1 + (scene.picture && scene.picture.fps > 0 ? 1 / scene.picture.fps : 0);
  if (scene.kind !== 'image') expect(Math.abs(probe.durationSeconds! - scene.durationSeconds), 'duration').toBeLessThan(durationTolerance);
  if (scene.picture) await expectPictureMatches(scene, file, probe.video!.width!, probe.video!.height!);
  if (scene.audio) {
    // opus always runs at 48 kHz; every other codec keeps the scene's rate
    expect(probe.audio!.sampleRate).toBe(scene.container === 'webm' ? 48000 : scene.audio.sampleRate);
    await expectSoundMatches(scene, file);
  }
}

async function expectPictureMatches(scene: Scene, file: string, width: number, height: number): Promise<void> {
  const picture = scene.picture!;
  expect([width, height]).toEqual([picture.width, picture.height]);
  const source = await MediaSource.open(file);
  const totalFrames = source.probe.frameCount ?? 1;
  expect(totalFrames, 'frame count').toBe(picture.frameCount);
  if (scene.kind !== 'image') expect(source.probe.video!.fps).toBeCloseTo(picture.fps, 1);
  const indices = uniformFrameIndices(totalFrames, scene.kind === 'image' ? 1 : 8);
  const rgb = (await source.decode({ frames: { indices, size: SIDE } })).frames!;
  const frameBytes = SIDE * SIDE * 3;
  const firstObjects = findObjects(rgb.subarray(0, frameBytes), SIDE, SIDE);
  const lastObjects = findObjects(rgb.subarray((indices.length - 1) * frameBytes), SIDE, SIDE);
  expect(firstObjects.length, 'objects in the first frame').toBe(picture.objects.length);
  expect(lastObjects.length, 'objects in the last frame').toBe(picture.objects.length);
  for (const found of firstObjects) expect(colourName(found.rgb), 'colour').toBe(picture.colour);
  if (scene.kind === 'image') return;
  const seconds = (indices.at(-1)! - indices[0]!) / picture.fps;
  const step = picture.speed * seconds;
  const expected = { left: [-step, 0], right: [step, 0], up: [0, -step], down: [0, step], still: [0, 0] }[picture.motion];
  const a = meanCentroid(firstObjects); const b = meanCentroid(lastObjects);
  // in the decoded SIDE × SIDE frames; compression moves centroids by a pixel or two
  expect(Math.abs(b.x - a.x - expected[0]! * SIDE / picture.width), 'x motion').toBeLessThan(2.5);
  expect(Math.abs(b.y - a.y - expected[1]! * SIDE / picture.height), 'y motion').toBeLessThan(2.5);
}

async function expectSoundMatches(scene: Scene, file: string): Promise<void> {
  const { sound } = scene.audio!;
  const source = await MediaSource.open(file);
  const rate = source.probe.audio!.sampleRate!;
  const [window] = (await source.decode({ pcm: [{ start: 0, end: source.probe.audioSamples! }] })).pcm!;
  expect(window!.channels).toHaveLength(1);
  const samples = window!.channels[0]!;
  // lossy codecs pad the end to whole packets; mp3 in avi also keeps the encoder's delay (< 0.15 s in all)
  expect(Math.abs(samples.length / rate - scene.durationSeconds), 'audio length').toBeLessThan(0.15);
  const bursts = findBursts(samples, rate);
  if (sound.type === 'silence') {
    expect(bursts).toEqual([]);
    return;
  }
  expect(bursts.length, 'bursts').toBe(sound.type === 'tone' ? 1 : sound.beeps.length);
  if (sound.type === 'beeps') bursts.forEach((burst, k) => expect(Math.abs(burst.start - sound.beeps[k]!.start)).toBeLessThan(0.06));
  const frequency = zeroCrossingFrequency(samples, rate, bursts[0]!.start + 0.03, bursts[0]!.end - 0.03);
  expect(Math.abs(frequency / sound.frequency - 1), 'frequency').toBeLessThan(0.03);
}

/** A test per case: the first small scene of `split` that the case accepts is written by `write`, then checked. */
function testWrittenScenes(split: Split, write: (scene: Scene, file: string) => Promise<void>,
  cases: Array<[string, (s: Scene) => boolean]>): void {
  test.each(cases)('%s', async (_, keep) => {
    const scene = findScene(split, keep);
    const file = path.join(dir, sceneFileName(scene));
    await write(scene, file);
    await expectFileMatchesScene(scene, file);
  });
}

describe('writeSceneFile: the generator\'s files decode back to their scene', () => {
  testWrittenScenes('train', writeSceneFile, [
    ['mp4 video with beeps', (s) => s.kind === 'video' && s.audio!.sound.type === 'beeps'],
    ['mp4 silent video', (s) => s.kind === 'silent-video' && s.picture!.motion !== 'still'],
    ['png image', (s) => s.container === 'png'],
    ['jpg image', (s) => s.container === 'jpg'],
    ['wav sound', (s) => s.container === 'wav'],
    ['mp3 sound', (s) => s.container === 'mp3'],
  ]);

  test('a failing ffmpeg is WRITE_FAILED and leaves no file; an aborted write is ABORTED', async () => {
    const scene = findScene('train', (s) => s.container === 'wav');
    const missing = path.join(dir, 'no-such-folder', 'x.wav');
    await expect(writeSceneFile(scene, missing)).rejects.toMatchObject({ code: 'WRITE_FAILED' });
    expect(fs.existsSync(missing)).toBe(false);
    const aborted = path.join(dir, 'aborted.wav');
    await expect(writeSceneFile(scene, aborted, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(fs.readdirSync(dir).filter((name) => name.includes('aborted'))).toEqual([]);
  });
});

describe('writeOtherToolFile: clips drawn by ffmpeg\'s filters carry the attributes they claim', () => {
  testWrittenScenes('other-tool', writeOtherToolFile, [
    ['video with beeps', (s) => s.kind === 'video' && s.audio!.sound.type === 'beeps' && s.picture!.motion !== 'still'],
    ['video with a tone', (s) => s.kind === 'video' && s.audio!.sound.type === 'tone'],
    ['silent video', (s) => s.kind === 'silent-video'],
    ['image', (s) => s.kind === 'image'],
    ['sound', (s) => s.kind === 'audio'],
  ]);
});

describe('writeDataset', () => {
  test('writes media and manifests, deterministic and resumable', async () => {
    const out = path.join(dir, 'dataset');
    const first = await writeDataset({ out, count: 3, seed: 8, split: 'heldout', concurrency: 2 });
    expect(first).toMatchObject({ written: 3, kept: 0 });
    const manifests = first.manifests.map((file) => fs.readFileSync(file, 'utf8'));
    const scenes = [0, 1, 2].map((index) => makeScene('heldout', 8, index));
    expect(manifests[0]).toBe(scenes.map((s) => `${JSON.stringify(manifestRecord(s, 1))}\n`).join(''));
    expect(manifests[1]).toBe(scenes.map((s) => `${JSON.stringify(manifestRecord(s, 2))}\n`).join(''));
    for (const line of manifests[0]!.trim().split('\n')) {
      const record = JSON.parse(line) as { media: string; kind: string; caption: string };
      expect(fs.statSync(path.join(out, record.media)).size).toBeGreaterThan(0);
      expect(record.caption.length).toBeGreaterThan(5);
    }
    // resume: only the missing file is written again; the manifests come out byte-identical
    fs.rmSync(path.join(out, 'media', sceneFileName(scenes[1]!)));
    const again = await writeDataset({ out, count: 3, seed: 8, split: 'heldout', stages: [1, 2] });
    expect(again).toMatchObject({ written: 1, kept: 2 });
    expect(again.manifests.map((file) => fs.readFileSync(file, 'utf8'))).toEqual(manifests);
    await expect(writeDataset({ out, count: 3, seed: 9, split: 'heldout' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  test('bad options are INVALID_ARGUMENT', async () => {
    const out = path.join(dir, 'bad');
    for (const options of [{ count: 0 }, { count: 1.5 }, { seed: -1 }, { split: 'dev' }, { stages: [3] }, { concurrency: 0 }, { out: '' }]) {
      await expect(writeDataset({ out, count: 1, seed: 1, split: 'train', ...options } as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });

  test('the `world` command writes a dataset and rejects a bad split', async () => {
    const out = path.join(dir, 'cli');
    const run = (args: string[]): Promise<void> => worldCommand.run(parseCommandArgs(worldCommand, args));
    await run(['--out', out, '--count', '2', '--seed', '3', '--split', 'heldout', '--stage', '1', '--concurrency', '2']);
    expect(fs.readFileSync(path.join(out, 'stage1.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(fs.existsSync(path.join(out, 'stage2.jsonl'))).toBe(false);
    for (const bad of [['--split', 'dev'], ['--stage', '3'], ['--count', '0'], ['--seed', 'x'], ['extra']]) {
      await expect(run(['--out', out, '--count', '2', ...bad])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(run(['--count', '2'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
