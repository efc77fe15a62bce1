/**
 * Rendering a {@link Scene} in pure TypeScript: RGB frames with anti-aliased shapes and optional
 * background noise, and mono PCM with faded tones and beeps. Deterministic: the noise comes from
 * PRNG streams seeded by the scene, so the same scene always gives the same bytes.
 * @module
 */
import { invalidArgument } from '../errors.js';
import { Rng, type Scene, type SceneObject, type ScenePicture, type Shape, type Sound } from './scene.js';

/** Fade-in and fade-out of a tone, seconds (no click at either end). */
const TONE_FADE_SECONDS = 0.02;
/** Fade of each beep, seconds. */
const BEEP_FADE_SECONDS = 0.005;

/** A sound that is not silence. */
type AudibleSound = Exclude<Sound, { type: 'silence' }>;

/** A convex polygon as half-planes: a point p is inside by `nx·px + ny·py − d` (≥ 0 inside), per edge. */
type HalfPlanes = Array<{ nx: number; ny: number; d: number }>;

/**
 * Frame `frameIndex` of a scene's picture as `height × width × 3` RGB bytes (row-major). Shapes are
 * anti-aliased by their coverage of each pixel (signed distance ± half a pixel); the background is
 * a vertical gradient with white noise added after the shapes are drawn.
 *
 * @example
 * ```ts
 * const scene = makeScene('train', 1, 0);
 * if (scene.picture) renderFrame(scene, 0); // Uint8Array of width*height*3
 * ```
 * @param out reused as the output when given (width·height·3 bytes).
 */
export function renderFrame(scene: Scene, frameIndex: number, out?: Uint8Array): Uint8Array {
  return new FrameRenderer(scene).render(frameIndex, out);
}

/**
 * Every frame of a scene's picture, one after the other (`frameCount × height × width × 3` bytes).
 * {@link frameSequence} gives them one at a time.
 */
export function renderFrames(scene: Scene): Uint8Array {
  const renderer = new FrameRenderer(scene);
  const frameBytes = renderer.frameBytes;
  const all = new Uint8Array(renderer.picture.frameCount * frameBytes);
  for (let t = 0; t < renderer.picture.frameCount; t++) renderer.render(t, all.subarray(t * frameBytes, (t + 1) * frameBytes));
  return all;
}

/** The frames of a scene's picture one at a time (each a new `height × width × 3` array). */
export function* frameSequence(scene: Scene): Generator<Uint8Array> {
  const renderer = new FrameRenderer(scene);
  for (let t = 0; t < renderer.picture.frameCount; t++) yield renderer.render(t);
}

/** Renders the frames of one scene, keeping its background and a scratch buffer between frames. */
class FrameRenderer {
  readonly picture: ScenePicture;
  readonly frameBytes: number;
  private readonly background: Float32Array;
  private readonly scratch: Float32Array;

  constructor(private readonly scene: Scene) {
    this.picture = requirePicture(scene);
    this.frameBytes = this.picture.width * this.picture.height * 3;
    this.background = new Float32Array(this.frameBytes);
    fillBackground(this.picture, this.background);
    this.scratch = new Float32Array(this.frameBytes);
  }

  render(frameIndex: number, out: Uint8Array = new Uint8Array(this.frameBytes)): Uint8Array {
    const { picture, scratch } = this;
    scratch.set(this.background);
    const time = picture.fps > 0 ? frameIndex / picture.fps : 0;
    for (const object of picture.objects) drawObject(picture, objectAt(picture, object, time), scratch);
    const noise = new Rng((this.scene.sampleSeed ^ Math.imul(frameIndex + 1, 0x9e3779b1)) >>> 0);
    addNoiseAndQuantize(scratch, picture.background.noise, noise, out);
    return out;
  }
}

/** Where an object is at `time` seconds: its start moved along the scene's motion. */
export function objectAt(picture: ScenePicture, object: SceneObject, time: number): SceneObject {
  const step = picture.speed * time;
  switch (picture.motion) {
    case 'left': return { ...object, x: object.x - step };
    case 'right': return { ...object, x: object.x + step };
    case 'up': return { ...object, y: object.y - step };
    case 'down': return { ...object, y: object.y + step };
    case 'still': return object;
  }
}

function requirePicture(scene: Scene): ScenePicture {
  if (!scene.picture) throw invalidArgument('scene', 'a scene with a picture (kind video, silent-video or image)', scene.kind);
  return scene.picture;
}

function fillBackground(picture: ScenePicture, target: Float32Array): void {
  const { width, height, background: { top, bottom } } = picture;
  for (let y = 0; y < height; y++) {
    const f = height > 1 ? y / (height - 1) : 0;
    const r = top[0] + (bottom[0] - top[0]) * f;
    const g = top[1] + (bottom[1] - top[1]) * f;
    const b = top[2] + (bottom[2] - top[2]) * f;
    for (let i = y * width * 3, end = i + width * 3; i < end; i += 3) {
      target[i] = r;
      target[i + 1] = g;
      target[i + 2] = b;
    }
  }
}

/** Blends one object into `target` over its bounding box, by coverage. */
function drawObject(picture: ScenePicture, object: SceneObject, target: Float32Array): void {
  const { width, height, rgb } = picture;
  const radius = object.size / 2;
  const coverage = coverageFunction(picture.shape, object);
  const x0 = Math.max(0, Math.floor(object.x - radius - 1));
  const x1 = Math.min(width - 1, Math.ceil(object.x + radius + 1));
  const y0 = Math.max(0, Math.floor(object.y - radius - 1));
  const y1 = Math.min(height - 1, Math.ceil(object.y + radius + 1));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const c = coverage(x + 0.5 - object.x, y + 0.5 - object.y);
      if (c <= 0) continue;
      const i = (y * width + x) * 3;
      target[i] = target[i]! + (rgb[0] - target[i]!) * c;
      target[i + 1] = target[i + 1]! + (rgb[1] - target[i + 1]!) * c;
      target[i + 2] = target[i + 2]! + (rgb[2] - target[i + 2]!) * c;
    }
  }
}

/** Coverage in [0, 1] of the pixel whose centre is (dx, dy) from the object's centre. */
function coverageFunction(shape: Shape, object: SceneObject): (dx: number, dy: number) => number {
  const radius = object.size / 2;
  if (shape === 'circle') return (dx, dy) => clamp01(radius - Math.sqrt(dx * dx + dy * dy) + 0.5);
  const planes = polygonHalfPlanes(shape === 'square' ? 4 : 3, radius, object.rotation);
  return (dx, dy) => {
    let inside = Infinity;
    for (const { nx, ny, d } of planes) inside = Math.min(inside, d - nx * dx - ny * dy);
    return clamp01(inside + 0.5);
  };
}

/**
 * The edges of a regular polygon with `sides` vertices on a circle of `radius`, the first vertex
 * straight up (rotated by `rotation`): a triangle points up, a square stands on an edge.
 */
function polygonHalfPlanes(sides: number, radius: number, rotation: number): HalfPlanes {
  const start = -Math.PI / 2 + rotation + (sides === 4 ? Math.PI / 4 : 0);
  const apothem = radius * Math.cos(Math.PI / sides);
  return Array.from({ length: sides }, (_, k) => {
    const normal = start + (2 * k + 1) * Math.PI / sides; // the middle of edge k, away from the centre
    return { nx: Math.cos(normal), ny: Math.sin(normal), d: apothem };
  });
}

function clamp01(value: number): number {
  return value <= 0 ? 0 : value >= 1 ? 1 : value;
}

/**
 * Adds white luminance noise of ± `amplitude` levels (one value per pixel, on all three channels)
 * and writes the rounded, clamped bytes to `out`.
 */
function addNoiseAndQuantize(source: Float32Array, amplitude: number, rng: Rng, out: Uint8Array): void {
  for (let i = 0; i < source.length; i += 3) {
    const n = amplitude === 0 ? 0.5 : (rng.next() * 2 - 1) * amplitude + 0.5; // + 0.5: round, not truncate
    out[i] = clampByte(source[i]! + n);
    out[i + 1] = clampByte(source[i + 1]! + n);
    out[i + 2] = clampByte(source[i + 2]! + n);
  }
}

function clampByte(value: number): number {
  return value <= 0 ? 0 : value >= 255 ? 255 : value | 0;
}

/**
 * A scene's sound as mono float PCM at `scene.audio.sampleRate`, `round(duration × rate)` samples:
 * a tone over the whole clip (20 ms fades), beeps (5 ms fades) or silence, plus white noise.
 *
 * @example
 * ```ts
 * const scene = makeScene('train', 1, 3);
 * if (scene.audio) renderAudio(scene); // Float32Array in [-1, 1]
 * ```
 */
export function renderAudio(scene: Scene): Float32Array {
  if (!scene.audio) throw invalidArgument('scene', 'a scene with sound (kind video or audio)', scene.kind);
  const { sampleRate, sound, noise } = scene.audio;
  const samples = new Float32Array(Math.round(scene.durationSeconds * sampleRate));
  if (sound.type !== 'silence') {
    for (const [start, end, fade] of soundSpans(sound, scene.durationSeconds)) addSine(samples, sampleRate, sound, start, end, fade);
  }
  const rng = new Rng(scene.sampleSeed ^ 0xa5a5a5a5);
  if (noise > 0) for (let i = 0; i < samples.length; i++) samples[i] = samples[i]! + (rng.next() * 2 - 1) * noise;
  return samples;
}

/** [start, end, fade] in seconds of each sounding part. */
function soundSpans(sound: AudibleSound, durationSeconds: number): Array<[number, number, number]> {
  if (sound.type === 'tone') return [[0, durationSeconds, TONE_FADE_SECONDS]];
  return sound.beeps.map((beep) => [beep.start, beep.end, BEEP_FADE_SECONDS]);
}

/** Adds the sound's sine from `start` to `end` with raised-cosine fades; the phase runs from time 0. */
function addSine(samples: Float32Array, sampleRate: number, sound: AudibleSound,
  start: number, end: number, fade: number): void {
  const first = Math.max(0, Math.round(start * sampleRate));
  const last = Math.min(samples.length, Math.round(end * sampleRate));
  const step = 2 * Math.PI * sound.frequency / sampleRate;
  const fadeSamples = Math.max(1, Math.round(fade * sampleRate));
  for (let i = first; i < last; i++) {
    const edge = Math.min(i - first, last - 1 - i);
    const envelope = edge >= fadeSamples ? 1 : 0.5 - 0.5 * Math.cos(Math.PI * edge / fadeSamples);
    samples[i] = samples[i]! + sound.amplitude * envelope * Math.sin(sound.phase + step * i);
  }
}
