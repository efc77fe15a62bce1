/**
 * What a new user of the API hit (issue 11): threads validated and clamped alike everywhere,
 * gpuLayers without a GPU reported, a throwing onProgress, error details, dispose during an encode.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LlmModel, probe, Projector, VideoLlama } from '../../src/index.js';
import { writeRandomProjector, tinyProjector } from '../../src/dev/random-projector.js';
import { editGguf, tempDir } from '../support/projector-files.js';
import { TINY_SIZES, writeSyntheticProjector } from '../support/synthetic-projector.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';
import { runSupportScriptWithNodeOptions } from '../support/vite-node-process.js';

/** The process warnings `call` emits (they arrive on a later tick). */
async function warningsOf(call: () => Promise<unknown>): Promise<Array<{ name: string; code?: string; message: string }>> {
  const seen: Array<{ name: string; code?: string; message: string }> = [];
  const listener = (warning: Error & { code?: string }): void => void seen.push({ name: warning.name, code: warning.code, message: warning.message });
  process.on('warning', listener);
  try {
    await call();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

let dir: string;
let projectorFile: string;
let llmFile: string;

beforeAll(async () => {
  dir = tempDir('video-llama-contact-api-');
  llmFile = await tinyLlamaFile();
  await using model = await LlmModel.load(llmFile);
  projectorFile = path.join(dir, 'tiny.gguf');
  await writeSyntheticProjector(projectorFile, { ...TINY_SIZES, llm: model.embeddingWidth });
}, 120_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('threads and gpuLayers', () => {
  it('threads is an integer >= 1 for every loader (0 is refused alike)', async () => {
    await expect(Projector.load(projectorFile, { threads: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: /an integer >= 1 for threads but received 0/ });
    await expect(VideoLlama.load({ llm: llmFile, threads: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: /an integer >= 1 for options.threads/ });
    await expect(VideoLlama.load({ llm: llmFile, encoderThreads: 1.5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await using model = await LlmModel.load(llmFile);
    await expect(model.createContext({ threads: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: /an integer >= 1 for options.threads/ });
  });

  it('a huge threads is clamped to twice the hardware threads with a warning, and the objects work', async () => {
    const max = 2 * os.availableParallelism();
    let projector: Projector | undefined;
    const projectorWarnings = await warningsOf(async () => { projector = await Projector.load(projectorFile, { threads: 1e9 }); });
    expect(projectorWarnings).toEqual([{ name: 'VideoLlamaWarning', code: 'VIDEO_LLAMA_THREADS_CLAMPED', message: expect.stringContaining(`threads = 1000000000 is more than twice`) }]);
    expect(projectorWarnings[0]!.message).toContain(`using ${max}`);
    const s = projector!.info.imageSize;
    await expect(projector!.encodeImage({ tensor: new Float32Array(3 * s * s), shape: [3, s, s] })).resolves.toMatchObject({ kind: 'image' });
    await projector!.dispose();

    let llama: VideoLlama | undefined;
    const llamaWarnings = await warningsOf(async () => { llama = await VideoLlama.load({ llm: llmFile, projector: projectorFile, threads: 600, contextSize: 256 }); });
    // clamped once, before the projector and the context get it
    expect(llamaWarnings.map((w) => w.code)).toEqual(600 > max ? ['VIDEO_LLAMA_THREADS_CLAMPED'] : []);
    await using chat = llama!.createChat();
    expect(typeof (await chat.send('Hi', { maxTokens: 2 }))).toBe('string');
    await llama!.dispose();

    await using model = await LlmModel.load(llmFile);
    const contextWarnings = await warningsOf(async () => (await model.createContext({ threads: 1e9, contextSize: 256 })).dispose());
    expect(contextWarnings.map((w) => w.code)).toEqual(['VIDEO_LLAMA_THREADS_CLAMPED']);
  }, 60_000);

  it('gpuLayers with no GPU backend (gpu: false) is reported, not silently accepted', async () => {
    const warnings = await warningsOf(async () => (await LlmModel.load(llmFile, { gpu: false, gpuLayers: 99 })).dispose());
    expect(warnings).toEqual([{ name: 'VideoLlamaWarning', code: 'VIDEO_LLAMA_GPU_LAYERS_IGNORED', message: expect.stringMatching(/gpuLayers = 99 is ignored/) }]);
    expect(await warningsOf(async () => (await LlmModel.load(llmFile, { gpu: false })).dispose())).toEqual([]);
  });
});

describe('a throwing onProgress', () => {
  it('rejects the load or encode with the caller\'s error, never escaping through N-API (the process survives the strict policy)', async () => {
    const out = await runSupportScriptWithNodeOptions('--force-node-api-uncaught-exceptions-policy=true',
      'throwing-progress-process.ts', projectorFile, llmFile);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({
      projectorLoad: 'user error', llmLoad: 'user error', videoLlamaLoad: 'user error', encodeImage: 'user error', encodeAfter: 'resolved',
    });
  }, 120_000);
});

describe('error details', () => {
  it('ABORTED names the operation; INVALID_MODEL from the native loaders names the file', async () => {
    const aborted = AbortSignal.abort();
    await expect(Projector.load(projectorFile, { signal: aborted })).rejects.toMatchObject({ code: 'ABORTED', details: { operation: `Loading ${projectorFile}` } });
    await expect(LlmModel.load(llmFile, { signal: aborted })).rejects.toMatchObject({ code: 'ABORTED', details: { operation: `Loading ${llmFile}` } });
    // a projector is a GGUF but not a language model: libllama's loader refuses it
    await expect(LlmModel.load(projectorFile)).rejects.toMatchObject({ code: 'INVALID_MODEL', details: { file: projectorFile } });
  });
});

describe('dispose during an encode', () => {
  it('stops the running encode (ABORTED) and rejects the queued one (DISPOSED) instead of waiting for them', async () => {
    // a vision tower big enough that one encode takes a while on one thread
    const slowFile = path.join(dir, 'slow.gguf');
    await writeSyntheticProjector(slowFile, {
      ...TINY_SIZES, vit: { imageSize: 224, patch: 14, width: 128, depth: 8, heads: 2, mlp: 512 }, video: { ...TINY_SIZES.video, maxFrames: 8 },
    });
    const projector = await Projector.load(slowFile, { threads: 1 });
    const video = { tensor: new Float32Array(8 * 3 * 224 * 224).fill(0.1), shape: [8, 3, 224, 224] };
    let started = performance.now();
    await projector.encodeVideo(video);
    const whole = performance.now() - started;

    const running = projector.encodeVideo(video).then(() => 'resolved', (e: { code?: string }) => e.code);
    const queued = projector.encodeVideo(video).then(() => 'resolved', (e: { code?: string }) => e.code);
    await new Promise((resolve) => setTimeout(resolve, 20));
    started = performance.now();
    await projector.dispose();
    const disposing = performance.now() - started;
    expect([await running, await queued]).toEqual(['ABORTED', 'DISPOSED']);
    console.log(`one encode ${whole.toFixed(0)} ms; dispose during the next ${disposing.toFixed(0)} ms`);
    expect(disposing).toBeLessThan(whole / 4);
  }, 120_000);
});

describe('non-finite values', () => {
  /** `old` with element `index` replaced by `bits` (a little-endian f32 or f16 bit pattern of `size` bytes). */
  const withBits = (old: Uint8Array, index: number, bits: number, size: 2 | 4): Uint8Array => {
    const copy = Buffer.from(old);
    if (size === 4) copy.writeUInt32LE(bits, index * 4);
    else copy.writeUInt16LE(bits, index * 2);
    return copy;
  };

  it('a projector whose f32 or f16 weights hold NaN or infinity is INVALID_MODEL at load, naming the tensor and element', async () => {
    const nanFile = path.join(dir, 'nan.gguf');
    await editGguf(projectorFile, nanFile, { patchTensor: { name: 'v.blk.0.ln1.weight', bytes: (old) => withBits(old, 3, 0x7fc00000, 4) } });
    await expect(Projector.load(nanFile)).rejects.toMatchObject({
      code: 'INVALID_MODEL', message: /tensor 'v.blk.0.ln1.weight' of .* holds NaN or infinity \(element 3\)/, details: { file: nanFile },
    });
    const f16File = path.join(dir, 'f16.gguf');
    const infFile = path.join(dir, 'inf-f16.gguf');
    await writeRandomProjector(f16File, tinyProjector(16), 'f16');
    await editGguf(f16File, infFile, { patchTensor: { name: 'v.blk.1.ffn_up.weight', bytes: (old) => withBits(old, 5, 0xfc00, 2) } }); // -inf
    await expect(Projector.load(infFile)).rejects.toMatchObject({ code: 'INVALID_MODEL', message: /'v.blk.1.ffn_up.weight' .* \(element 5\)/ });
    await (await Projector.load(f16File)).dispose(); // the file unpatched loads
  }, 60_000);

  it('a non-finite tensor to an encoder and a non-finite MediaEmbedding to a chat are INVALID_ARGUMENT naming the element', async () => {
    await using projector = await Projector.load(projectorFile, { threads: 1 });
    const s = projector.info.imageSize;
    const tensor = new Float32Array(3 * s * s);
    tensor[7] = Infinity;
    await expect(projector.encodeImage({ tensor, shape: [3, s, s] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT', message: 'Expected finite values for image.tensor but element 7 is Infinity', details: { index: 7 },
    });
    await using llama = await VideoLlama.load({ llm: llmFile, threads: 1, contextSize: 256 });
    await using chat = llama.createChat();
    const dim = llama.model.embeddingWidth;
    const data = new Float32Array(2 * dim);
    data[dim + 1] = NaN;
    const media = [{ kind: 'video' as const, tokens: 2, dim, data }];
    await expect(chat.send({ text: 'What is it?', media })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT', message: `Expected finite values for message.media[0].data but element ${dim + 1} is NaN`,
    });
    const streamed = (async () => { for await (const _ of chat.stream({ text: 'And now?', media })); })();
    await expect(streamed).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(chat.history).toEqual([]);
  });
});

describe('docs vs behaviour', () => {
  it('chat.history gives back what was sent: a string stays a string, a message object an object', async () => {
    await using llama = await VideoLlama.load({ llm: llmFile, threads: 1, contextSize: 256, sequences: 2 });
    await using chat = llama.createChat();
    await chat.send('Hello', { maxTokens: 2 });
    await chat.send({ text: 'Again' }, { maxTokens: 2 });
    expect(chat.history.map((turn) => turn.user)).toEqual(['Hello', { text: 'Again', media: [] }]);
    // a history passed back in starts an equal chat
    await using copy = llama.createChat({ history: chat.history });
    expect(copy.history).toEqual(chat.history);
  });

  it('models/presets.json holds only what is documented and used: no conversation template (chats take it from the GGUF)', () => {
    const presets = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'models', 'presets.json'), 'utf8')) as Record<string, object>;
    for (const preset of Object.values(presets)) {
      expect(['branchFileSizesMB', 'checkpointSource', 'checkpoints', 'description', 'llm', 'llmWidth']).toEqual(expect.arrayContaining(Object.keys(preset)));
    }
  });
});

describe('errors that agree with each other', () => {
  const ffmpeg = (...args: string[]): void => void execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);

  it('random bytes ffmpeg reads as text art are not media to any encoder; a cover picture is an image, not a video', async () => {
    await using projector = await Projector.load(projectorFile, { threads: 1 });
    // 4000 bytes named .bin: ffmpeg's bintext demuxer draws them as a 640x400 "video"
    const random = path.join(dir, 'random.bin');
    fs.writeFileSync(random, Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919 + 13) % 251)));
    expect((await probe(random)).kind).toBeUndefined();
    for (const encode of [(f: string) => projector.encodeVideo(f), (f: string) => projector.encodeImage(f), (f: string) => projector.encodeAudio(f), (f: string) => projector.encodeMedia(f)]) {
      await expect(encode(random)).rejects.toMatchObject({
        code: 'MEDIA_DECODE', message: expect.stringMatching(/random\.bin is not a picture, video or audio file: .*\(streams: text bintext\)/),
      });
    }

    const picture = path.join(dir, 'picture.jpg');
    const cover = path.join(dir, 'cover.mp3');
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=64x48', '-frames:v', '1', picture);
    ffmpeg('-f', 'lavfi', '-i', 'sine=duration=2', '-i', picture, '-map', '0:a', '-map', '1:v', '-c:v', 'mjpeg', '-disposition:v', 'attached_pic', cover);
    await expect(projector.encodeVideo(cover)).rejects.toMatchObject({
      code: 'NO_VIDEO_STREAM',
      message: `${cover} has no video stream, only a cover picture (streams: audio mp3, cover picture mjpeg): encodeAudio encodes its sound, encodeImage its picture`,
      details: { file: cover, streams: ['audio mp3', 'cover picture mjpeg'] },
    });
    await expect(projector.encodeImage(cover)).resolves.toMatchObject({ kind: 'image' });
    await expect(projector.encodeAudio(cover)).resolves.toMatchObject({ kind: 'audio' });
    expect((await projector.encodeMedia(cover)).map((e) => e.kind)).toEqual(['audio']);
  }, 60_000);

  it('a wrong shape is shown as an array, a wrong RGB length with the length received, a wrong input with every kind accepted', async () => {
    await using projector = await Projector.load(projectorFile, { threads: 1 });
    await expect(projector.encodeVideo({ tensor: new Float32Array(300), shape: [3, 10, 10] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT', message: expect.stringMatching(/for video\.shape but received \[3, 10, 10\] of type array$/),
    });
    await expect(projector.encodeImage({ rgb: new Uint8Array(5), width: 2, height: 2, frames: 1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT', message: 'Expected a Uint8Array of frames × height × width × 3 = 12 bytes for input.rgb but received a Uint8Array of length 5',
    });
    const kinds = ['file path', 'file: URL', 'allowHttp', 'Uint8Array', 'ArrayBuffer', 'Blob', 'Readable'];
    for (const [encode, own] of [[projector.encodeVideo, ['RGB frames', 'tensor']], [projector.encodeImage, ['RGB frame', 'tensor']], [projector.encodeAudio, ['PCM as a Float32Array', 'fbank tensor']]] as const) {
      const error = await encode.call(projector, {} as never).then(() => undefined, (e: Error) => e);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/for input but received a value of type object$/) });
      for (const kind of [...kinds, ...own]) expect(error!.message).toContain(kind);
    }
  });
});

describe('a file with several audio streams', () => {
  it('audioStream picks one (default the first), checked against the probe', async () => {
    const ffmpeg = (...args: string[]): void => void execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
    const two = path.join(dir, 'two-tracks.mkv');
    const second = path.join(dir, 'second-track.mkv');
    ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000:duration=3', '-f', 'lavfi', '-i', 'sine=frequency=1300:sample_rate=44100:duration=2',
      '-map', '0:a', '-map', '1:a', '-c:a', 'flac', two);
    ffmpeg('-i', two, '-map', '0:a:1', '-c', 'copy', second);

    expect(await probe(two)).toMatchObject({ hasAudio: true, audio: { index: 0, sampleRate: 16000 }, audioSamples: 48_000 });
    expect(await probe(two, { audioStream: 1 })).toMatchObject({ audio: { index: 1, sampleRate: 44100 }, audioSamples: 88_200 });

    await using projector = await Projector.load(projectorFile, { threads: 1 });
    const first = await projector.encodeAudio(two, { clips: 1 });
    const chosen = await projector.encodeAudio(two, { clips: 1, audioStream: 1 });
    expect(chosen.data).toEqual((await projector.encodeAudio(second, { clips: 1 })).data);
    expect(chosen.data).not.toEqual(first.data);
    const [routed] = await projector.encodeMedia(two, { clips: 1, audioStream: 1 });
    expect(routed!.data).toEqual(chosen.data);

    await expect(projector.encodeAudio(two, { audioStream: 2 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT', message: expect.stringMatching(/from 0 to 1 \(streams: audio flac, audio flac\) for options\.audioStream but received 2 of type number$/),
    });
    await expect(projector.encodeAudio(two, { audioStream: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(probe(two, { audioStream: 0.5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  }, 60_000);
});
