/**
 * Fuzzing every public entry point: GGUF files cut short or with hostile header fields,
 * checkpoints and media with bytes replaced, wrong-typed arguments, and abort / dispose at
 * seeded moments. Every case must end in success or a VideoLlamaError with a fitting code —
 * never a crash, a hang, or a plain Error / TypeError from the internals. Seeds are fixed, so a
 * failure names a case that reproduces. (Explored first in child processes, far more cases;
 * none crashed the process.)
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import {
  convertCheckpoints, Projector, VideoLlama, VideoLlamaError, type Chat, type MediaEmbedding, type VideoLlamaErrorCode,
} from '../../src/index.js';
import {
  ggufHeaderFields, pick, uniformSource, withFieldValue, withHostileField, withRandomBytes, type GgufField,
} from '../support/corrupt.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';

/** How a case ended: `'ok'`, or the code of the VideoLlamaError it rejected with. */
type Outcome = 'ok' | VideoLlamaErrorCode;

/**
 * Runs a case and returns how it ended; fails the test if it threw anything but a
 * VideoLlamaError of an `allowed` code with a message.
 */
async function outcome(label: string, allowed: readonly VideoLlamaErrorCode[], run: () => unknown): Promise<Outcome> {
  try {
    await run();
    return 'ok';
  } catch (error) {
    expect(error, `${label}: ${String(error)}`).toBeInstanceOf(VideoLlamaError);
    const { code, message } = error as VideoLlamaError;
    expect(allowed, `${label}: ${code} ${message}`).toContain(code);
    expect(message.length, label).toBeGreaterThan(10);
    return code;
  }
}

/** How often each outcome happened, for the log and for checks that the cases bite. */
function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

/** A corrupted variant of a file: its name (for messages) and its bytes. */
interface Variant {
  name: string;
  bytes: Uint8Array;
}

/**
 * Seeded variants of a GGUF: cut at header offsets (each field's first byte plus one, random
 * points) and in the tensor data; every field kind set to hostile values; random bytes in the
 * header.
 */
function ggufVariants(bytes: Uint8Array, seed: number): Variant[] {
  const random = uniformSource(seed);
  const { fields, dataOffset } = ggufHeaderFields(bytes);
  const cuts = new Set([0, 3, 4, 8, 20, dataOffset - 1, dataOffset, bytes.length - 1]);
  for (const f of fields.slice(0, 12)) cuts.add(f.offset + 1);
  for (let i = 0; i < 8; i++) cuts.add(pick(random, dataOffset));
  for (let i = 0; i < 4; i++) cuts.add(dataOffset + pick(random, bytes.length - dataOffset));
  const variants: Variant[] = [...cuts].map((cut) => ({ name: `cut at ${cut}`, bytes: bytes.subarray(0, cut) }));
  const byKind = new Map<string, GgufField[]>();
  for (const f of fields) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f]);
  for (const [kind, list] of byKind) {
    for (let i = 0; i < 3; i++) {
      const f = list[pick(random, list.length)]!;
      variants.push({ name: `${kind} at ${f.offset} hostile`, bytes: withHostileField(bytes, f, random) });
    }
  }
  for (let i = 0; i < 10; i++) {
    variants.push({ name: `random header bytes #${i}`, bytes: withRandomBytes(bytes, 0, dataOffset, 1 + pick(random, 4), random) });
  }
  return variants;
}

/** A copy of a GGUF with the scalar metadata value of `key` set to `value`. */
function withKey(bytes: Uint8Array, key: string, value: bigint): Buffer {
  const at = Buffer.from(bytes).indexOf(key) + key.length + 4; // after the key and its value type
  const field = ggufHeaderFields(bytes).fields.find((f) => f.kind === 'scalar' && f.offset === at);
  if (!field) throw new Error(`no scalar key ${key}`);
  return withFieldValue(bytes, field, value);
}

describeWithFixtures(TINY_A, 'fuzz: every entry point ends in success or a VideoLlamaError', () => {
  const dir = tempDir('video-llama-fuzz-');
  const clip = fixture(TINY_A, 'inputs/clip.mp4');
  const wav = fixture(TINY_A, 'inputs/audio.wav');
  const checkpoint = (name: string): string => fixture(TINY_A, `checkpoints/${name}`);
  let llmFile: string;
  let projectorFile: string;
  let projector: Projector;
  let model: VideoLlama;

  /** Writes a variant to a file of its own. */
  let written = 0;
  const write = (bytes: Uint8Array | string, ext: string): string => {
    const file = path.join(dir, `case-${written++}.${ext}`);
    fs.writeFileSync(file, bytes);
    return file;
  };

  beforeAll(async () => {
    llmFile = await tinyLlamaFile();
    projectorFile = await convertFixture(TINY_A, 'f32', dir);
    projector = await Projector.load(projectorFile, { threads: 1 });
    model = await VideoLlama.load({ llm: llmFile, threads: 1, contextSize: 256, sequences: 2 });
  });

  /** One turn of a new chat on `model` (disposed afterwards, freeing its sequence). */
  const send = async (...args: Parameters<Chat['send']>): Promise<string> => {
    await using chat = model.createChat();
    return await chat.send(...args);
  };
  afterAll(async () => {
    await projector?.dispose();
    await model?.dispose();
  });

  it('corrupt language-model GGUFs: INVALID_MODEL, or a model that loads and chats', async () => {
    const outcomes: Outcome[] = [];
    for (const variant of ggufVariants(fs.readFileSync(llmFile), 1)) {
      const file = write(variant.bytes, 'gguf');
      outcomes.push(await outcome(`LLM ${variant.name}`, ['INVALID_MODEL'], async () => {
        await using loaded = await VideoLlama.load({ llm: file, threads: 1, contextSize: 64 });
        await loaded.createChat().send('hello', { maxTokens: 2, temperature: 0 });
      }));
    }
    console.log('LLM GGUF variants:', tally(outcomes));
    expect(outcomes.filter((o) => o === 'INVALID_MODEL').length).toBeGreaterThan(outcomes.length / 2);
    // The good model is unaffected.
    expect(await send('hello', { maxTokens: 2, temperature: 0 })).toEqual(expect.any(String));
  });

  it('corrupt projector GGUFs: INVALID_MODEL / MISSING_TENSOR / TENSOR_SHAPE, or a projector that encodes', async () => {
    const outcomes: Outcome[] = [];
    for (const variant of ggufVariants(fs.readFileSync(projectorFile), 2)) {
      const file = write(variant.bytes, 'gguf');
      outcomes.push(await outcome(`projector ${variant.name}`, ['INVALID_MODEL', 'MISSING_TENSOR', 'TENSOR_SHAPE'], async () => {
        await using loaded = await Projector.load(file, { threads: 1 });
        const { imageSize: s, melBins, targetFrames } = loaded.info;
        if (loaded.info.hasVision) await loaded.encodeImage({ tensor: new Float32Array(3 * s * s), shape: [3, s, s] });
        if (loaded.info.hasAudio) await loaded.encodeAudio({ tensor: new Float32Array(melBins * targetFrames), shape: [1, 1, melBins, targetFrames] });
      }));
    }
    console.log('projector GGUF variants:', tally(outcomes));
    expect(outcomes.filter((o) => o !== 'ok').length).toBeGreaterThan(outcomes.length / 2);
  });

  it('every numeric hyper-parameter set to 0, 2^31 or all ones (NaN as f32): an error naming the key, never a native assert', async () => {
    // Found by this sweep: libllama aborts the process on llama.block_count = 0 or > 512 and on
    // a NaN norm epsilon, ggml on a projector's NaN epsilon or a Q-Former with 0 layers.
    const outcomes: Outcome[] = [];
    const sweep = async (file: string, load: (variant: string) => Promise<void>, allowed: VideoLlamaErrorCode[]): Promise<void> => {
      const bytes = fs.readFileSync(file);
      for (const field of ggufHeaderFields(bytes).fields.filter((f) => f.kind === 'scalar')) {
        for (const value of [0n, 0x8000_0000n, 0xffff_ffff_ffff_ffffn]) {
          const variant = write(withFieldValue(bytes, field, value), 'gguf');
          outcomes.push(await outcome(`${path.basename(file)} value at ${field.offset} = ${value}`, allowed, () => load(variant)));
        }
      }
    };
    await sweep(llmFile, async (variant) => {
      await using loaded = await VideoLlama.load({ llm: variant, threads: 1, contextSize: 64 });
      await loaded.createChat().send('hello', { maxTokens: 2, temperature: 0 });
    }, ['INVALID_MODEL']);
    await sweep(projectorFile, async (variant) => {
      await using loaded = await Projector.load(variant, { threads: 1 });
      const { imageSize: s, melBins, targetFrames } = loaded.info;
      if (loaded.info.hasVision) await loaded.encodeImage({ tensor: new Float32Array(3 * s * s), shape: [3, s, s] });
      if (loaded.info.hasAudio) await loaded.encodeAudio({ tensor: new Float32Array(melBins * targetFrames), shape: [1, 1, melBins, targetFrames] });
    }, ['INVALID_MODEL', 'MISSING_TENSOR', 'TENSOR_SHAPE']);
    console.log('hyper-parameter sweep:', tally(outcomes));

    const llmBytes = fs.readFileSync(llmFile);
    const llmError = await VideoLlama.load({ llm: write(withKey(llmBytes, 'llama.block_count', 0n), 'gguf') }).catch((e: unknown) => e);
    expect(llmError).toMatchObject({ code: 'INVALID_MODEL', message: expect.stringMatching(/has llama.block_count = 0, expected 1..512$/) });
    const projectorBytes = fs.readFileSync(projectorFile);
    const projectorError = await Projector.load(write(withKey(projectorBytes, 'vl.qformer.eps', 0xffff_ffffn), 'gguf')).catch((e: unknown) => e);
    expect(projectorError).toMatchObject({ code: 'INVALID_MODEL', message: expect.stringMatching(/has vl.qformer.eps = NaN, expected a finite number >= 0$/) });
  });

  it('a corrupt projector header is reported with its fault and byte offset, before native code reads it', async () => {
    const bytes = fs.readFileSync(projectorFile);
    const { fields, dataOffset } = ggufHeaderFields(bytes);
    const first = (kind: GgufField['kind']): GgufField => fields.find((f) => f.kind === kind)!;
    const set = (field: GgufField, value: bigint): Buffer => withFieldValue(bytes, field, value);
    const cases: [string, Uint8Array, RegExp][] = [
      ['cut in the header', bytes.subarray(0, dataOffset - 100), /the file ends after \d+ bytes, inside the header \(truncated\)/],
      ['2^32 tensors', set(first('tensor_count'), 1n << 32n), /the tensor count is 4294967296, but the \d+ bytes left hold at most \d+ .*\(at byte 8\)/],
      ['a 2^62-byte key', set(first('key_length'), 1n << 62n), /length of metadata key 0 is \d+, more than any file holds \(at byte 24\)/],
      ['an unknown value type', set(first('value_type'), 99n), /has unknown value type 99/],
      ['7 dimensions', set(first('n_dims'), 7n), /has 7 dimensions, expected 1..4/],
      ['an unknown tensor type', set(first('tensor_type'), 77n), /has type id 77, not one of/],
      ['a tensor offset out of order', set(fields.filter((f) => f.kind === 'tensor_offset')[1]!, 64n), /has data offset 64, expected \d+/],
    ];
    for (const [name, variant, message] of cases) {
      const error = await Projector.load(write(variant, 'gguf')).then(() => undefined, (e: unknown) => e);
      expect(error, name).toBeInstanceOf(VideoLlamaError);
      expect((error as VideoLlamaError).code, name).toBe('INVALID_MODEL');
      expect((error as VideoLlamaError).message, name).toMatch(/^The projector file .* is not a valid GGUF file: /);
      expect((error as VideoLlamaError).message, name).toMatch(message);
    }
  });

  it('corrupt .pth checkpoints (zip records, pickle, truncation): INVALID_MODEL and the like, never a stray error', async () => {
    const random = uniformSource(3);
    const vision = { evaVit: checkpoint('eva_vit_g.pth'), blip2: checkpoint('blip2_pretrained.pth'), videoBranch: checkpoint('VL_finetuned.pth') };
    const audio = { imagebind: checkpoint('imagebind_huge.pth'), audioBranch: checkpoint('AL_finetuned.pth') };
    const outcomes: Outcome[] = [];
    for (const [role, file] of Object.entries({ ...vision, ...audio })) {
      const bytes = fs.readFileSync(file);
      const pickle = bytes.indexOf('data.pkl');
      const central = bytes.indexOf(Buffer.from('PK\u0001\u0002', 'latin1'));
      const end = bytes.lastIndexOf(Buffer.from('PK\u0005\u0006', 'latin1'));
      const regions: [string, number, number][] = [
        ['local header', 0, 64], ['pickle', pickle, pickle + 2000], ['central directory', central, end], ['end record', end, bytes.length],
      ];
      const variants: Variant[] = [0, 10, pickle + 40, central + 10, end + 5, bytes.length - 1]
        .map((cut) => ({ name: `cut at ${cut}`, bytes: bytes.subarray(0, cut) }));
      for (const [region, start, stop] of regions) {
        for (let i = 0; i < 3; i++) variants.push({ name: `${region} bytes #${i}`, bytes: withRandomBytes(bytes, start, stop, 1 + pick(random, 3), random) });
      }
      const branch = role in vision ? vision : audio;
      for (const variant of variants) {
        const corrupt = write(variant.bytes, 'pth');
        outcomes.push(await outcome(`${role} ${variant.name}`, ['INVALID_MODEL', 'UNSAFE_CHECKPOINT', 'MISSING_TENSOR', 'TENSOR_SHAPE'],
          () => convertCheckpoints({ ...branch, [role]: corrupt, out: path.join(dir, 'converted.gguf'), type: 'f32' })));
      }
    }
    console.log('checkpoint variants:', tally(outcomes));
    expect(outcomes.filter((o) => o === 'INVALID_MODEL').length).toBeGreaterThan(outcomes.length / 3);
    // A failed conversion leaves no partial file behind.
    expect(fs.readdirSync(dir).filter((name) => name.includes('converted.gguf') && name !== 'converted.gguf')).toEqual([]);
  });

  it('unusable conversion paths: a folder, a missing folder, an input as the output, an unwritable place', async () => {
    const audioBranch = path.join(dir, 'audio-branch.pth');
    fs.copyFileSync(checkpoint('AL_finetuned.pth'), audioBranch);
    const before = fs.readFileSync(audioBranch);
    const convert = (paths: { imagebind?: string; audioBranch?: string; out: string }): Promise<unknown> =>
      convertCheckpoints({ imagebind: checkpoint('imagebind_huge.pth'), audioBranch, ...paths });
    const cases: [string, VideoLlamaErrorCode[], RegExp, () => Promise<unknown>][] = [
      ['out is a folder', ['INVALID_ARGUMENT'], /\(it is a folder\) for out/, () => convert({ out: dir })],
      ['out in a missing folder', ['INVALID_ARGUMENT'], /\(.*no-such-folder: ENOENT\) for out/, () => convert({ out: path.join(dir, 'no-such-folder', 'p.gguf') })],
      ['out is an input', ['INVALID_ARGUMENT'], /\(it is an input\) for out/, () => convert({ out: audioBranch })],
      ['an input is a folder', ['FILE_NOT_FOUND'], /is not a file/, () => convert({ imagebind: dir, out: path.join(dir, 'p.gguf') })],
      // writable for root (the write fails), not for others (rejected up front)
      ['out in /proc', ['WRITE_FAILED', 'INVALID_ARGUMENT'], /proc/, () => convert({ out: '/proc/projector.gguf' })],
    ];
    for (const [name, allowed, message, run] of cases) {
      const error = await run().then(() => undefined, (e: unknown) => e);
      expect(error, name).toBeInstanceOf(VideoLlamaError);
      expect(allowed, `${name}: ${(error as Error).message}`).toContain((error as VideoLlamaError).code);
      expect((error as Error).message, name).toMatch(message);
    }
    expect(fs.readFileSync(audioBranch).equals(before)).toBe(true);
  });

  it('corrupt media (cut, bytes replaced, empty, text, a broken PNG) through every encode method', async () => {
    const random = uniformSource(4);
    const bytes = fs.readFileSync(clip);
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452ffffffff00000000', 'hex'), Buffer.alloc(8)]);
    const inputs: [string, string | Uint8Array][] = [
      ['empty file', write(new Uint8Array(0), 'mp4')],
      ['empty bytes', new Uint8Array(0)],
      ['text file', write('just some text\n'.repeat(40), 'mp4')],
      ['PNG with a broken header', write(png, 'png')],
      ['a folder', dir],
      ...[1000, 60_000, bytes.length - 10].map((cut): [string, string] => [`clip cut at ${cut}`, write(bytes.subarray(0, cut), 'mp4')]),
      ['clip with header bytes replaced (as bytes)', new Uint8Array(withRandomBytes(bytes, 0, 4096, 8, random))],
      ['clip with bytes replaced', write(withRandomBytes(bytes, 0, bytes.length, 30, random), 'mp4')],
    ];
    const allowed: VideoLlamaErrorCode[] = ['MEDIA_DECODE', 'FILE_NOT_FOUND', 'NO_VIDEO_STREAM', 'NO_AUDIO_STREAM'];
    const outcomes: Outcome[] = [];
    for (const [name, input] of inputs) {
      outcomes.push(
        await outcome(`encodeVideo ${name}`, allowed, () => projector.encodeVideo(input, { frames: 2 })),
        await outcome(`encodeImage ${name}`, allowed, () => projector.encodeImage(input)),
        await outcome(`encodeAudio ${name}`, allowed, () => projector.encodeAudio(input, { clips: 2 })),
        await outcome(`encodeMedia ${name}`, allowed, () => projector.encodeMedia(input, { frames: 2, clips: 2 })),
      );
    }
    console.log('media variants:', tally(outcomes));
    expect(outcomes.filter((o) => o === 'MEDIA_DECODE').length).toBeGreaterThan(outcomes.length / 2);
    expect((await projector.encodeVideo(clip, { frames: 2 })).tokens).toBe(projector.info.videoQueries);
  });

  it('wrong-typed arguments to every entry point give INVALID_ARGUMENT (sharp-style) before any work', async () => {
    const values: unknown[] = [null, 42, NaN, -1, 1.5, true, {}, [], [1, 2], new Float64Array(4), () => 1, Symbol('s'), 10n, 'x'];
    const audioFiles = { imagebind: checkpoint('imagebind_huge.pth'), audioBranch: checkpoint('AL_finetuned.pth'), out: path.join(dir, 'never.gguf') };
    const calls: [string, (value: unknown) => unknown][] = [
      ['VideoLlama.load(options)', (v) => VideoLlama.load(v as never)],
      ['VideoLlama.load llm', (v) => VideoLlama.load({ llm: v } as never)],
      ['VideoLlama.load threads', (v) => VideoLlama.load({ llm: llmFile, threads: v } as never)],
      ['VideoLlama.load projector', (v) => VideoLlama.load({ llm: llmFile, projector: v } as never)],
      ['Projector.load path', (v) => Projector.load(v as never)],
      ['Projector.load threads', (v) => Projector.load(projectorFile, { threads: v } as never)],
      ['encodeVideo input', (v) => projector.encodeVideo(v as never)],
      ['encodeImage input', (v) => projector.encodeImage(v as never)],
      ['encodeAudio input', (v) => projector.encodeAudio(v as never)],
      ['encodeMedia input', (v) => projector.encodeMedia(v as never)],
      ['encodeVideo frames', (v) => projector.encodeVideo(clip, { frames: v } as never)],
      ['encodeAudio clips', (v) => projector.encodeAudio(wav, { clips: v } as never)],
      ['encodeMedia signal', (v) => projector.encodeMedia(clip, { signal: v } as never)],
      ['encodeAudio onProgress', (v) => projector.encodeAudio(wav, { onProgress: v } as never)],
      ['convertCheckpoints(options)', (v) => convertCheckpoints(v as never)],
      ['convertCheckpoints out', (v) => convertCheckpoints({ ...audioFiles, out: v } as never)],
      ['convertCheckpoints imagebind', (v) => convertCheckpoints({ ...audioFiles, imagebind: v } as never)],
      ['convertCheckpoints type', (v) => convertCheckpoints({ ...audioFiles, type: v } as never)],
      ['convertCheckpoints heads', (v) => convertCheckpoints({ ...audioFiles, heads: v } as never)],
      ['convertCheckpoints onProgress', (v) => convertCheckpoints({ ...audioFiles, onProgress: v } as never)],
      ['Chat.send message', (v) => send(v as never)],
      ['Chat.send media', (v) => send({ text: 'hi', media: [v] } as never)],
      ['Chat.send temperature', (v) => send('hi', { temperature: v } as never)],
      ['Chat.stream maxTokens', async (v) => {
        await using chat = model.createChat();
        for await (const _ of chat.stream('hi', { maxTokens: v } as never));
      }],
    ];
    // Values a parameter legitimately accepts (a string path, a number of threads, …) are not cases.
    const accepts = (call: string, value: unknown): boolean =>
      (typeof value === 'string' && /llm|projector|path|input|message|out$|imagebind/.test(call)) ||
      (value === 42 && /threads|frames|clips|maxTokens|temperature/.test(call)) ||
      (typeof value === 'function' && /onProgress/.test(call)) ||
      (value === true && /temperature/.test(call)) ||
      (value === 1.5 && /temperature/.test(call)) ||
      (Array.isArray(value) && value.length === 0 && /heads$/.test(call)) ||
      (typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && /heads$|Chat.send message/.test(call));
    let cases = 0;
    const wrong: string[] = [];
    for (const [call, run] of calls) {
      for (const value of values) {
        if (accepts(call, value)) continue;
        cases++;
        const error = await Promise.resolve().then(() => run(value)).then(() => undefined, (e: unknown) => e);
        const ok = error instanceof VideoLlamaError && error.code === 'INVALID_ARGUMENT' && /^Expected .* but received /.test(error.message);
        if (!ok) wrong.push(`${call} = ${typeof value === 'symbol' ? 'a symbol' : String(value)}: ${error === undefined ? 'accepted' : String(error)}`);
      }
    }
    console.log(`wrong-typed arguments: ${cases} cases`);
    expect(wrong).toEqual([]);
    expect(fs.existsSync(audioFiles.out)).toBe(false);
  });

  it('non-finite and extreme values, odd views and detached buffers: a result or INVALID_ARGUMENT / CONTEXT_OVERFLOW', async () => {
    const width = model.model.embeddingWidth;
    const filled = (value: number, tokens = 4): MediaEmbedding => ({ kind: 'video', tokens, dim: width, data: new Float32Array(tokens * width).fill(value) });
    const s = projector.info.imageSize;
    const frame = (): Float32Array => new Float32Array(3 * s * s);
    const detached = (): Float32Array => {
      const tensor = frame();
      structuredClone(tensor.buffer, { transfer: [tensor.buffer] });
      return tensor;
    };
    const cases: [string, VideoLlamaErrorCode[], () => Promise<unknown>][] = [
      ['NaN embedding, greedy', ['INVALID_ARGUMENT'], () => send({ text: 'x', media: [filled(NaN)] }, { maxTokens: 3, temperature: 0 })],
      ['infinite embedding, sampled', ['INVALID_ARGUMENT'], () => send({ text: 'x', media: [filled(Infinity)] }, { maxTokens: 3, temperature: 0.8, topK: 5 })],
      ['3e38 embedding with a repeat penalty', [], () => send({ text: 'x', media: [filled(3e38)] }, { maxTokens: 3, repeatPenalty: 1.3 })],
      ['an embedding longer than the context', ['CONTEXT_OVERFLOW'], () => send({ text: 'x', media: [filled(0, model.context.size + 1)] })],
      ['lone surrogates and NUL in the text', [], () => send('\ud800 \udfff \u0000 é', { maxTokens: 3 })],
      ['token id -2^31', ['INVALID_ARGUMENT'], async () => {
        await using sequence = model.context.getSequence();
        return await sequence.nextTokenLogits([new Int32Array([-(2 ** 31)])]);
      }],
      ['token ids past the vocabulary', ['INVALID_ARGUMENT'], () => model.model.tokenEmbeddings([model.model.vocabularySize])],
      ['NaN PCM', ['INVALID_ARGUMENT'], () => projector.encodeAudio(new Float32Array(32_000).fill(NaN), { clips: 1 })],
      ['10 samples of PCM', ['INVALID_ARGUMENT'], () => projector.encodeAudio(new Float32Array(10))],
      ['a NaN tensor', ['INVALID_ARGUMENT'], () => projector.encodeImage({ tensor: frame().fill(NaN), shape: [3, s, s] })],
      ['a tensor that is a view into a larger buffer', [], () => projector.encodeImage({ tensor: new Float32Array(3 * s * s + 7).subarray(7), shape: [3, s, s] })],
      ['a detached tensor', ['INVALID_ARGUMENT'], () => projector.encodeImage({ tensor: detached(), shape: [3, s, s] })],
      ['1e9 × 1e9 RGB frames', ['INVALID_ARGUMENT'], () => projector.encodeVideo({ rgb: new Uint8Array(12), width: 1e9, height: 1e9, frames: 1 })],
      ['a 1 × 1 RGB image', [], () => projector.encodeImage({ rgb: new Uint8Array(3), width: 1, height: 1, frames: 1 })],
    ];
    for (const [name, allowed, run] of cases) {
      const ended = await outcome(name, allowed, run);
      expect(allowed.length === 0 ? ended === 'ok' : allowed.includes(ended as VideoLlamaErrorCode), `${name} ended with ${ended}`).toBe(true);
    }
  });

  it('abort and dispose at seeded moments during encodes: ABORTED / DISPOSED, and the objects go on working', async () => {
    const random = uniformSource(5);
    const methods = ['encodeVideo', 'encodeImage', 'encodeAudio', 'encodeMedia'] as const;
    const run = (p: Projector, method: (typeof methods)[number], signal?: AbortSignal): Promise<unknown> =>
      method === 'encodeAudio' ? p.encodeAudio(wav, { clips: 2, signal }) : p[method](clip, { frames: 2, clips: 2, signal });
    for (let i = 0; i < 8; i++) {
      const method = methods[i % methods.length]!;
      const controller = new AbortController();
      const pending = run(projector, method, controller.signal);
      setTimeout(() => controller.abort(), pick(random, 300));
      expect(['ok', 'ABORTED']).toContain(await outcome(`${method} aborted`, ['ABORTED'], () => pending));
    }
    expect((await projector.encodeVideo(clip, { frames: 2 })).tokens).toBe(projector.info.videoQueries);

    for (let i = 0; i < 4; i++) {
      const method = methods[i]!;
      const doomed = await Projector.load(projectorFile, { threads: 1 });
      const running = [run(doomed, method), run(doomed, 'encodeAudio')];
      await new Promise((resolve) => setTimeout(resolve, pick(random, 300)));
      await doomed.dispose();
      // dispose stops the running encode (ABORTED, or done if it finished first) and refuses the queued one
      const [first, second] = await Promise.all(running.map((r) => outcome(`${method} during dispose`, ['ABORTED', 'DISPOSED'], () => r)));
      expect(['ok', 'ABORTED']).toContain(first);
      expect(['ok', 'ABORTED', 'DISPOSED']).toContain(second);
      for (const m of methods) expect(await outcome(`${m} after dispose`, ['DISPOSED'], () => run(doomed, m))).toBe('DISPOSED');
    }
  });

  it('abort and dispose at seeded moments during chat generation: the chat continues, a disposed model throws DISPOSED', async () => {
    const random = uniformSource(6);
    await using chat = model.createChat();
    for (let i = 0; i < 6; i++) {
      const controller = new AbortController();
      const stopAfter = pick(random, 12);
      let pieces = 0;
      const streamed = outcome('stream aborted', ['ABORTED'], async () => {
        for await (const _ of chat.stream(`tell me more, part ${i}`, { maxTokens: 40, temperature: 0, signal: controller.signal })) {
          if (++pieces > stopAfter) controller.abort();
        }
      });
      expect(['ok', 'ABORTED']).toContain(await streamed);
      // Leaving a stream early stops it too.
      for await (const _ of chat.stream('again', { maxTokens: 40 })) if (pick(random, 3) === 0) break;
      expect(await chat.send('still there?', { maxTokens: 3, temperature: 0 })).toEqual(expect.any(String));
    }

    const embedding: MediaEmbedding = { kind: 'video', tokens: 2, dim: model.model.embeddingWidth, data: new Float32Array(2 * model.model.embeddingWidth) };
    for (let i = 0; i < 4; i++) {
      const doomed = await VideoLlama.load({ llm: llmFile, threads: 1, contextSize: 256, sequences: 2 });
      const doomedChat = doomed.createChat();
      // Handled from the start: dispose rejects the replies at once, while it is still running.
      const replies = [
        doomedChat.send({ text: 'hello', media: [embedding] }, { maxTokens: 100 }),
        doomed.createChat().send('another', { maxTokens: 100 }),
      ].map((reply) => outcome('chat during dispose', ['DISPOSED', 'ABORTED'], () => reply));
      await new Promise((resolve) => setTimeout(resolve, pick(random, 20)));
      await doomed.dispose();
      for (const reply of replies) await reply;
      expect(await outcome('send after dispose', ['DISPOSED'], () => doomedChat.send('x'))).toBe('DISPOSED');
      expect(await outcome('createChat after dispose', ['DISPOSED'], () => doomed.createChat())).toBe('DISPOSED');
      expect(await outcome('tokenize after dispose', ['DISPOSED'], () => doomed.model.tokenize('x'))).toBe('DISPOSED');
    }
  });
});
