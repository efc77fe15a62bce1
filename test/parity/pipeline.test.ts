/**
 * The whole pipeline through the public API: media files decoded with ffmpeg, encoded by the
 * converted tiny-a projector, and handed to a chat — compared with the original PyTorch model's
 * outputs where the fixtures have them.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { Projector, VideoLlama, VideoLlamaError, type MediaEmbedding } from '../../src/index.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { maxAbsDiff, readNpy, readNpyF32 } from '../support/npy.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { cli } from '../support/cli.js';
import { GREEDY, loadTinyLlama, tinyLlamaFile } from '../support/tiny-llama.js';
import { observeFfmpegSpawns, runFfmpeg } from '../../src/media/ffmpeg.js';

const clip = fixture(TINY_A, 'inputs/clip.mp4');
const expected = (name: string) => readNpyF32(fixture(TINY_A, `expected/${name}.npy`)).data;

function report(stage: string, diff: number): number {
  console.log(`pipeline ${stage}: maxdiff ${diff.toExponential(2)}`);
  return diff;
}

describeWithFixtures(TINY_A, 'pipeline from media files (tiny-a)', () => {
  const dir = tempDir('vl-pipeline-');
  let projectorFile: string;
  let projector: Projector;

  beforeAll(async () => {
    projectorFile = await convertFixture(TINY_A, 'f32', dir);
    projector = await Projector.load(projectorFile, { threads: 1 });
  });
  afterAll(() => projector?.dispose());

  it('encodes clip.mp4 into the video tokens of the original model (<= 1e-4)', async () => {
    // Our decoded frames equal the fixture's (test/parity/media-video), so the tokens match to f32 precision.
    const video = await projector.encodeVideo(clip);
    expect([video.kind, video.tokens, video.dim]).toEqual(['video', 32, 96]);
    expect(report('video_embeds from clip.mp4', maxAbsDiff(video.data, expected('video_embeds')))).toBeLessThanOrEqual(1e-4);
    expect(video.description).toBe('The video contains 8 frames sampled at 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5 seconds. ');
  });

  it('encodes an image given as decoded RGB pixels into the image tokens of the original model (<= 1e-4)', async () => {
    // expected/image_embeds is frame 0 of the video as a 1-frame video: at 224x224 no resize applies.
    const frames = readNpy(fixture(TINY_A, 'inputs/frames_uint8.npy'));
    const [, height, width] = frames.shape as [number, number, number, number];
    const rgb = (frames.data as Uint8Array).subarray(0, height * width * 3);
    const image = await projector.encodeImage({ rgb, width, height, frames: 1 });
    expect([image.kind, image.tokens]).toEqual(['image', 32]);
    expect(report('image_embeds from RGB pixels', maxAbsDiff(image.data, expected('image_embeds')))).toBeLessThanOrEqual(1e-4);
  });

  it('encodes the audio of audio.wav and of clip.mp4 into the audio tokens of the original model', async () => {
    // audio.wav is the fixture's own input: its fbank matches to 6.5e-4 (in bins at kaldi's log
    // floor only); the tokens then match to ~2e-6.
    const fromWav = await projector.encodeAudio(fixture(TINY_A, 'inputs/audio.wav'));
    expect(report('audio_embeds from audio.wav', maxAbsDiff(fromWav.data, expected('audio_embeds')))).toBeLessThanOrEqual(1e-4);
    // From the mp4, the 48 kHz AAC is resampled by us (torchaudio's resampler) where the fixture's
    // wav was resampled by ffmpeg: the waveforms differ by up to 1.8e-3, visible in near-silent
    // fbank bins; measured 3.8e-3 on the tokens, asserted <= 2e-2.
    const fromMp4 = await projector.encodeAudio(clip);
    expect(report('audio_embeds from clip.mp4', maxAbsDiff(fromMp4.data, expected('audio_embeds')))).toBeLessThanOrEqual(2e-2);
  });

  it('encodeMedia returns [audio, video] for a file with sound and [video] for a silent one', async () => {
    const media = await projector.encodeMedia(clip);
    expect(media.map((m) => m.kind)).toEqual(['audio', 'video']);
    expect(maxAbsDiff(media[1]!.data, expected('video_embeds'))).toBeLessThanOrEqual(1e-4);

    const silent = path.join(dir, 'silent.mp4');
    await runFfmpeg(['-y', '-i', clip, '-an', '-c:v', 'copy', silent], { what: 'removing the audio track' });
    expect((await projector.encodeMedia(silent)).map((m) => m.kind)).toEqual(['video']);
    await expect(projector.encodeAudio(silent)).rejects.toMatchObject({ code: 'NO_AUDIO_STREAM' });
  });

  it('one encodeMedia of a video with sound starts two ffmpeg processes: one probe, one decoding of frames and sound', async () => {
    const spawned: string[][] = [];
    const stop = observeFfmpegSpawns((args) => spawned.push([...args]));
    try {
      expect((await projector.encodeMedia(clip)).map((m) => m.kind)).toEqual(['audio', 'video']);
    } finally {
      stop();
    }
    expect(spawned.filter((args) => args.includes('framecrc'))).toHaveLength(1); // the probe
    expect(spawned.filter((args) => args.includes('rawvideo') && args.includes('f32le'))).toHaveLength(1);
    expect(spawned).toHaveLength(2);
  });

  it('encodeMedia of a still image is [image] (not a video of one picture) and of an audio file [audio]', async () => {
    const png = path.join(dir, 'frame.png');
    await runFfmpeg(['-y', '-i', clip, '-frames:v', '1', png], { what: 'writing a picture' });
    const [image] = await projector.encodeMedia(png);
    expect([image!.kind, image!.tokens]).toEqual(['image', 32]);
    const [audio] = await projector.encodeMedia(fixture(TINY_A, 'inputs/audio.wav'));
    expect(audio!.kind).toBe('audio');
    expect(maxAbsDiff(audio!.data, expected('audio_embeds'))).toBeLessThanOrEqual(1e-4);
  });

  it('rejects a file that is not a video, an empty video and a missing file with clear errors', async () => {
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'this is not a video\n'.repeat(100));
    // ffmpeg's tty demuxer would render text as "video"; that is no media at all, to any encoder.
    await expect(projector.encodeVideo(text)).rejects.toMatchObject({ code: 'MEDIA_DECODE', message: /is not a picture, video or audio file/ });
    const garbage = path.join(dir, 'garbage.mp4');
    fs.writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
    await expect(projector.encodeVideo(garbage)).rejects.toMatchObject({ code: 'MEDIA_DECODE' });
    await expect(projector.encodeVideo(new Uint8Array(0))).rejects.toMatchObject({ code: 'MEDIA_DECODE' });
    await expect(projector.encodeVideo(path.join(dir, 'missing.mp4'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(projector.encodeVideo(clip, { frames: 33 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('chats about a video and its sound with the LLM (soft prompts in the template)', async () => {
    const model = await VideoLlama.load({ llm: await tinyLlamaFile(), projector: projectorFile, threads: 1, contextSize: 1024 });
    try {
      const media: MediaEmbedding[] = await model.encodeMedia(clip);
      const chat = model.createChat({ template: 'llama2' });
      const reply = await chat.send({ text: 'What happens in this video?', media }, { ...GREEDY, maxTokens: 8 });
      expect(reply.length).toBeGreaterThan(0);
      const stats = chat.lastStats!;
      // 32 video + 8 audio vectors plus the template's text tokens were evaluated.
      expect(stats.promptItems).toBeGreaterThan(40);
      expect(stats.generatedTokens).toBe(8);
    } finally {
      await model.dispose();
    }
  });

  it('refuses a projector whose width differs from the LLM and a model without a projector', async () => {
    const narrow = await tinyLlamaFile({ embeddingWidth: 64, heads: 4 });
    const error = await VideoLlama.load({ llm: narrow, projector: projectorFile, threads: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VideoLlamaError);
    expect(error).toMatchObject({ code: 'DIMENSION_MISMATCH' });
    expect((error as Error).message).toMatch(/width 96.*width 64/);

    const textOnly = await loadTinyLlama();
    try {
      await expect(textOnly.encodeVideo(clip)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: /no projector/ });
    } finally {
      await textOnly.dispose();
    }
  });

  it('converts with the CLI and describes clip.mp4 with the CLI, streaming the same answer as the library', async () => {
    const checkpoint = (name: string) => fixture(TINY_A, `checkpoints/${name}`);
    const out = path.join(dir, 'cli-projector.gguf');
    const converted = cli(['convert', '--eva-vit', checkpoint('eva_vit_g.pth'), '--blip2', checkpoint('blip2_pretrained.pth'),
      '--video-branch', checkpoint('VL_finetuned.pth'), '--imagebind', checkpoint('imagebind_huge.pth'),
      '--audio-branch', checkpoint('AL_finetuned.pth'), '--out', out, '--type', 'f32']);
    expect(converted.status, converted.stderr).toBe(0);
    const fromCli = await Projector.load(out, { threads: 1 });
    try {
      expect(maxAbsDiff((await fromCli.encodeVideo(clip)).data, expected('video_embeds'))).toBeLessThanOrEqual(1e-4);
    } finally {
      await fromCli.dispose();
    }

    const llm = await tinyLlamaFile();
    const described = cli(['describe', clip, '--llm', llm, '--projector', out, '--temperature', '0', '--max-tokens', '6', '--threads', '1']);
    expect(described.status, described.stderr).toBe(0);
    expect(described.stderr).toMatch(/encoded audio \+ video in/);
    const model = await VideoLlama.load({ llm, projector: out, threads: 1 });
    try {
      const reply = await model.createChat().send({ text: 'Describe this video in detail.', media: await model.encodeMedia(clip) }, { ...GREEDY, maxTokens: 6 });
      expect(described.stdout).toBe(`${reply}\n`);
    } finally {
      await model.dispose();
    }
  });
});
