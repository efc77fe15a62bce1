/**
 * The out-of-generator test set: scenes of the `other-tool` split drawn by ffmpeg's own filters
 * instead of the TypeScript renderer. The same concepts (shape, colour, count, motion, tone, beeps)
 * come out of another drawing engine: a `color` background, shapes as `geq` alpha masks moved by
 * `overlay` expressions in time (hard edges, squares filling their box, triangles isosceles),
 * `noise` for grain, `sine` for tones and `aevalsrc` for beeps (no fades), written with other
 * sizes, frame rates and containers (webm, mkv, avi, mov, bmp, webp, flac, ogg, m4a).
 * @module
 */
import path from 'node:path';

import { runFfmpeg } from '../media/ffmpeg.js';
import { outputArgs, writeAtomically, writeFailed } from './encode-file.js';
import type { Rgb, Scene, SceneAudio, SceneObject, ScenePicture, Shape } from './scene.js';

/** geq alpha masks of each shape in a W×H sprite (pixel centres at X+0.5, Y+0.5). */
const SHAPE_ALPHA: Readonly<Record<Shape, string>> = {
  circle: '255*lte(hypot(X+0.5-W/2,Y+0.5-H/2),W/2)',
  square: '255',
  triangle: '255*lte(abs(X+0.5-W/2),(Y+0.5)*W/(2*H))', // apex at the top centre, base along the bottom
};

function hex(rgb: Rgb): string {
  return `0x${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

/** ffmpeg expression for an object's centre coordinate at time t (`t` is overlay's time variable). */
function pathExpression(picture: ScenePicture, object: SceneObject, axis: 'x' | 'y'): string {
  const start = object[axis];
  const sign = { left: axis === 'x' ? -1 : 0, right: axis === 'x' ? 1 : 0, up: axis === 'y' ? -1 : 0, down: axis === 'y' ? 1 : 0, still: 0 }[picture.motion];
  return sign === 0 ? `${start}` : `${start}${sign > 0 ? '+' : '-'}${picture.speed}*t`;
}

/** The video part of the filter graph, ending in the output label `[out0]`. */
function pictureGraph(picture: ScenePicture, durationSeconds: number): string {
  const rate = picture.fps > 0 ? picture.fps : 1;
  const seconds = picture.fps > 0 ? durationSeconds : 1;
  const source = (colour: string, width: number, height: number): string => `color=c=${colour}:s=${width}x${height}:r=${rate}:d=${seconds}`;
  const parts = [`${source(hex(picture.background.top), picture.width, picture.height)}[bg]`];
  picture.objects.forEach((object, k) => {
    const side = Math.max(2, Math.round(object.size));
    const [r, g, b] = picture.rgb;
    parts.push(`${source('black', side, side)},format=rgba,geq=r=${r}:g=${g}:b=${b}:a='${SHAPE_ALPHA[picture.shape]}'[s${k}]`);
  });
  let last = 'bg';
  picture.objects.forEach((object, k) => {
    const half = Math.max(2, Math.round(object.size)) / 2;
    const x = `${pathExpression(picture, object, 'x')}-${half}`;
    const y = `${pathExpression(picture, object, 'y')}-${half}`;
    parts.push(`[${last}][s${k}]overlay=x='${x}':y='${y}'[o${k}]`);
    last = `o${k}`;
  });
  const grain = picture.background.noise > 0 ? `noise=alls=${picture.background.noise}:allf=t,` : '';
  parts.push(`[${last}]${grain}format=yuv420p[out0]`);
  return parts.join(';');
}

/** The audio part of the filter graph, ending in the output label `label`. */
function audioGraph(audio: SceneAudio, durationSeconds: number, label: string): string {
  const { sound, sampleRate } = audio;
  switch (sound.type) {
    case 'silence': return `aevalsrc=0:s=${sampleRate}:d=${durationSeconds}[${label}]`;
    // sine's own peak is 1/8
    case 'tone': return `sine=f=${sound.frequency}:r=${sampleRate}:d=${durationSeconds},volume=${sound.amplitude * 8}[${label}]`;
    case 'beeps': {
      const gate = sound.beeps.map((beep) => `between(t,${beep.start},${beep.end})`).join('+');
      return `aevalsrc='${sound.amplitude}*sin(2*PI*${sound.frequency}*t)*(${gate})':s=${sampleRate}:d=${durationSeconds}[${label}]`;
    }
  }
}

/**
 * ffmpeg's arguments that draw a scene with its own filters and write it to `output` in the
 * scene's container. Exposed so that the set can be reproduced with the ffmpeg command line.
 *
 * @example
 * ```ts
 * const args = otherToolArgs(makeScene('other-tool', 1, 0), 'clip.webm'); // ['-f', 'lavfi', '-i', ...]
 * ```
 */
export function otherToolArgs(scene: Scene, output: string): string[] {
  const graphs: string[] = [];
  if (scene.picture) graphs.push(pictureGraph(scene.picture, scene.durationSeconds));
  if (scene.audio) graphs.push(audioGraph(scene.audio, scene.durationSeconds, scene.picture ? 'out1' : 'out0'));
  const frames = scene.picture && scene.kind !== 'image' ? ['-frames:v', String(scene.picture.frameCount)] : [];
  // One lavfi input with both streams rather than -filter_complex: ffmpeg 5.1 does not cut a complex
  // graph's audio into the frame sizes of encoders such as libopus and libvorbis.
  return ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', graphs.join(';'), '-map', '0', ...frames, ...outputArgs(scene), output];
}

/**
 * Writes a scene with ffmpeg's filters (see the module description) instead of the TypeScript
 * renderer. Meant for scenes of the `other-tool` split, whose sizes, rates and containers differ
 * from the generator's; any scene works.
 *
 * @example
 * ```ts
 * const scene = makeScene('other-tool', 1, 0);
 * await writeOtherToolFile(scene, `out/${sceneFileName(scene)}`);
 * ```
 * @throws VideoLlamaError `WRITE_FAILED` (ffmpeg's last message quoted), `FFMPEG_NOT_FOUND`, `ABORTED`.
 */
export async function writeOtherToolFile(scene: Scene, file: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  const what = `drawing ${path.basename(file)} with ffmpeg's filters`;
  await writeAtomically(file, async (partial) => {
    const result = await runFfmpeg(otherToolArgs(scene, partial), { what, signal: options.signal });
    if (result.code !== 0) throw writeFailed(what, file, scene, result);
  });
}
