import { createHash } from 'node:crypto';

import { describe, expect, test } from 'vitest';

import { objectAt, renderAudio, renderFrame, renderFrames } from '../../src/world/render.js';
import { makeScene, type Scene } from '../../src/world/scene.js';
import { colourName, findBursts, findObjects, meanCentroid, zeroCrossingFrequency } from '../support/world-checks.js';

/** The first `count` scenes of a seed that match `keep`. */
function pickScenes(seed: number, count: number, keep: (scene: Scene) => boolean): Scene[] {
  const picked: Scene[] = [];
  for (let index = 0; picked.length < count; index++) {
    const scene = makeScene('train', seed, index);
    if (keep(scene)) picked.push(scene);
  }
  return picked;
}

const sha = (bytes: ArrayBufferView): string => createHash('sha256').update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).digest('hex');

describe('renderFrames / renderAudio', () => {
  test('are deterministic: the same scene gives the same bytes, another seed other bytes', () => {
    const [video] = pickScenes(11, 1, (s) => s.kind === 'video' && s.picture!.background.noise > 0);
    const [other] = pickScenes(12, 1, (s) => s.kind === 'video');
    const again = makeScene(video!.split, video!.seed, video!.index);
    const frames = renderFrames(video!);
    expect(sha(renderFrames(again))).toBe(sha(frames));
    expect(sha(renderAudio(again))).toBe(sha(renderAudio(video!)));
    expect(sha(renderFrame(other!, 0))).not.toBe(sha(renderFrame(video!, 0)));
    expect(sha(renderAudio(other!))).not.toBe(sha(renderAudio(video!)));
    const frameBytes = video!.picture!.width * video!.picture!.height * 3;
    expect(sha(renderFrame(video!, 3))).toBe(sha(frames.subarray(3 * frameBytes, 4 * frameBytes)));
  });

  test('frames show the stated number of objects, in the stated colour, moving the stated way', () => {
    for (const scene of pickScenes(21, 40, (s) => s.kind === 'video' || s.kind === 'silent-video' || s.kind === 'image')) {
      const picture = scene.picture!;
      const { width, height } = picture;
      const last = picture.frameCount - 1;
      const first = findObjects(renderFrame(scene, 0), width, height);
      const end = findObjects(renderFrame(scene, last), width, height);
      expect(first.length, scene.id).toBe(picture.objects.length);
      expect(end.length, scene.id).toBe(picture.objects.length);
      for (const found of first) expect(colourName(found.rgb), scene.id).toBe(picture.colour);
      // the pixel at each object's centre has the object's colour (± noise and rounding)
      const frame = renderFrame(scene, 0);
      for (const object of picture.objects) {
        const i = (Math.floor(object.y) * width + Math.floor(object.x)) * 3;
        for (let c = 0; c < 3; c++) expect(Math.abs(frame[i + c]! - Math.min(255, picture.rgb[c]!))).toBeLessThanOrEqual(picture.background.noise + 1);
      }
      // the centroid moves by speed × time in the stated direction (centroids of anti-aliased shapes: ±1 px)
      const a = meanCentroid(first); const b = meanCentroid(end);
      const step = picture.fps > 0 ? picture.speed * last / picture.fps : 0;
      const expected = { left: [-step, 0], right: [step, 0], up: [0, -step], down: [0, step], still: [0, 0] }[picture.motion];
      expect(Math.abs(b.x - a.x - expected[0]!), scene.id).toBeLessThan(1.5);
      expect(Math.abs(b.y - a.y - expected[1]!), scene.id).toBeLessThan(1.5);
      const truth = picture.objects.map((o) => objectAt(picture, o, 0));
      expect(Math.abs(a.x - truth.reduce((s, o) => s + o.x, 0) / truth.length)).toBeLessThan(1.5);
    }
  });

  test('tones have the stated frequency and last the clip; beeps are counted and placed as stated; silence is quiet', () => {
    for (const scene of pickScenes(31, 30, (s) => s.audio !== undefined)) {
      const { sampleRate, sound, noise } = scene.audio!;
      const pcm = renderAudio(scene);
      expect(pcm.length).toBe(Math.round(scene.durationSeconds * sampleRate));
      const bursts = findBursts(pcm, sampleRate);
      if (sound.type === 'silence') {
        expect(bursts).toEqual([]);
        expect(pcm.reduce((peak, v) => Math.max(peak, Math.abs(v)), 0)).toBeLessThanOrEqual(noise);
        continue;
      }
      if (sound.type === 'tone') {
        expect(bursts).toHaveLength(1);
        expect(bursts[0]!.end - bursts[0]!.start).toBeGreaterThan(scene.durationSeconds - 0.05);
      } else {
        expect(bursts.length, scene.id).toBe(sound.beeps.length);
        bursts.forEach((burst, k) => {
          expect(Math.abs(burst.start - sound.beeps[k]!.start)).toBeLessThanOrEqual(0.015);
          expect(Math.abs(burst.end - sound.beeps[k]!.end)).toBeLessThanOrEqual(0.015);
        });
      }
      const measured = zeroCrossingFrequency(pcm, sampleRate, bursts[0]!.start + 0.02, bursts[0]!.end - 0.02);
      expect(Math.abs(measured / sound.frequency - 1), scene.id).toBeLessThan(0.02);
    }
  });

  test('a scene without a picture or sound is INVALID_ARGUMENT', () => {
    const [audio] = pickScenes(41, 1, (s) => s.kind === 'audio');
    const [image] = pickScenes(41, 1, (s) => s.kind === 'image');
    expect(() => renderFrame(audio!, 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => renderAudio(image!)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
