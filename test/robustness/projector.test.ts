/**
 * The projector with bad files, bad inputs and misuse: every failure is a VideoLlamaError with
 * the right code (never a crash), and repeated encodes do not grow memory.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { VideoLlamaError } from '../../src/errors.js';
import { GgufWriter } from '../../src/gguf/writer.js';
import { addon } from '../../src/bindings/addon.js';
import { Projector, type TensorInput } from '../../src/projector.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { convertFixture, editGguf, tempDir, tensorShape } from '../support/projector-files.js';
import { convertCheckpoints } from '../../src/convert/convert.js';

/** Resolves to the VideoLlamaError a promise rejects with (fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<VideoLlamaError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(VideoLlamaError);
  return error as VideoLlamaError;
}

describeWithFixtures(TINY_A, 'projector robustness (tiny-a)', () => {
  let dir: string;
  let good: string;
  let projector: Projector;
  let video: TensorInput;
  let audio: TensorInput;

  beforeAll(async () => {
    dir = tempDir('video-llama-robustness-');
    good = await convertFixture(TINY_A, 'f32', dir);
    // One thread: timings stay steady on a busy machine (ggml's threads wait for each other at every node).
    projector = await Projector.load(good, { threads: 1 });
    const { imageSize: s, melBins, targetFrames } = projector.info;
    video = { tensor: new Float32Array(2 * 3 * s * s).fill(0.5), shape: [2, 3, s, s] };
    audio = { tensor: new Float32Array(2 * melBins * targetFrames).fill(-0.5), shape: [2, 1, melBins, targetFrames] };
  });
  afterAll(async () => projector?.dispose());

  /** Where an edited copy of the good file goes. */
  const variant = (name: string): string => path.join(dir, name);

  it('rejects a GGUF of another architecture, naming general.architecture', async () => {
    const llm = variant('llm.gguf');
    await new GgufWriter().set('general.architecture', { type: 'string', value: 'llama' })
      .addTensor('token_embd.weight', [8, 4], 'f32', () => new Uint8Array(8 * 4 * 4)).write(llm);
    const error = await rejection(Projector.load(llm));
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toMatch(/general\.architecture is 'llama'/);
  });

  it('rejects a file that is not a GGUF, and a missing file', async () => {
    const text = variant('not.gguf');
    fs.writeFileSync(text, 'this is not a GGUF file at all, just some text padding it out');
    expect((await rejection(Projector.load(text))).code).toBe('INVALID_MODEL');
    expect((await rejection(Projector.load(variant('absent.gguf')))).code).toBe('FILE_NOT_FOUND');
  });

  it('rejects a truncated file', async () => {
    const truncated = variant('truncated.gguf');
    const bytes = fs.readFileSync(good);
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const error = await rejection(Projector.load(truncated));
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toMatch(/truncated/);
  });

  it('names a missing tensor', async () => {
    const file = variant('missing-tensor.gguf');
    await editGguf(good, file, { dropTensor: 'vqf.blk.1.ffn_ln.bias' });
    const error = await rejection(Projector.load(file));
    expect(error.code).toBe('MISSING_TENSOR');
    expect(error.message).toMatch(/'vqf\.blk\.1\.ffn_ln\.bias'/);
  });

  it('names a missing metadata key', async () => {
    const file = variant('missing-key.gguf');
    await editGguf(good, file, { dropKey: 'vl.imagebind.heads' });
    const error = await rejection(Projector.load(file));
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toBe('Key not found: vl.imagebind.heads');
  });

  it('the native loader itself rejects a NaN or negative epsilon and a Q-Former without layers', async () => {
    // Projector.load checks these in TypeScript first; the native loader must hold on its own
    // too (ggml would abort the process on them), so it is called directly here.
    const { AddonProjector } = addon();
    const cases: [string, import('../../src/gguf/writer.js').GgufValue, RegExp][] = [
      ['vl.vision.eps', { type: 'f32', value: Number.NaN }, /expected a finite number/],
      ['vl.qformer.eps', { type: 'f32', value: -1e-6 }, /expected an epsilon >= 0/],
      ['vl.video_qformer.layers', { type: 'u32', value: 0 }, /is 0, expected 1\.\./],
    ];
    for (const [key, value, message] of cases) {
      const file = variant(`native-${key}.gguf`);
      await editGguf(good, file, { setKey: [key, value] });
      const native = new AddonProjector(file, { threads: 1 });
      const error = await native.load().then(() => undefined, (e: unknown) => e as { code: string; message: string });
      native.dispose();
      expect(error, key).toMatchObject({ code: 'INVALID_MODEL', message: expect.stringMatching(message) });
    }
  });

  it('rejects hyper-parameters that no graph can use', async () => {
    const zeroQueries = variant('zero-queries.gguf');
    await editGguf(good, zeroQueries, { setKey: ['vl.audio_qformer.queries', { type: 'u32', value: 0 }] });
    const zero = await rejection(Projector.load(zeroQueries));
    expect(zero.code).toBe('INVALID_MODEL');
    expect(zero.message).toMatch(/^key 'vl\.audio_qformer\.queries' is 0, expected 1\.\./);

    const width = tensorShape(good, 'qf.emb_ln.weight')[0]!;
    const badHeads = variant('bad-heads.gguf');
    await editGguf(good, badHeads, { setKey: ['vl.qformer.heads', { type: 'u32', value: width + 1 }] });
    const heads = await rejection(Projector.load(badHeads));
    expect(heads.code).toBe('INVALID_MODEL');
    expect(heads.message).toMatch(/qformer hyper-parameters are inconsistent/);

    const wrongType = variant('wrong-type.gguf');
    await editGguf(good, wrongType, { setKey: ['vl.vision.width', { type: 'f32', value: width }] });
    expect((await rejection(Projector.load(wrongType))).message).toBe("key 'vl.vision.width' has type f32, expected u32");
  });

  it('reports a tensor of the wrong shape with the expected and found shapes', async () => {
    const file = variant('wrong-shape.gguf');
    const shape = tensorShape(good, 'v.pos_embd');
    const swapped = [...shape].reverse();
    await editGguf(good, file, { reshapeTensor: { name: 'v.pos_embd', shape: swapped } });
    const error = await rejection(Projector.load(file));
    expect(error.code).toBe('TENSOR_SHAPE');
    expect(error.message).toBe(`tensor 'v.pos_embd' has wrong shape; expected [${shape.join(', ')}], got [${swapped.join(', ')}]`);
  });

  it('rejects bad load options', async () => {
    expect((await rejection(Projector.load(good, { threads: -1 }))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(Projector.load(good, { gpu: 'yes' as never }))).code).toBe('INVALID_ARGUMENT');
  });

  it('rejects inputs whose shape does not fit the file, before any native call', async () => {
    const { imageSize: s, maxFrames, maxClips, melBins, targetFrames } = projector.info;
    const frames = (t: number, c = 3, side = s): TensorInput => ({ tensor: new Float32Array(t * c * side * side), shape: [t, c, side, side] });
    const clips = (m: number, mel = melBins): TensorInput => ({ tensor: new Float32Array(m * mel * targetFrames), shape: [m, 1, mel, targetFrames] });
    const bad: [string, Promise<unknown>][] = [
      ['no frames', projector.encodeVideo({ tensor: new Float32Array(0), shape: [0, 3, s, s] })],
      ['too many frames', projector.encodeVideo(frames(maxFrames + 1))],
      ['grey frames', projector.encodeVideo(frames(2, 1))],
      ['wrong size', projector.encodeVideo(frames(2, 3, s - 1))],
      ['rank 3 video', projector.encodeVideo({ tensor: new Float32Array(3 * s * s), shape: [3, s, s] })],
      ['short tensor', projector.encodeVideo({ tensor: new Float32Array(10), shape: [1, 3, s, s] })],
      ['f64 tensor', projector.encodeVideo({ tensor: new Float64Array(3 * s * s) as unknown as Float32Array, shape: [1, 3, s, s] })],
      ['2-frame image', projector.encodeImage(frames(2))],
      ['too many clips', projector.encodeAudio(clips(maxClips + 1))],
      ['wrong mel bins', projector.encodeAudio(clips(2, melBins + 1))],
      ['no input', projector.encodeAudio(undefined as unknown as TensorInput)],
    ];
    for (const [what, promise] of bad) {
      const error = await rejection(promise);
      expect(error.code, what).toBe('INVALID_ARGUMENT');
      expect(error.message, what).toMatch(/^Expected /);
    }
  });

  it('rejects the branch a file does not hold', async () => {
    const checkpoint = (name: string): string => fixture(TINY_A, `checkpoints/${name}`);
    const out = variant('vision-only.gguf');
    await convertCheckpoints({ evaVit: checkpoint('eva_vit_g.pth'), blip2: checkpoint('blip2_pretrained.pth'), videoBranch: checkpoint('VL_finetuned.pth'), out, type: 'f32' });
    await using visionOnly = await Projector.load(out);
    expect(visionOnly.info).toMatchObject({ hasVision: true, hasAudio: false });
    expect((await visionOnly.encodeVideo(video)).tokens).toBe(visionOnly.info.videoQueries);
    const error = await rejection(visionOnly.encodeAudio(audio));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/no audio branch/);
  });

  it('loading reports progress up to 1, and an abort stops it in the native loader', async () => {
    const progress: number[] = [];
    await using loaded = await Projector.load(good, { threads: 1, onProgress: (fraction) => progress.push(fraction) });
    expect(progress.length).toBeGreaterThan(10); // one report per tensor
    expect(progress.every((p, i) => p > 0 && (i === 0 || p >= progress[i - 1]!))).toBe(true);
    expect(progress.at(-1)).toBe(1);
    expect(loaded.info.hasVision).toBe(true);

    expect((await rejection(Projector.load(good, { signal: AbortSignal.abort() }))).code).toBe('ABORTED');
    // The native loader checks its flag before each tensor it reads, and frees what it read.
    const { AddonProjector, AbortFlag } = addon();
    const native = new AddonProjector(good, { threads: 1 });
    const flag = new AbortFlag();
    flag.abort();
    const error = await native.load({ abort: flag }).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(error).toMatchObject({ code: 'ABORTED', message: `loading '${good}' was aborted` });
    expect(() => native.info()).toThrow(/not loaded/);
    native.dispose();
  });

  it('aborts: an aborted signal, an encode aborted while queued, and the native flag', async () => {
    expect((await rejection(projector.encodeVideo(video, { signal: AbortSignal.abort() }))).code).toBe('ABORTED');

    const controller = new AbortController();
    const first = projector.encodeVideo(video);
    const queued = projector.encodeAudio(audio, { signal: controller.signal });
    controller.abort();
    expect((await first).tokens).toBe(projector.info.videoQueries);
    expect((await rejection(queued)).code).toBe('ABORTED');

    // The native side checks its flag before each stage.
    const { AddonProjector, AbortFlag } = addon();
    const native = new AddonProjector(good, { threads: 1 });
    await native.load();
    const flag = new AbortFlag();
    flag.abort();
    const stages: string[] = [];
    const error = await native.encodeVideo(video.tensor, video.shape, { abort: flag, onProgress: (s) => stages.push(s) })
      .then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(error).toMatchObject({ code: 'ABORTED', message: 'encoding was aborted before vit' });
    expect(stages).toEqual([]);
    native.dispose();
  });

  it('reports progress for each stage before resolving', async () => {
    const seen: string[] = [];
    await projector.encodeAudio(audio, { onProgress: (p) => seen.push(`${p.stage} ${p.completed}/${p.total}`) });
    expect(seen).toEqual(['imagebind 1/2', 'audio_qformer 2/2']);
  });

  it('runs concurrent calls one after another with the same results', async () => {
    const alone = await projector.encodeVideo(video);
    const [a, b] = await Promise.all([projector.encodeVideo(video), projector.encodeVideo(video)]);
    expect(a.data).toEqual(alone.data);
    expect(b.data).toEqual(alone.data);
  });

  it('reuses its buffers: resident memory does not grow over 20 calls', async () => {
    for (let i = 0; i < 3; i++) await Promise.all([projector.encodeVideo(video), projector.encodeAudio(audio)]);
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 20; i++) {
      await projector.encodeVideo(video);
      await projector.encodeAudio(audio);
    }
    const grownMiB = (process.memoryUsage().rss - before) / 2 ** 20;
    console.log(`rss growth over 20 video + 20 audio encodes: ${grownMiB.toFixed(2)} MiB`);
    expect(grownMiB).toBeLessThan(8);
  });

  it('throws DISPOSED after dispose, also for an encode called before it that had not started', async () => {
    const disposable = await Projector.load(good, { threads: 1 });
    const queued = disposable.encodeVideo(video); // starts on a later tick; a running one is ABORTED (contact-api.test.ts)
    const disposed = disposable.dispose();
    expect((await rejection(queued)).code).toBe('DISPOSED');
    await disposed;
    await disposable.dispose();
    expect((await rejection(disposable.encodeVideo(video))).code).toBe('DISPOSED');
    expect((await rejection(disposable.encodeAudio(audio))).code).toBe('DISPOSED');
  });
});
