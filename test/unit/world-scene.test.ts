import { describe, expect, test } from 'vitest';

import { objectAt } from '../../src/world/render.js';
import {
  COLOURS, GENERATOR_PROFILE, makeScene, MOTIONS, OTHER_TOOL_PROFILE, Rng, SCENE_KINDS, sampleSeed, type Scene, SHAPES, SPLITS,
} from '../../src/world/scene.js';

const scenes = (split: 'train' | 'heldout' | 'other-tool', seed: number, count: number): Scene[] =>
  Array.from({ length: count }, (_, index) => makeScene(split, seed, index));

describe('Rng (mulberry32)', () => {
  test('the same seed gives the same stream, another seed another one', () => {
    const a = new Rng(7); const b = new Rng(7); const c = new Rng(8);
    const streamA = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(streamA);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(streamA);
  });

  test('is uniform on [0, 1): mean and quartiles of 100 000 draws within 1 %', () => {
    const rng = new Rng(123);
    const draws = Array.from({ length: 100_000 }, () => rng.next());
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    expect(draws.reduce((s, v) => s + v, 0) / draws.length).toBeCloseTo(0.5, 2);
    expect(draws.filter((v) => v < 0.25).length / draws.length).toBeCloseTo(0.25, 2);
    const ints = new Set(Array.from({ length: 1000 }, () => rng.int(1, 3)));
    expect([...ints].sort()).toEqual([1, 2, 3]);
  });
});

describe('makeScene', () => {
  test('is deterministic: the same (split, seed, index) gives the same scene', () => {
    expect(makeScene('train', 3, 17)).toEqual(makeScene('train', 3, 17));
    expect(makeScene('train', 3, 17)).not.toEqual(makeScene('train', 3, 18));
    expect(makeScene('train', 3, 17)).not.toEqual(makeScene('train', 4, 17));
  });

  test('splits never share a PRNG stream, nor a scene', () => {
    for (const split of SPLITS) expect(sampleSeed(split, 9, 5) & 3).toBe(SPLITS.indexOf(split));
    // the same seed and indices in each split: no sample seed and no scene content in common
    const content = (scene: Scene): string => JSON.stringify({ ...scene, id: 0, split: 0, sampleSeed: 0 });
    const train = scenes('train', 1, 1500);
    const heldout = scenes('heldout', 1, 1500);
    const trainSeeds = new Set(train.map((s) => s.sampleSeed));
    const trainContent = new Set(train.map(content));
    expect(heldout.filter((s) => trainSeeds.has(s.sampleSeed))).toEqual([]);
    expect(heldout.filter((s) => trainContent.has(content(s)))).toEqual([]);
    expect(new Set(heldout.map((s) => s.id)).size).toBe(1500);
  });

  test('varies every concept and the rendering conditions', () => {
    const all = scenes('train', 2, 600);
    const pictures = all.flatMap((s) => (s.picture ? [s.picture] : []));
    expect(new Set(all.map((s) => s.kind))).toEqual(new Set(SCENE_KINDS));
    expect(new Set(pictures.map((p) => p.shape))).toEqual(new Set(SHAPES));
    expect(new Set(pictures.map((p) => p.colour))).toEqual(new Set(COLOURS));
    expect(new Set(pictures.map((p) => p.motion))).toEqual(new Set(MOTIONS));
    expect(new Set(pictures.map((p) => p.objects.length))).toEqual(new Set([1, 2, 3]));
    expect(new Set(pictures.filter((p) => p.fps > 0).map((p) => p.fps))).toEqual(new Set(GENERATOR_PROFILE.frameRates));
    expect(new Set(pictures.map((p) => `${p.width}x${p.height}`)).size).toBeGreaterThanOrEqual(10);
    expect(new Set(pictures.map((p) => p.rgb.join())).size).toBeGreaterThan(pictures.length * 0.9);
    const sounds = all.flatMap((s) => (s.audio ? [s.audio.sound] : []));
    expect(new Set(sounds.map((s) => s.type))).toEqual(new Set(['silence', 'tone', 'beeps']));
    expect(new Set(sounds.flatMap((s) => (s.type === 'beeps' ? [s.beeps.length] : [])))).toEqual(new Set([1, 2, 3]));
    expect(new Set(all.flatMap((s) => (s.audio ? [s.audio.sampleRate] : [])))).toEqual(new Set([16000, 48000]));
  });

  test('other-tool scenes use their own sizes, rates and containers', () => {
    const all = scenes('other-tool', 2, 300);
    for (const scene of all) {
      expect(OTHER_TOOL_PROFILE.containers[scene.kind]).toContain(scene.container);
      if (scene.picture && scene.kind !== 'image') expect(OTHER_TOOL_PROFILE.frameRates).toContain(scene.picture.fps);
      if (scene.audio) expect(OTHER_TOOL_PROFILE.sampleRates).toContain(scene.audio.sampleRate);
    }
  });

  test('objects stay inside the frame for the whole clip and never overlap; beeps fit in the clip', () => {
    for (const scene of [...scenes('train', 5, 400), ...scenes('other-tool', 5, 200)]) {
      const picture = scene.picture;
      if (picture) {
        expect(picture.width % 2 + picture.height % 2).toBe(0);
        for (const time of [0, scene.durationSeconds]) {
          const objects = picture.objects.map((o) => objectAt(picture, o, time));
          for (const o of objects) {
            expect(o.x - o.size / 2).toBeGreaterThanOrEqual(0);
            expect(o.y - o.size / 2).toBeGreaterThanOrEqual(0);
            expect(o.x + o.size / 2).toBeLessThanOrEqual(picture.width);
            expect(o.y + o.size / 2).toBeLessThanOrEqual(picture.height);
          }
          for (let i = 0; i < objects.length; i++) {
            for (let j = i + 1; j < objects.length; j++) {
              const [a, b] = [objects[i]!, objects[j]!];
              // every shape lies inside its size × size box: the boxes must be apart
              expect(Math.max(Math.abs(a.x - b.x), Math.abs(a.y - b.y))).toBeGreaterThanOrEqual((a.size + b.size) / 2);
            }
          }
        }
        if (picture.motion !== 'still') expect(picture.speed * scene.durationSeconds).toBeGreaterThan(0.24 * Math.min(picture.width, picture.height));
      }
      const sound = scene.audio?.sound;
      if (sound?.type === 'beeps') {
        expect(sound.beeps[0]!.start).toBeGreaterThanOrEqual(0.1);
        expect(sound.beeps.at(-1)!.end).toBeLessThanOrEqual(scene.durationSeconds - 0.1 + 1e-9);
      }
      if (sound && sound.type !== 'silence') {
        expect(sound.frequency).toBeGreaterThanOrEqual(sound.pitch === 'low' ? 220 : 1000);
        expect(sound.frequency).toBeLessThanOrEqual(sound.pitch === 'low' ? 400 : 1800);
      }
    }
  });

  test('bad arguments are INVALID_ARGUMENT', () => {
    for (const [split, seed, index] of [['test', 1, 0], ['train', -1, 0], ['train', 2 ** 32, 0], ['train', 1.5, 0], ['train', 1, -1]] as const) {
      expect(() => makeScene(split as 'train', seed, index)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});
