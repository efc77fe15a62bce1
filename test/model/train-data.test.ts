/**
 * The data side of training: manifests (bad entries by line), the frozen-feature cache (a hit skips
 * the encoder; the features are the projector's stage tensors; media kept as f16 and read lazily)
 * and the examples built from a small world with the tiny LLaMA's own tokenizer.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { AddonProjector } from '../../src/bindings/projector.js';
import { cachedRandomProjector, tinyProjector } from '../../src/dev/random-projector.js';
import { videoTensor, audioTensor } from '../../src/encoders/inputs.js';
import { LlmModel } from '../../src/llm/model.js';
import { Projector } from '../../src/projector.js';
import type { TrainingExample } from '../../src/train/example.js';
import { buildExamples } from '../../src/train/examples.js';
import { FeatureCache } from '../../src/train/features.js';
import { IGNORE_LABEL } from '../../src/train/example.js';
import { BadEntries, ManifestError, readManifest } from '../../src/train/manifest.js';
import { modelTokenizer } from '../../src/train/template.js';
import { manifestRecord } from '../../src/world/dataset.js';
import { sceneFileName, writeSceneFile } from '../../src/world/encode-file.js';
import { makeScene } from '../../src/world/scene.js';
import { tempDir } from '../support/projector-files.js';
import { CACHE_DIR, tinyLlamaFile } from '../support/tiny-llama.js';

/** Samples of world seed 1: two silent videos, a sound, a video with sound, an image. */
const INDICES = [0, 1, 2, 3, 13];
const WIDTH = 96;

let dir: string;
let projector: Projector;
let model: LlmModel;

function writeManifest(name: string, lines: readonly string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const worldLines = (stage: 1 | 2): string[] => INDICES.map((i) => JSON.stringify(manifestRecord(makeScene('train', 1, i), stage)));

beforeAll(async () => {
  dir = tempDir('video-llama-train-data-');
  fs.mkdirSync(path.join(dir, 'media'));
  for (const i of INDICES) {
    const scene = makeScene('train', 1, i);
    await writeSceneFile(scene, path.join(dir, 'media', sceneFileName(scene)));
  }
  fs.writeFileSync(path.join(dir, 'media', 'broken.mp4'), 'not a video at all');
  projector = await Projector.load(await cachedRandomProjector(CACHE_DIR, tinyProjector(WIDTH)), { threads: 1 });
  model = await LlmModel.load(await tinyLlamaFile());
}, 120_000);

afterAll(async () => {
  await projector?.dispose();
  await model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('manifest', () => {
  const lines = () => [
    JSON.stringify({ media: 'media/train-1-0.mp4', caption: 'A red circle.' }),
    '{"media": "media/train-1-0.mp4", "caption": ',
    '',
    JSON.stringify({ media: 'media/nowhere.mp4', caption: 'x' }),
    JSON.stringify({ media: 'media/train-1-0.mp4', caption: '  ' }),
    JSON.stringify({ media: 'media/train-1-0.mp4', text: 'no caption' }),
    JSON.stringify({ id: 'last', media: path.join(dir, 'media/train-1-2.mp3'), caption: 'Two beeps.', kind: 'audio' }),
  ];

  it("'fail' stops at the first bad entry with INVALID_MANIFEST naming its line and problem", async () => {
    const file = writeManifest('fail.jsonl', lines());
    const error = await readManifest(file, { stage: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManifestError);
    expect(error).toMatchObject({ code: 'INVALID_MANIFEST', details: { manifest: file, line: 2, problem: 'malformed-json' } });
    expect((error as Error).message).toMatch(/fail\.jsonl:2: not JSON/);
  });

  it("'skip' keeps the good entries and reports each bad one by line", async () => {
    const file = writeManifest('skip.jsonl', lines());
    const bad = new BadEntries('skip');
    const entries = await readManifest(file, { stage: 1, badEntries: bad });
    expect(entries.map((e) => [e.line, e.id, e.kind])).toEqual([[1, 'skip.jsonl:1', undefined], [7, 'last', 'audio']]);
    expect(entries[0]!.media).toBe(path.join(dir, 'media/train-1-0.mp4'));
    expect(bad.list.map((b) => [b.line, b.problem])).toEqual([[2, 'malformed-json'], [4, 'missing-file'], [5, 'empty-answer'], [6, 'invalid-record']]);
  });

  it('stage 2: an empty answer and a malformed turn are bad entries', async () => {
    const file = writeManifest('stage2-bad.jsonl', [
      JSON.stringify({ media: 'media/train-1-0.mp4', conversation: [{ q: 'What colour?', a: '' }] }),
      JSON.stringify({ media: 'media/train-1-0.mp4', conversation: [{ q: 'What colour?' }] }),
      JSON.stringify({ media: 'media/train-1-0.mp4', conversation: [] }),
      JSON.stringify({ media: 'media/train-1-0.mp4', conversation: [{ q: 'What colour?', a: 'Red.' }] }),
    ]);
    const bad = new BadEntries('skip');
    expect((await readManifest(file, { stage: 2, badEntries: bad })).map((e) => e.line)).toEqual([4]);
    expect(bad.list.map((b) => [b.line, b.problem])).toEqual([[1, 'empty-answer'], [2, 'invalid-record'], [3, 'invalid-record']]);
    await expect(readManifest(path.join(dir, 'absent.jsonl'), { stage: 2 })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});

describe('frozen-feature cache', () => {
  const native = () => (projector as unknown as { native: AddonProjector }).native;

  it('computes the qformer / audio_imagebind stages once; a hit skips the encoder and returns the same values', async () => {
    const cache = new FeatureCache(path.join(dir, 'features-a'));
    const clip = path.join(dir, 'media', 'train-1-3.mp4');
    const encodeVideo = vi.spyOn(native(), 'encodeVideo');
    const encodeAudio = vi.spyOn(native(), 'encodeAudio');
    const video = await cache.features(projector, { media: clip, input: 'video' });
    const audio = await cache.features(projector, { media: clip, input: 'audio' });
    expect(video.shape).toEqual([8, 32, 64]);
    expect(video.units).toBe(8);
    expect(video.description).toMatch(/^The video contains 8 frames sampled at/);
    expect(audio.shape).toEqual([8, 64]);

    // A direct encode's stage tensors: the same numbers.
    const direct = await videoTensor(clip, projector.info, {});
    const { stages } = await projector.encodeWithStages('video', direct.input);
    expect(video.data).toEqual(stages.qformer!.data);
    const directAudio = await audioTensor(clip, projector.info, {});
    expect(audio.data).toEqual((await projector.encodeWithStages('audio', directAudio.input)).stages.audio_imagebind!.data);

    const calls = [encodeVideo.mock.calls.length, encodeAudio.mock.calls.length];
    const again = new FeatureCache(path.join(dir, 'features-a')); // a new process would see the same folder
    const videoAgain = await again.features(projector, { media: clip, input: 'video' });
    expect(videoAgain).toEqual(video);
    expect(await again.features(projector, { media: clip, input: 'audio' })).toEqual(audio);
    expect([encodeVideo.mock.calls.length, encodeAudio.mock.calls.length]).toEqual(calls);
    expect(again.stats).toEqual({ hits: 2, misses: 0, corrupt: 0 });
    expect(cache.stats).toEqual({ hits: 0, misses: 2, corrupt: 0 });

    // Other frames: another entry.
    expect((await again.features(projector, { media: clip, input: 'video', frames: 4 })).shape).toEqual([4, 32, 64]);
    expect(again.stats.misses).toBe(1);
  });

  it('keeps media (stage "media") as f16, read back per call of a lazy entry, without running the encoders', async () => {
    const folder = path.join(dir, 'features-media');
    const cache = new FeatureCache(folder);
    const clip = path.join(dir, 'media', 'train-1-3.mp4');
    const noEncoder = { file: projector.file, info: projector.info, encodeWithStages: () => { throw new Error('the encoder ran'); } } as unknown as Projector;
    const size = projector.info.imageSize;
    for (const [input, tensor] of [['video', await videoTensor(clip, projector.info, {})], ['audio', await audioTensor(clip, projector.info, {})]] as const) {
      const lazy = await cache.lazy(noEncoder, { media: clip, input, stage: 'media' });
      expect(lazy.stage).toBe('media');
      expect(lazy.shape).toEqual(input === 'video' ? [8, 3, size, size] : [8, 1, 128, 204]);
      expect(lazy.shape).toEqual([...tensor.input.shape]);
      const values = await lazy.load();
      // f16: round to nearest, 11 significant bits
      let worst = 0;
      for (let i = 0; i < values.length; i++) {
        const x = tensor.input.tensor[i]!;
        worst = Math.max(worst, Math.abs(values[i]! - x) / Math.max(Math.abs(x), 2 ** -14));
      }
      expect(worst).toBeGreaterThan(0);
      expect(worst).toBeLessThanOrEqual(2 ** -11);
      expect(await lazy.load()).toEqual(values);
    }
    expect(cache.stats).toEqual({ hits: 4, misses: 2, corrupt: 0 });  // each load() a read
    // two bytes a value, and the frozen features' entries of the same clip are other entries
    const files = fs.readdirSync(folder, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    const bytes = files.map((f) => fs.statSync(path.join(f.parentPath, f.name)).size).sort((a, b) => a - b);
    expect(bytes[0]).toBeLessThan(8 * 128 * 204 * 2 + 512);
    expect(bytes[1]).toBeLessThan(8 * 3 * size * size * 2 + 512);
    expect((await cache.features(projector, { media: clip, input: 'audio' })).shape).toEqual([8, 64]);
  });

  it('recomputes a corrupted entry', async () => {
    const folder = path.join(dir, 'features-b');
    const image = path.join(dir, 'media', sceneFileName(makeScene('train', 1, 13)));
    const first = await new FeatureCache(folder).features(projector, { media: image, input: 'image' });
    expect(first.shape).toEqual([1, 32, 64]);
    const [entry] = fs.readdirSync(folder, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    const file = path.join(entry!.parentPath, entry!.name);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 9] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const cache = new FeatureCache(folder);
    expect(await cache.features(projector, { media: image, input: 'image' })).toEqual(first);
    expect(cache.stats).toEqual({ hits: 0, misses: 1, corrupt: 1 });
  });
});

describe('examples', () => {
  const labelled = (example: TrainingExample): number[] => Array.from(example.labels).filter((l) => l !== IGNORE_LABEL);

  it('stage 1: one example per branch the media feeds; the caption + "\\n" is the target', async () => {
    const entries = await readManifest(writeManifest('stage1.jsonl', worldLines(1)), { stage: 1 });
    const examples = await buildExamples({
      stage: 1, entries, tokenizer: modelTokenizer(model), projector, cache: new FeatureCache(path.join(dir, 'features-c')), contextSize: 2048,
    });
    // silent, silent, audio, video+audio, image
    expect(examples.map((e) => [e.branch, e.units])).toEqual([['video', 8], ['video', 8], ['audio', 8], ['video', 8], ['audio', 8], ['video', 1]]);
    const bos = model.tokenize('')[0]!;
    for (const [i, example] of examples.entries()) {
      const entry = entries[[0, 1, 2, 3, 3, 4][i]!]!;
      const queries = example.branch === 'video' ? 32 : 8;
      expect(example.features.length).toBe(example.units * (example.branch === 'video' ? 32 * 64 : 64));
      expect(example.mediaOffset).toBe(1);
      expect(example.tokens[0]).toBe(bos);
      expect(example.tokens.length).toBe(1 + queries + labelled(example).length);
      expect(model.detokenize(labelled(example))).toBe(`${entry.caption!}\n`.slice(0, model.detokenize(labelled(example)).length));
    }
  });

  it('with input "media", examples carry a loader of the cached media instead of features', async () => {
    const entries = await readManifest(writeManifest('stage1-media.jsonl', worldLines(1)), { stage: 1 });
    const examples = await buildExamples({
      stage: 1, entries, tokenizer: modelTokenizer(model), projector, cache: new FeatureCache(path.join(dir, 'features-d')), contextSize: 2048,
      input: { video: 'media' },
    });
    expect(examples.map((e) => [e.branch, e.input, typeof e.features])).toEqual([
      ['video', 'media', 'function'], ['video', 'media', 'function'], ['audio', 'features', 'object'],
      ['video', 'media', 'function'], ['audio', 'features', 'object'], ['video', 'media', 'function'],
    ]);
    const size = projector.info.imageSize;
    const image = examples[5]!;
    expect(image.units).toBe(1);
    expect(((await (image.features as () => Promise<Float32Array>)())).length).toBe(3 * size * size);
  });

  it('stage 2: each branch gets the turns it can perceive, the answers are the targets (vicuna and llama2, original and chat prompts)', async () => {
    const entries = await readManifest(writeManifest('stage2.jsonl', worldLines(2)), { stage: 2 });
    const common = { stage: 2 as const, entries, tokenizer: modelTokenizer(model), projector, cache: new FeatureCache(path.join(dir, 'features-c')), contextSize: 2048 };
    for (const [template, format] of [['vicuna', 'original'], ['llama2', 'original'], ['vicuna', 'chat'], ['llama2', 'chat']] as const) {
      const examples = await buildExamples({ ...common, template, format });
      expect(examples.map((e) => e.branch)).toEqual(['video', 'video', 'audio', 'video', 'audio', 'video']);
      const video = examples[3]!; // train-1-3: a video with sound
      const audio = examples[4]!;
      const target = (e: TrainingExample) => model.detokenize(labelled(e));
      const turns = entries[3]!.conversation!;
      for (const turn of turns) {
        const forVideo = ['colour', 'shape', 'count', 'motion'].includes(turn.attribute!);
        const forAudio = ['sound', 'pitch', 'beepCount'].includes(turn.attribute!);
        expect(target(video).includes(turn.a), `${template} video: ${turn.a}`).toBe(forVideo);
        expect(target(audio).includes(turn.a), `${template} audio: ${turn.a}`).toBe(forAudio);
        // Questions are never targets.
        expect(target(video)).not.toContain(turn.q);
      }
      const prompt = model.detokenize(Array.from(video.tokens.subarray(0, video.mediaOffset)));
      expect(prompt).toContain(template === 'vicuna' ? '###Human: <Video>' : '[INST] <<SYS>>');
      if (format === 'chat') expect(prompt).toContain('You are able to understand the visual content');
      expect(Array.from(video.tokens.subarray(video.mediaOffset, video.mediaOffset + 32))).toEqual(new Array(32).fill(0));
      expect(Array.from(video.labels.subarray(video.mediaOffset, video.mediaOffset + 32))).toEqual(new Array(32).fill(IGNORE_LABEL));
      // The silent video's description question is kept: every fact of it is visual.
      const silent = entries[0]!.conversation!.find((t) => t.attribute === 'description')!;
      expect(target(examples[0]!)).toContain(silent.a);
    }
  });

  it('undecodable media and an over-long prompt are bad entries by line', async () => {
    const lines = [
      JSON.stringify({ media: 'media/broken.mp4', caption: 'Nothing.' }),
      worldLines(1)[2]!,
      JSON.stringify({ media: 'media/train-1-2.mp3', kind: 'audio', caption: 'word '.repeat(40) }),
    ];
    const entries = await readManifest(writeManifest('bad-media.jsonl', lines), { stage: 1 });
    const bad = new BadEntries('skip');
    const options = { stage: 1 as const, entries, tokenizer: modelTokenizer(model), projector, cache: new FeatureCache(path.join(dir, 'features-c')), contextSize: 30 };
    const examples = await buildExamples({ ...options, badEntries: bad, maxTextTokens: 64 });
    expect(examples.length).toBe(1);
    expect(bad.list.map((b) => [b.line, b.problem])).toEqual([[1, 'undecodable-media'], [3, 'too-long']]);
    await expect(buildExamples(options)).rejects.toMatchObject({ code: 'INVALID_MANIFEST', details: { line: 1, problem: 'undecodable-media' } });
  });
});
