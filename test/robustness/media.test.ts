import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';

import { mediaTensors, withSource } from '../../src/encoders/inputs.js';
import { observeFfmpegSpawns } from '../../src/media/ffmpeg.js';
import { probe as probeMedia } from '../../src/media/index.js';
import { audioToFbank } from '../../src/processors/melspec.js';
import { BILINEAR, resizeRgb } from '../../src/processors/resize.js';
import {
  decodeAudio16k as decodeAudio, decodeVideoFrames, loadAudioFbank, loadImageTensor, preprocessing, withExifOrientation,
} from '../support/media-path.js';
import { maxAbsDiff } from '../support/npy.js';

/** Synthetic media made with ffmpeg's lavfi sources, in a private temporary folder. */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-llama-media-test-'));
const media = {
  videoOnly: path.join(dir, 'video-only.mp4'),
  audioOnly: path.join(dir, 'audio-only.wav'),
  silence: path.join(dir, 'silence.wav'),
  short: path.join(dir, 'short.m4a'),
  tiny: path.join(dir, 'tiny.wav'),
  stereo: path.join(dir, 'stereo.flac'),
  corrupt: path.join(dir, 'corrupt.mp4'),
  truncated: path.join(dir, 'truncated.mp4'),
  hour: path.join(dir, 'hour.wav'),
};

function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

function tempDirsOfLibrary(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith('video-llama-media-') && !name.includes('-test-'));
}

/** Rejects with a VideoLlamaError of this code (checked by code: module instances may differ). */
async function expectCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e as { code?: string; message: string; name: string });
  expect(error, `expected a rejection with ${code}`).toBeDefined();
  expect(error!.name).toBe('VideoLlamaError');
  expect(error!.code).toBe(code);
  if (message) expect(error!.message).toMatch(message);
}

beforeAll(() => {
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-t', '1', '-c:v', 'mpeg4', media.videoOnly);
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000', '-t', '3', media.audioOnly);
  ffmpeg('-f', 'lavfi', '-i', 'anullsrc=r=44100:cl=stereo', '-t', '3', '-c:a', 'pcm_s16le', media.silence);
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=300:sample_rate=48000', '-ac', '2', '-t', '1', '-c:a', 'aac', media.short);
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=300:sample_rate=16000', '-t', '0.01', media.tiny);
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=500:sample_rate=44100', '-f', 'lavfi', '-i', 'sine=frequency=1300:sample_rate=44100',
    '-filter_complex', '[0:a][1:a]amerge=inputs=2', '-t', '30', '-c:a', 'flac', media.stereo);
  fs.writeFileSync(media.corrupt, Buffer.from('this is not a media file, just some text'.repeat(20)));
  const mp4 = fs.readFileSync(media.videoOnly);
  fs.writeFileSync(media.truncated, mp4.subarray(0, Math.floor(mp4.length / 3)));
}, 60_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bad arguments are rejected before anything is spawned', () => {
  test.each<[string, () => Promise<unknown>, RegExp]>([
    ['decodeVideoFrames input', () => decodeVideoFrames(42 as unknown as string), /Expected a file path \(non-empty string\), a file: URL \(http: or https: with allowHttp\), or the file bytes \(Uint8Array, ArrayBuffer, Blob or Readable\) for input but received 42 of type number/],
    ['decodeVideoFrames frames', () => decodeVideoFrames('x.mp4', { frames: 0 }), /for options.frames but received 0/],
    ['decodeVideoFrames rgb', () => decodeVideoFrames({ rgb: new Uint8Array(5), width: 2, height: 2, frames: 1 }), /for input.rgb/],
    ['loadImageTensor pixel limit', () => loadImageTensor('x.png', { limitInputPixels: 0 }), /a positive integer or false for options.limitInputPixels/],
    ['loadImageTensor input', () => loadImageTensor(''), /for input but received ""/],
    ['loadAudioFbank clips', () => loadAudioFbank('x.wav', { clips: -1 }), /for options.clips/],
    ['decodeAudio signal', () => decodeAudio('x.wav', { signal: 'stop' as unknown as AbortSignal }), /an AbortSignal for options.signal/],
    ['probeMedia input', () => probeMedia(null as unknown as string), /for input but received null/],
  ])('%s', async (_name, call, message) => {
    await expectCode(Promise.resolve().then(call), 'INVALID_ARGUMENT', message);
  });
});

describe('missing, corrupt and unsuitable files', () => {
  test('a missing path is FILE_NOT_FOUND', async () => {
    const missing = path.join(dir, 'nope.mp4');
    await expectCode(probeMedia(missing), 'FILE_NOT_FOUND', /nope\.mp4/);
    await expectCode(decodeVideoFrames(missing), 'FILE_NOT_FOUND');
    await expectCode(loadAudioFbank(missing), 'FILE_NOT_FOUND');
    await expectCode(loadImageTensor(dir), 'FILE_NOT_FOUND', /not a regular file/);
  });

  test('a corrupt file is MEDIA_DECODE with ffmpeg\'s own explanation', async () => {
    for (const call of [probeMedia, decodeVideoFrames, loadAudioFbank, decodeAudio, loadImageTensor] as Array<(input: string) => Promise<unknown>>) {
      await expectCode(call(media.corrupt), 'MEDIA_DECODE', /Invalid data found when processing input/);
    }
  });

  test('a truncated mp4 and empty bytes are MEDIA_DECODE', async () => {
    await expectCode(decodeVideoFrames(media.truncated), 'MEDIA_DECODE', /ffmpeg failed/);
    await expectCode(decodeVideoFrames(new Uint8Array(0)), 'MEDIA_DECODE', /empty/);
    await expectCode(loadAudioFbank(new Uint8Array(0)), 'MEDIA_DECODE', /empty/);
  });

  test('a video without audio is NO_AUDIO_STREAM; audio without video is NO_VIDEO_STREAM', async () => {
    await expect(probeMedia(media.videoOnly)).resolves.toMatchObject({ hasVideo: true, hasAudio: false });
    await expectCode(loadAudioFbank(media.videoOnly), 'NO_AUDIO_STREAM', /has no audio stream \(streams: video mpeg4\)/);
    await expectCode(decodeAudio(media.videoOnly), 'NO_AUDIO_STREAM');
    await expectCode(decodeVideoFrames(media.audioOnly), 'NO_VIDEO_STREAM', /streams: audio pcm_s16le/);
    await expectCode(loadImageTensor(media.audioOnly), 'NO_VIDEO_STREAM');
  });

  test('audio shorter than one 25 ms fbank frame is MEDIA_DECODE', async () => {
    await expectCode(loadAudioFbank(media.tiny), 'MEDIA_DECODE', /too short: 160 samples at 16 kHz/);
  });

  test('temporary copies of byte inputs are removed, also after a failure', async () => {
    const before = tempDirsOfLibrary();
    await decodeVideoFrames(new Uint8Array(fs.readFileSync(media.videoOnly)), { frames: 2, size: 32 });
    await expectCode(loadAudioFbank(new Uint8Array(fs.readFileSync(media.corrupt))), 'MEDIA_DECODE');
    expect(tempDirsOfLibrary()).toEqual(before);
  });
});

describe('edge cases of the audio path', () => {
  test('all-zero audio gives finite values: the log floor, then the padding', async () => {
    const { tensor } = await loadAudioFbank(media.silence, { clips: 4 });
    const floor = (Math.log(1.1920928955078125e-7) + 4.268) / 9.138;
    const pad = 4.268 / 9.138;
    expect(tensor.every(Number.isFinite)).toBe(true);
    let worst = 0;
    for (let i = 0; i < tensor.length; i++) worst = Math.max(worst, Math.abs(tensor[i]! - (i % 204 < 198 ? floor : pad)));
    expect(worst).toBeLessThan(1e-5);
  });

  test('audio shorter than 2 s: every clip is the whole waveform (1 s of 48 kHz stereo AAC)', async () => {
    const { tensor, totalSamples } = await loadAudioFbank(media.short, { clips: 8 });
    const clip = 128 * 204;
    const frames = 1 + Math.floor((totalSamples - 400) / 160);
    expect(frames).toBeLessThan(198);
    for (let m = 1; m < 8; m++) {
      let worst = 0;
      for (let i = 0; i < clip; i++) worst = Math.max(worst, Math.abs(tensor[m * clip + i]! - tensor[i]!));
      expect(worst).toBeLessThan(1e-5);
    }
    expect(tensor[frames]).toBeCloseTo(4.268 / 9.138, 6); // first padded column of bin 0
  });

  test('decoding only the clip windows of 30 s of 44.1 kHz stereo equals decoding everything', async () => {
    const windowed = await loadAudioFbank(media.stereo, { clips: 8 });
    const audio = await decodeAudio(media.stereo);
    expect(audio.channels).toBe(2);
    expect(audio.samples.length).toBe(2 * windowed.totalSamples);
    expect(maxAbsDiff(windowed.tensor, audioToFbank(audio, { clips: 8 }))).toBe(0);
  });
});

describe('a one-hour file', () => {
  beforeAll(() => {
    // 8 kHz mono 16-bit: 57.6 MB on disk, 115 MB of float32 PCM, 230 MB once at 16 kHz
    ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=8000:duration=3600', '-c:a', 'pcm_s16le', media.hour);
  }, 60_000);

  test('is turned into fbank clips in seconds without holding the audio in memory', async () => {
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let longestGap = 0;
    let last = performance.now();
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
      longestGap = Math.max(longestGap, performance.now() - last);
      last = performance.now();
    }, 5);
    const started = performance.now();
    const { tensor, totalSamples } = await loadAudioFbank(media.hour, { clips: 8 });
    const elapsed = performance.now() - started;
    clearInterval(sampler);
    const growthMb = (peak - baseline) / 2 ** 20;
    console.log(`one hour of audio: ${elapsed.toFixed(0)} ms, peak RSS growth ${growthMb.toFixed(1)} MB, longest event-loop gap ${longestGap.toFixed(0)} ms`);
    expect(totalSamples).toBe(3600 * 16000);
    expect(tensor.every(Number.isFinite)).toBe(true);
    expect(elapsed).toBeLessThan(20_000);
    // Kept data is 8 clips × 2 s (≈1 MB); the rest is pipe chunks awaiting GC (measured ≈35 MB).
    // Holding the decoded hour would need ≥ 115 MB (native) + 230 MB (16 kHz).
    expect(growthMb).toBeLessThan(100);
    expect(longestGap).toBeLessThan(500);
  }, 60_000);

  test('stops ffmpeg and rejects with ABORTED when aborted mid-decode', async () => {
    const controller = new AbortController();
    const started = performance.now();
    const pending = loadAudioFbank(media.hour, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    // On a loaded machine the 100 ms can still fall in the probing pass; either stage must stop.
    await expectCode(pending, 'ABORTED', /(probing|decoding audio) was aborted/);
    expect(performance.now() - started).toBeLessThan(2_000);
    // the rejection comes after ffmpeg exited: no process is left decoding this file
    expect(() => execFileSync('pgrep', ['-f', media.hour])).toThrow();
  });

  test('an already aborted signal rejects at once', async () => {
    await expectCode(decodeVideoFrames(media.videoOnly, { signal: AbortSignal.abort() }), 'ABORTED');
  });
});

describe('what a file is decides how it is encoded', () => {
  const made = (name: string, ...args: string[]): string => {
    const file = path.join(dir, name);
    ffmpeg(...args, file);
    return file;
  };
  const picture = ['-f', 'lavfi', '-i', 'testsrc2=size=96x64', '-frames:v', '1'];
  const tone = ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=3'];
  const moving = ['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=10:duration=2'];
  const h264 = ['-c:v', 'libx264', '-pix_fmt', 'yuv420p'];
  const files: Record<string, string> = {};

  beforeAll(() => {
    files.cover = made('cover.png', ...picture);
    files.jpeg = made('photo.jpg', ...picture);
    files.rotatedJpeg = path.join(dir, 'rotated.jpg');
    fs.writeFileSync(files.rotatedJpeg, withExifOrientation(fs.readFileSync(files.jpeg), 6));
    files.silent = made('silent.mp4', ...moving, ...h264);
    files.rotated = made('rotated.mp4', '-i', files.silent, '-c', 'copy', '-metadata:s:v:0', 'rotate=90');
  }, 60_000);

  test('video with sound → [audio, video]; silent → [video]; audio (also with cover art) → [audio]; a still → [image]; a gif → video', async () => {
    const expected: Array<[string, string[]]> = [
      [made('with-sound.mp4', ...moving, ...tone, '-shortest', ...h264, '-c:a', 'aac'), ['audio', 'video']],
      [files.silent!, ['video']],
      [files.rotated!, ['video']],
      [made('animated.gif', ...moving), ['video']],
      [made('tone.wav', ...tone), ['audio']],
      [made('tone.mp3', ...tone), ['audio']],
      [made('tone.flac', ...tone), ['audio']],
      [made('tone.ogg', ...tone), ['audio']],
      [made('with-cover.mp3', ...tone, '-i', files.cover!, '-map', '0:a', '-map', '1:v', '-c:v', 'png', '-disposition:v', 'attached_pic'), ['audio']],
      [files.cover!, ['image']],
      [files.jpeg!, ['image']],
      [files.rotatedJpeg!, ['image']],
      [made('still.webp', ...picture), ['image']],
      [made('still.bmp', ...picture), ['image']],
      [made('still.tiff', ...picture), ['image']],
      [made('one-frame.gif', ...picture), ['image']],
      [made('one-frame.mp4', ...picture, ...h264), ['image']],
    ];
    const info = { ...preprocessing({ imageSize: 32 }), hasAudio: true };
    for (const [file, kinds] of expected) {
      // a name that tells nothing: the routing reads the file, never its extension
      const anonymous = path.join(dir, `anonymous-${path.basename(file).replace(/\W/g, '-')}`);
      fs.copyFileSync(file, anonymous);
      const tensors = await mediaTensors(anonymous, info, { frames: 4, clips: 2 });
      expect([path.basename(file), tensors.map((t) => t.kind)]).toEqual([path.basename(file), kinds]);
      expect((await probeMedia(anonymous)).kind).toBe(kinds.at(-1));
    }
    // the sound of a video can be left out; a sound-only file then has nothing to encode
    expect((await mediaTensors(expected[0]![0], info, { audio: false })).map((t) => t.kind)).toEqual(['video']);
    await expectCode(mediaTensors(expected[4]![0], info, { audio: false }), 'NO_VIDEO_STREAM', /only sound, and sound was left out/);
    await expectCode(mediaTensors(expected[4]![0], { ...info, hasAudio: false }, {}), 'NO_VIDEO_STREAM');
  });

  /** RGB pixels of a width × height picture turned 90° (clockwise or not). */
  function turn(rgb: Uint8Array, width: number, height: number, clockwise: boolean): Uint8Array {
    const out = new Uint8Array(rgb.length);
    for (let y = 0; y < width; y++) {
      for (let x = 0; x < height; x++) {
        const from = clockwise ? (height - 1 - x) * width + y : x * width + (width - 1 - y);
        out.set(rgb.subarray(from * 3, from * 3 + 3), (y * height + x) * 3);
      }
    }
    return out;
  }

  test('rotation metadata turns pictures and video frames alike: a JPEG\'s EXIF orientation, an mp4\'s display matrix', async () => {
    const decodeImage = (file: string) => withSource(file, {}, (source) => source.decodeImage());
    const meanDiff = (a: Uint8Array, b: Uint8Array): number => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;
    const plain = await decodeImage(files.jpeg!);
    const turned = await decodeImage(files.rotatedJpeg!);
    expect([turned.width, turned.height]).toEqual([64, 96]);
    // 4:2:0 chroma is upsampled after turning, so colour edges differ a little (measured mean 0.05)
    expect(meanDiff(turned.rgb, turn(plain.rgb, 96, 64, true))).toBeLessThan(0.5); // orientation 6: turn clockwise

    // the first frame of the rotated video, as a picture and as a video frame: both upright (its
    // display matrix says "rotation of 90 degrees", counter-clockwise in ffmpeg's convention)
    const plainFrame = await decodeImage(files.silent!);
    const turnedFrame = await decodeImage(files.rotated!);
    expect([turnedFrame.width, turnedFrame.height]).toEqual([64, 96]);
    expect(meanDiff(turnedFrame.rgb, turn(plainFrame.rgb, 96, 64, false))).toBeLessThan(0.5);
    const turnedVideo = await decodeVideoFrames(files.rotated!, { frames: 2, size: 48 });
    const firstTurned = turnedVideo.rgb.subarray(0, 48 * 48 * 3);
    // the video frame is the upright picture scaled; the two scalers (swscale's bilinear, our triangle
    // filter, which also averages when shrinking) differ on this fine test pattern: measured 7.3 vs 100
    const upright = meanDiff(firstTurned, resizeRgb(turnedFrame.rgb, 64, 96, 48, 48, BILINEAR));
    const unturned = meanDiff(firstTurned, resizeRgb(plainFrame.rgb, 96, 64, 48, 48, BILINEAR));
    console.log(`rotated video frame vs the upright picture scaled: mean |Δ| ${upright.toFixed(2)}; vs the picture not turned: ${unturned.toFixed(2)}`);
    expect(upright).toBeLessThan(12);
    expect(unturned).toBeGreaterThan(5 * upright);
  });
});

describe('inputs that must not be trusted', () => {
  /** A black 1-bit PNG of any size: a few kB on disk, `width × height` pixels once decoded. */
  function blackPng(width: number, height: number): Buffer {
    const chunk = (type: string, data: Buffer): Buffer => {
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const framed = Buffer.alloc(body.length + 8);
      framed.writeUInt32BE(data.length, 0);
      body.copy(framed, 4);
      framed.writeUInt32BE(zlib.crc32(body), body.length + 4);
      return framed;
    };
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header[8] = 1; // bit depth 1, colour type 0 (grey), deflate, no filter, no interlace
    const rows = Buffer.alloc((1 + Math.ceil(width / 8)) * height); // filter byte 0, then black pixels
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
  }

  test('a picture over the pixel limit is MEDIA_DECODE naming the limit, found by the probe before decoding', async () => {
    const huge = path.join(dir, 'huge.png');
    fs.writeFileSync(huge, blackPng(16000, 16000)); // 256 megapixels: 768 MB as RGB
    const spawned: string[][] = [];
    const stop = observeFfmpegSpawns((args) => spawned.push([...args]));
    try {
      await expectCode(loadImageTensor(huge), 'MEDIA_DECODE', /16000×16000 = 256000000 pixels, more than limitInputPixels \(100000000\)/);
    } finally {
      stop();
    }
    expect(spawned).toHaveLength(1); // the probe only
    const small = path.join(dir, 'small.png');
    fs.writeFileSync(small, blackPng(96, 64));
    await expectCode(decodeVideoFrames(small, { limitInputPixels: 6000 }), 'MEDIA_DECODE', /96×64 = 6144 pixels, more than limitInputPixels \(6000\)/);
    await expect(loadImageTensor(small, { limitInputPixels: 6144 })).resolves.toHaveLength(3 * 224 * 224);
  });

  test.each(['12:30', 'http:x'])('a relative path with a colon (%s…) is a file, never an ffmpeg protocol', async (start) => {
    const relative = `${start}-vl-media-test-${process.pid}.png`; // in the working folder, starting with "<scheme>:"
    fs.writeFileSync(relative, blackPng(96, 64));
    try {
      expect((await probeMedia(relative)).kind).toBe('image');
      await expect(loadImageTensor(relative)).resolves.toHaveLength(3 * 224 * 224);
    } finally {
      fs.rmSync(relative, { force: true });
    }
  });
});

describe('locating ffmpeg', () => {
  const systemFfmpeg = (): string => execFileSync('sh', ['-c', 'command -v ffmpeg']).toString().trim();

  /** probe() with a fresh copy of the modules (ffmpeg is located once per module instance). */
  async function probeWithEnv(env: Record<string, string>): Promise<unknown> {
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    vi.resetModules();
    const fresh = await import('../../src/media/index.js');
    return fresh.probe(media.audioOnly);
  }

  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  test('$FFMPEG_PATH, when set, is the ffmpeg used (before ffmpeg-static and PATH)', async () => {
    const system = systemFfmpeg();
    vi.stubEnv('FFMPEG_PATH', system);
    vi.stubEnv('PATH', path.join(dir, 'no-bin'));
    vi.resetModules();
    const fresh = await import('../../src/media/ffmpeg.js');
    await expect(fresh.locateFfmpeg()).resolves.toBe(system);
  });

  test.each([
    ['a missing file', path.join(dir, 'missing-ffmpeg')],
    ['a folder', dir],
  ])('a $FFMPEG_PATH naming %s is FFMPEG_NOT_FOUND naming the variable, not a silent fallback', async (_what, value) => {
    await expectCode(probeWithEnv({ FFMPEG_PATH: value }), 'FFMPEG_NOT_FOUND',
      new RegExp(`^FFMPEG_PATH is set to ${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, which is not an executable file`));
  });

  test('without $FFMPEG_PATH and ffmpeg nowhere else, FFMPEG_NOT_FOUND names the places tried', async () => {
    const name = 'ffmpeg-static';
    const staticBinary = await import(name).then((m: { default?: unknown }) => m.default, () => undefined);
    if (typeof staticBinary === 'string' && fs.existsSync(staticBinary)) return; // ffmpeg-static always finds one
    await expectCode(probeWithEnv({ FFMPEG_PATH: '', PATH: path.join(dir, 'no-bin') }), 'FFMPEG_NOT_FOUND',
      /ffmpeg was not found; looked in the ffmpeg-static package, PATH/);
  });
});
