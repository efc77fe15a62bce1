/**
 * The world's scenes: a seeded description of one short clip (or image, or sound) whose content is
 * known exactly. Everything here is pure and deterministic: the same (split, seed, index) gives the
 * same {@link Scene} on every machine (a mulberry32 PRNG, no `Math.random`).
 *
 * A scene shows 1–3 objects that share one shape, one colour and one motion (so "What colour is the
 * shape?" has one answer), on a dark background, with silence, a tone or 1–3 beeps.
 * @module
 */
import { invalidArgument } from '../errors.js';

/** The shapes of the world. */
export const SHAPES = ['circle', 'square', 'triangle'] as const;
/** A shape name. */
export type Shape = typeof SHAPES[number];

/** The colours of the world. */
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'white'] as const;
/** A colour name. */
export type Colour = typeof COLOURS[number];

/** The motions of the world (`still` also for every image). */
export const MOTIONS = ['left', 'right', 'up', 'down', 'still'] as const;
/** A motion direction. */
export type Motion = typeof MOTIONS[number];

/** The pitches of tones and beeps. */
export const PITCHES = ['low', 'high'] as const;
/** A pitch name. */
export type Pitch = typeof PITCHES[number];

/** What a sample is: a video with sound, a video without an audio stream, a still image, a sound file. */
export const SCENE_KINDS = ['video', 'silent-video', 'image', 'audio'] as const;
/** A sample kind. */
export type SceneKind = typeof SCENE_KINDS[number];

/**
 * Disjoint families of samples. `train` and `heldout` come from the TypeScript renderer;
 * `other-tool` scenes are drawn by ffmpeg's own filters (see `other-tool.ts`) with other sizes,
 * frame rates and containers.
 */
export const SPLITS = ['train', 'heldout', 'other-tool'] as const;
/** A split name. */
export type Split = typeof SPLITS[number];

/** File formats a scene can be written to (by extension). */
export const CONTAINERS = ['mp4', 'png', 'jpg', 'wav', 'mp3', 'webm', 'mkv', 'avi', 'mov', 'bmp', 'webp', 'flac', 'ogg', 'm4a'] as const;
/** A file format, named by its extension. */
export type Container = typeof CONTAINERS[number];

/** An 8-bit RGB colour. */
export type Rgb = readonly [number, number, number];

/** One object of a scene. All objects of a scene share shape, colour and motion. */
export interface SceneObject {
  /** Centre at time 0, in pixels (x to the right, y down). */
  x: number;
  y: number;
  /** Diameter of the circle the shape is inscribed in, in pixels. */
  size: number;
  /** Rotation of squares and triangles in radians (0: axis-aligned square, triangle pointing up). */
  rotation: number;
}

/** The picture of a scene (absent for sound-only samples). */
export interface ScenePicture {
  /** Frame size in pixels (always even, as yuv420p needs). */
  width: number;
  height: number;
  /** Frames per second (0 for an image). */
  fps: number;
  /** Number of frames (1 for an image). */
  frameCount: number;
  /** Background: a vertical gradient from `top` to `bottom`, plus white noise of ± `noise` levels. */
  background: { top: Rgb; bottom: Rgb; noise: number };
  shape: Shape;
  colour: Colour;
  /** The exact RGB of the objects (a jittered shade of {@link ScenePicture.colour}). */
  rgb: Rgb;
  motion: Motion;
  /** Speed along the motion direction in pixels per second (0 when still). */
  speed: number;
  /** 1–3 objects, in lanes across the motion direction so that they never overlap. */
  objects: SceneObject[];
}

/** One beep: start and end in seconds. */
export interface Beep {
  start: number;
  end: number;
}

/** The sound of a scene. */
export type Sound =
  | { type: 'silence' }
  | { type: 'tone'; pitch: Pitch; frequency: number; amplitude: number; phase: number }
  | { type: 'beeps'; pitch: Pitch; frequency: number; amplitude: number; phase: number; beeps: Beep[] };

/** The audio track of a scene (absent for images and silent videos). */
export interface SceneAudio {
  /** Sample rate in Hz (mono). */
  sampleRate: number;
  sound: Sound;
  /** Peak amplitude of the added white noise (0 = none). */
  noise: number;
}

/** One sample of the world, complete: rendering it needs nothing else. */
export interface Scene {
  /** `<split>-<seed>-<index>`, unique per sample; also the media file's base name. */
  id: string;
  split: Split;
  seed: number;
  index: number;
  /** The seed of this sample's own PRNG stream (see {@link sampleSeed}). */
  sampleSeed: number;
  kind: SceneKind;
  /** The file format it is written to. */
  container: Container;
  /** Length in seconds (frameCount / fps for videos; 0 for images). */
  durationSeconds: number;
  picture?: ScenePicture;
  audio?: SceneAudio;
}

/** The attributes a question can ask about. */
export const ATTRIBUTES = ['colour', 'shape', 'count', 'motion', 'sound', 'pitch', 'beepCount'] as const;
/** An attribute name. */
export type Attribute = typeof ATTRIBUTES[number];

/** The ground truth of a scene: each attribute that applies to it, as the string an answer must name. */
export type SceneFacts = Partial<Record<Attribute, string>>;

/**
 * The attributes that apply to a scene and their values: picture attributes for anything with a
 * picture (motion only for videos), `sound` for anything with an audio track, `pitch` for tones
 * and beeps, `beepCount` for beeps. Counts are digits ("2").
 */
export function sceneFacts(scene: Scene): SceneFacts {
  const facts: SceneFacts = {};
  const { picture, audio } = scene;
  if (picture) {
    facts.colour = picture.colour;
    facts.shape = picture.shape;
    facts.count = String(picture.objects.length);
    if (scene.kind !== 'image') facts.motion = picture.motion;
  }
  if (audio) {
    facts.sound = audio.sound.type;
    if (audio.sound.type !== 'silence') facts.pitch = audio.sound.pitch;
    if (audio.sound.type === 'beeps') facts.beepCount = String(audio.sound.beeps.length);
  }
  return facts;
}

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): tiny, fast, and the same on every platform.
 *
 * @example
 * ```ts
 * const rng = new Rng(42);
 * rng.int(1, 3); // 1, 2 or 3
 * ```
 */
export class Rng {
  private state: number;

  /** @param seed any 32-bit unsigned integer. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform number in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A uniform number in [low, high). */
  range(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** A uniform integer in [low, high] (both included). */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  /** One of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** One of the keys of `weights`, with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as Array<[K, number]>;
    let left = this.next() * entries.reduce((sum, [, w]) => sum + w, 0);
    for (const [key, weight] of entries) {
      left -= weight;
      if (left < 0) return key;
    }
    return entries.at(-1)![0];
  }
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SPLIT_CODES: Readonly<Record<Split, number>> = { 'train': 0, 'heldout': 1, 'other-tool': 2 };

/**
 * The PRNG seed of sample `index` of a dataset: a hash of (seed, index) whose two lowest bits are
 * the split's code. Two splits therefore never share a PRNG stream, whatever seeds and indices are
 * used, so a held-out sample is never a training sample.
 */
export function sampleSeed(split: Split, seed: number, index: number): number {
  const mixed = fmix32(fmix32(seed) ^ fmix32(index + 0x9e3779b9));
  return ((mixed << 2) | SPLIT_CODES[split]) >>> 0;
}

/** The ranges a scene is drawn from. Two profiles exist: the generator's and the other tool's. */
export interface SceneProfile {
  /** Video frame sizes (even). */
  videoSizes: ReadonlyArray<readonly [number, number]>;
  /** Image sizes (even). */
  imageSizes: ReadonlyArray<readonly [number, number]>;
  frameRates: readonly number[];
  /** Clip length range in seconds. */
  duration: readonly [number, number];
  sampleRates: readonly number[];
  kinds: Readonly<Record<SceneKind, number>>;
  containers: Readonly<Record<SceneKind, readonly Container[]>>;
  /** Largest rotation of squares and triangles, radians. */
  maxRotation: number;
  /** Largest background noise, levels. */
  maxNoise: number;
  /** Largest audio noise, peak amplitude. */
  maxAudioNoise: number;
  /** Whether the background may be a vertical gradient (else one colour). */
  gradient: boolean;
}

/** The TypeScript renderer's profile (splits `train` and `heldout`). */
export const GENERATOR_PROFILE: SceneProfile = {
  videoSizes: [[160, 120], [192, 144], [224, 224], [256, 192], [240, 160], [320, 240], [288, 216], [200, 200]],
  imageSizes: [[224, 224], [256, 256], [320, 240], [240, 320], [384, 288], [160, 160]],
  frameRates: [8, 10, 12, 15, 24, 25, 30],
  duration: [1.6, 3.0],
  sampleRates: [16000, 48000],
  kinds: { 'video': 0.5, 'silent-video': 0.15, 'image': 0.15, 'audio': 0.2 },
  containers: { 'video': ['mp4'], 'silent-video': ['mp4'], 'image': ['png', 'jpg'], 'audio': ['wav', 'mp3'] },
  maxRotation: 0.26,
  maxNoise: 12,
  maxAudioNoise: 0.01,
  gradient: true,
};

/** The profile of clips drawn by ffmpeg's filters (split `other-tool`): other sizes, rates and containers. */
export const OTHER_TOOL_PROFILE: SceneProfile = {
  videoSizes: [[176, 144], [352, 288], [400, 300], [180, 180], [420, 236]],
  imageSizes: [[300, 300], [352, 288], [176, 144], [500, 280]],
  frameRates: [6, 12.5, 20, 50],
  duration: [1.6, 3.0],
  sampleRates: [22050, 32000, 44100],
  kinds: { 'video': 0.5, 'silent-video': 0.15, 'image': 0.15, 'audio': 0.2 },
  containers: {
    'video': ['webm', 'mkv', 'avi', 'mov'],
    'silent-video': ['webm', 'mkv', 'avi'],
    'image': ['bmp', 'webp', 'jpg'],
    'audio': ['flac', 'ogg', 'm4a'],
  },
  maxRotation: 0,
  maxNoise: 10,
  maxAudioNoise: 0,
  gradient: false,
};

/** Channel ranges of each colour: shades vary per scene so that no single RGB value means "red". */
const COLOUR_RANGES: Readonly<Record<Colour, readonly [readonly [number, number], readonly [number, number], readonly [number, number]]>> = {
  red: [[200, 255], [0, 60], [0, 60]],
  green: [[0, 70], [170, 255], [0, 80]],
  blue: [[0, 60], [40, 110], [200, 255]],
  yellow: [[210, 255], [200, 255], [0, 70]],
  white: [[220, 255], [220, 255], [220, 255]],
};

/** Background channels stay at or below this level, far from every object colour's bright channel. */
const BACKGROUND_MAX = 85;

/** Low tones and high tones, Hz: two octaves apart at least. */
const PITCH_RANGES: Readonly<Record<Pitch, readonly [number, number]>> = { low: [220, 400], high: [1000, 1800] };

/**
 * The scene of sample `index` of the dataset (split, seed): deterministic, and drawn from
 * {@link OTHER_TOOL_PROFILE} for the `other-tool` split, {@link GENERATOR_PROFILE} otherwise.
 *
 * @example
 * ```ts
 * const scene = makeScene('train', 1, 0);
 * scene.picture?.colour; // e.g. 'red'
 * ```
 * @throws VideoLlamaError `INVALID_ARGUMENT` for an unknown split, a seed that is not a 32-bit
 *   unsigned integer or a negative index.
 */
export function makeScene(split: Split, seed: number, index: number): Scene {
  validateSplit(split);
  validateSeed(seed);
  if (!Number.isSafeInteger(index) || index < 0) throw invalidArgument('index', 'an integer ≥ 0', index);
  const profile = split === 'other-tool' ? OTHER_TOOL_PROFILE : GENERATOR_PROFILE;
  const ownSeed = sampleSeed(split, seed, index);
  const rng = new Rng(ownSeed);
  const kind = rng.weighted(profile.kinds);
  const container = rng.pick(profile.containers[kind]);
  const durationSeconds = kind === 'image' ? 0 : round(rng.range(...profile.duration), 3);
  const scene: Scene = { id: `${split}-${seed}-${index}`, split, seed, index, sampleSeed: ownSeed, kind, container, durationSeconds };
  if (kind !== 'audio') {
    scene.picture = makePicture(rng, profile, kind === 'image', durationSeconds);
    if (kind !== 'image') scene.durationSeconds = scene.picture.frameCount / scene.picture.fps;
  }
  if (kind === 'video' || kind === 'audio') scene.audio = makeAudio(rng, profile, kind === 'audio', scene.durationSeconds);
  return scene;
}

/** Throws `INVALID_ARGUMENT` unless `split` is one of {@link SPLITS}. @internal */
export function validateSplit(split: unknown): asserts split is Split {
  if (!SPLITS.includes(split as Split)) throw invalidArgument('split', `one of ${SPLITS.join(', ')}`, split);
}

/** Throws `INVALID_ARGUMENT` unless `seed` is an integer in [0, 2³²). @internal */
export function validateSeed(seed: unknown): asserts seed is number {
  if (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) > 0xffffffff) {
    throw invalidArgument('seed', 'an integer in [0, 4294967295]', seed);
  }
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function makePicture(rng: Rng, profile: SceneProfile, still: boolean, durationSeconds: number): ScenePicture {
  const [width, height] = rng.pick(still ? profile.imageSizes : profile.videoSizes);
  const fps = still ? 0 : rng.pick(profile.frameRates);
  const frameCount = still ? 1 : Math.max(2, Math.round(durationSeconds * fps));
  const seconds = still ? 0 : frameCount / fps;
  const shape = rng.pick(SHAPES);
  const colour = rng.pick(COLOURS);
  const rgb = COLOUR_RANGES[colour].map(([low, high]) => rng.int(low, high)) as unknown as Rgb;
  const top = darkColour(rng);
  const background = { top, bottom: profile.gradient && rng.next() < 0.5 ? darkColour(rng) : top, noise: rng.int(0, profile.maxNoise) };
  const motion: Motion = still ? 'still' : rng.pick(MOTIONS);
  const count = rng.int(1, 3);
  const { objects, travel } = layOut(rng, profile, width, height, motion, count);
  return {
    width, height, fps, frameCount, background, shape, colour, rgb, motion,
    speed: seconds > 0 ? round(travel / seconds, 3) : 0, objects,
  };
}

function darkColour(rng: Rng): Rgb {
  return [rng.int(0, BACKGROUND_MAX), rng.int(0, BACKGROUND_MAX), rng.int(0, BACKGROUND_MAX)];
}

/**
 * Places `count` objects in lanes across the motion direction (one object per lane, so they never
 * touch), each starting where its whole path stays inside the frame. Returns the distance travelled
 * over the clip: 25–45 % of the frame along the motion.
 */
function layOut(rng: Rng, profile: SceneProfile, width: number, height: number, motion: Motion, count: number):
{ objects: SceneObject[]; travel: number } {
  const horizontal = motion === 'left' || motion === 'right' || (motion === 'still' && rng.next() < 0.5);
  const along = horizontal ? width : height;
  const across = horizontal ? height : width;
  const travel = motion === 'still' ? 0 : round(rng.range(0.25, 0.45) * along, 1);
  const lane = across / count;
  const maxSize = Math.min(lane * 0.85, along - travel - 4);
  const backwards = motion === 'left' || motion === 'up';
  const objects: SceneObject[] = [];
  for (let k = 0; k < count; k++) {
    const size = round(Math.max(12, rng.range(0.55, 0.9) * maxSize), 1);
    const acrossCentre = lane * (k + 0.5) + rng.range(-0.4, 0.4) * Math.max(0, lane - size);
    let alongCentre = rng.range(size / 2 + 2, along - travel - size / 2 - 2);
    if (backwards) alongCentre += travel; // ends where a forward object would start
    const x = round(horizontal ? alongCentre : acrossCentre, 2);
    const y = round(horizontal ? acrossCentre : alongCentre, 2);
    objects.push({ x, y, size, rotation: round(rng.range(-profile.maxRotation, profile.maxRotation), 3) });
  }
  return { objects, travel };
}

function makeAudio(rng: Rng, profile: SceneProfile, soundOnly: boolean, durationSeconds: number): SceneAudio {
  const sampleRate = rng.pick(profile.sampleRates);
  // a sound file always sounds; a video's track may be silent
  const type = rng.weighted<Sound['type']>({ silence: soundOnly ? 0 : 1, tone: 2, beeps: 2 });
  const noise = round(rng.range(0, profile.maxAudioNoise), 4);
  if (type === 'silence') return { sampleRate, sound: { type }, noise };
  const pitch = rng.pick(PITCHES);
  const frequency = round(rng.range(...PITCH_RANGES[pitch]), 1);
  const amplitude = round(rng.range(0.25, 0.6), 3);
  const phase = round(rng.range(0, 2 * Math.PI), 3);
  if (type === 'tone') return { sampleRate, sound: { type, pitch, frequency, amplitude, phase }, noise };
  return { sampleRate, sound: { type, pitch, frequency, amplitude, phase, beeps: layOutBeeps(rng, durationSeconds) }, noise };
}

/** 1–3 beeps of 0.12–0.25 s with gaps of 0.15–0.3 s, starting at a random time, all inside the clip. */
function layOutBeeps(rng: Rng, durationSeconds: number): Beep[] {
  const count = rng.int(1, 3);
  const length = rng.range(0.12, 0.25);
  const gap = rng.range(0.15, 0.3);
  const total = count * length + (count - 1) * gap;
  const start = rng.range(0.1, Math.max(0.1, durationSeconds - total - 0.1));
  return Array.from({ length: count }, (_, k) => {
    const begin = round(start + k * (length + gap), 4);
    return { start: begin, end: round(begin + length, 4) };
  });
}
