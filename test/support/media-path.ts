/**
 * The media path as the encoders run it (media/ decodes, processors/ prepare), with Video-LLaMA's
 * constants unless a test asks for others: what the media parity and robustness tests check.
 */
import { decodeAudio, decodeVideo, type DecodedVideo, withSource } from '../../src/encoders/inputs.js';
import type { MediaInput, RgbFrames } from '../../src/media/index.js';
import { AudioProcessor, resampleTo16k } from '../../src/processors/audio-processor.js';
import { type PreprocessingInfo, VIDEO_LLAMA_PREPROCESSING } from '../../src/processors/constants.js';
import type { FbankClipOptions } from '../../src/processors/melspec.js';
import { ImageProcessor, isRgbFrames, VideoProcessor } from '../../src/processors/video-processor.js';

/** Video-LLaMA's preprocessing with the projector's limits (32 frames, 8 clips), overridable. */
export function preprocessing(overrides: Partial<PreprocessingInfo> = {}): PreprocessingInfo {
  return { ...VIDEO_LLAMA_PREPROCESSING, maxFrames: 32, maxClips: 8, ...overrides };
}

interface Decoding {
  signal?: AbortSignal;
  limitInputPixels?: number | false;
}

/** `load_video`'s frames (uint8, size × size) of a file, its bytes or decoded frames. */
export async function decodeVideoFrames(input: MediaInput | RgbFrames, options: Decoding & { frames?: number; size?: number } = {}):
Promise<DecodedVideo> {
  const processor = new VideoProcessor(preprocessing({ imageSize: options.size ?? 224 }), options.frames);
  if (isRgbFrames(input)) return { ...await processor.sampleRgbFrames(input), totalFrames: input.frames, fps: input.fps ?? 0 };
  return withSource(input, options, (source) => decodeVideo(source, processor));
}

/** The image tensor [1, 3, S, S] of a file or decoded pixels. */
export async function loadImageTensor(input: MediaInput | RgbFrames, options: Decoding & { size?: number } = {}): Promise<Float32Array> {
  const processor = new ImageProcessor(preprocessing({ imageSize: options.size ?? 224 }));
  const image = isRgbFrames(input) ? input : await withSource(input, options, (source) => source.decodeImage());
  return (await processor.process(image)).tensor;
}

/** The fbank tensor of a media file's audio, and the length of its 16 kHz waveform. */
export async function loadAudioFbank(input: MediaInput, options: Decoding & FbankClipOptions = {}):
Promise<{ tensor: Float32Array; totalSamples: number }> {
  const defaults = VIDEO_LLAMA_PREPROCESSING;
  const processor = new AudioProcessor(preprocessing({
    melBins: options.melBins ?? defaults.melBins, targetFrames: options.targetFrames ?? defaults.targetFrames,
    clipSeconds: options.clipSeconds ?? defaults.clipSeconds, fbankMean: options.mean ?? defaults.fbankMean, fbankStd: options.std ?? defaults.fbankStd,
  }), options.clips);
  return withSource(input, options, async (source) => {
    const { tensor } = await decodeAudio(source, processor);
    const { audio, audioSamples } = source.probe;
    return { tensor, totalSamples: processor.plan(audioSamples!, audio!.sampleRate!, source.file).totalSamples };
  });
}

/** A file's whole audio at 16 kHz, channel-major, as `torchaudio.load` + resample give it. */
export async function decodeAudio16k(input: MediaInput, options: Decoding = {}): Promise<{ samples: Float32Array; sampleRate: 16000; channels: number }> {
  return withSource(input, options, async (source) => {
    const { pcm } = await source.decode({ pcm: [{ start: 0, end: source.probe.audioSamples ?? 0 }] });
    const channels = resampleTo16k(pcm![0]!.channels, source.probe.audio!.sampleRate!);
    const length = channels[0]!.length;
    const samples = new Float32Array(length * channels.length);
    channels.forEach((channel, c) => samples.set(channel, c * length));
    return { samples, sampleRate: 16000, channels: channels.length };
  });
}

/**
 * A JPEG with an EXIF orientation (1–8; 6 = shown turned 90° clockwise) inserted after its SOI
 * marker: how cameras store a portrait photo.
 */
export function withExifOrientation(jpeg: Uint8Array, orientation: number): Buffer {
  // TIFF header (little endian), then IFD0 with one SHORT entry: 0x0112 Orientation
  const tiff = Buffer.from([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0, 0, 0, 0, 0]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body]);
  return Buffer.concat([jpeg.subarray(0, 2), app1, jpeg.subarray(2)]);
}
