/**
 * Turns whatever a caller hands an encoder (a media file, its bytes, decoded pixels or PCM, or a
 * preprocessed tensor) into the tensor the projector takes: `media/` decodes (one probe per
 * file), `processors/` prepares with the sizes and constants of the projector file, and
 * {@link mediaTensors} routes a file by what it is.
 * @internal
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { isMediaInput, MEDIA_INPUT_TEXT, type MediaFetchOptions, type MediaInput, validateMediaInput, withLocalFile } from '../media/input.js';
import { requireAudioStream, requireVideoStream } from '../media/probe.js';
import { type DecodeOptions, MediaSource, type RgbFrames, validateDecodeOptions } from '../media/source.js';
import { type AudioPlan, AudioProcessor, resampleTo16k } from '../processors/audio-processor.js';
import type { PreprocessingInfo } from '../processors/constants.js';
import { isTensorInput, type TensorInput } from '../processors/tensor.js';
import { ImageProcessor, isRgbFrames, VideoProcessor } from '../processors/video-processor.js';

/**
 * A video for {@link Projector.encodeVideo}: a file path, the file's bytes, decoded RGB frames
 * (any size; sampled and resized), or a normalised tensor [T, 3, S, S] (S = {@link ProjectorInfo.imageSize}).
 */
export type VideoInput = MediaInput | RgbFrames | TensorInput;
/**
 * An image for {@link Projector.encodeImage}: a file path, the file's bytes, one decoded RGB
 * frame (any size; resized), or a normalised tensor [1, 3, S, S] or [3, S, S].
 */
export type ImageInput = MediaInput | RgbFrames | TensorInput;
/**
 * Audio for {@link Projector.encodeAudio}: a media file (any container with an audio stream, any
 * sample rate), mono PCM in [-1, 1] (a Float32Array at 16 kHz, or at `options.sampleRate`), or a
 * normalised fbank tensor [M, 1, melBins, targetFrames].
 */
export type AudioInput = MediaInput | Float32Array | TensorInput;

/** Options of decoding a media file (ignored for other inputs). */
export interface MediaDecodeOptions extends MediaFetchOptions {
  /** Cancels decoding and encoding; the promise rejects with ABORTED. */
  signal?: AbortSignal;
  /**
   * Most pixels (width × height) of a picture or video frame; a larger one is rejected with
   * MEDIA_DECODE before it is decoded (a small file can hold a huge picture). Default
   * 100 000 000; `false` removes the limit.
   */
  limitInputPixels?: number | false;
}

/** Options of the video decoding step (ignored for a tensor input). */
export interface VideoInputOptions extends MediaDecodeOptions {
  /**
   * Frames sampled uniformly from a video file or decoded frames, as the original
   * `load_video`; default 8 (or the projector's `maxFrames` if smaller). An integer from 1 to
   * {@link ProjectorInfo.maxFrames}, else INVALID_ARGUMENT.
   */
  frames?: number;
}

/** Options of the audio decoding step (ignored for a tensor input). */
export interface AudioInputOptions extends MediaDecodeOptions {
  /**
   * 2-second clips placed like ImageBind's clip sampler; default 8 (or the projector's
   * `maxClips` if smaller). An integer from 1 to {@link ProjectorInfo.maxClips}, else INVALID_ARGUMENT.
   */
  clips?: number;
  /**
   * Which audio stream of a file with several is encoded: its index among the file's audio
   * streams (ffmpeg's `-map 0:a:N`; {@link probe} lists them in `streams`); default 0, the
   * first. An index the file does not have is INVALID_ARGUMENT, naming the streams it has.
   */
  audioStream?: number;
  /**
   * Sample rate of a PCM input (Hz, a positive integer); default 16000. Other rates are resampled
   * to 16 kHz as the original resamples a file's audio (`torchaudio.functional.resample`).
   */
  sampleRate?: number;
}

/** Frames chosen from a video, decoded and resized, before normalisation. @internal */
export interface DecodedVideo {
  /** T frames of size × size RGB, T,H,W,C order. */
  rgb: Uint8Array;
  /** The source frame index of each frame (T of them). */
  indices: number[];
  /** Frames in the source (decord's `vlen`). */
  totalFrames: number;
  /** Average frame rate of the source (0 when unknown). */
  fps: number;
}

/** A tensor for one encoder, with the wording of a video's sampled frames. @internal */
export interface KindTensor {
  kind: 'video' | 'image' | 'audio';
  input: TensorInput;
  description?: string;
}

/** Every input kind each encoder takes, for the error a wrong input gets. */
const ACCEPTED_INPUTS = {
  video: `${MEDIA_INPUT_TEXT}; decoded RGB frames { rgb, width, height, frames }; or a tensor { tensor, shape }`,
  image: `${MEDIA_INPUT_TEXT}; one decoded RGB frame { rgb, width, height, frames: 1 }; or a tensor { tensor, shape }`,
  audio: `${MEDIA_INPUT_TEXT}; mono PCM as a Float32Array; or an fbank tensor { tensor, shape }`,
} as const;

/** Throws INVALID_ARGUMENT, listing every input kind the encoder takes, unless `input` is one of them. */
function validateEncoderInput(kind: keyof typeof ACCEPTED_INPUTS, input: unknown): void {
  const decoded = kind === 'audio' ? input instanceof Float32Array : isRgbFrames(input);
  if (!decoded && !isTensorInput(input) && !isMediaInput(input)) throw invalidArgument('input', ACCEPTED_INPUTS[kind], input);
}

/** The [T, 3, S, S] tensor of a video input, and the description of its frames when decoded from a file. @internal */
export async function videoTensor(input: VideoInput, info: PreprocessingInfo, options: VideoInputOptions): Promise<KindTensor> {
  validateEncoderInput('video', input);
  if (isTensorInput(input)) return { kind: 'video', input };
  const processor = new VideoProcessor(info, options.frames);
  const video = isRgbFrames(input)
    ? { ...await processor.sampleRgbFrames(input), fps: input.fps ?? 0 }
    : await withSource(input, options, (source) => decodeVideo(source, processor));
  return { kind: 'video', input: processor.toTensor(video.rgb, video.indices.length), description: processor.describe(video.indices, video.fps) };
}

/** The [1, 3, S, S] tensor of an image input (BLIP-2's image processor). @internal */
export async function imageTensor(input: ImageInput, info: PreprocessingInfo, options: MediaDecodeOptions): Promise<KindTensor> {
  validateEncoderInput('image', input);
  if (isTensorInput(input)) return { kind: 'image', input };
  const processor = new ImageProcessor(info);
  const image = isRgbFrames(input) ? input : await withSource(input, options, (source) => source.decodeImage());
  return { kind: 'image', input: await processor.process(image) };
}

/** The [M, 1, melBins, targetFrames] fbank tensor of an audio input. @internal */
export async function audioTensor(input: AudioInput, info: PreprocessingInfo, options: AudioInputOptions): Promise<KindTensor> {
  validateEncoderInput('audio', input);
  if (isTensorInput(input)) return { kind: 'audio', input };
  const processor = new AudioProcessor(info, options.clips);
  if (input instanceof Float32Array) return { kind: 'audio', input: await processor.fromPcm16k(pcmAt16k(input, options.sampleRate)) };
  return { kind: 'audio', input: await withSource(input, options, (source) => decodeAudio(source, processor)) };
}

/** PCM at `sampleRate` (default 16 kHz) → 16 kHz. */
function pcmAt16k(pcm: Float32Array, sampleRate: number | undefined): Float32Array {
  if (sampleRate === undefined) return pcm;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw invalidArgument('options.sampleRate', 'a positive integer (Hz)', sampleRate);
  return resampleTo16k([pcm], sampleRate)[0]!;
}

/** Options of routing a file to the encoders (`encodeMedia`). */
export interface MediaRouteOptions extends VideoInputOptions, AudioInputOptions {
  /** Encode the sound too when the file has an audio track and the projector an audio branch; default true. */
  audio?: boolean;
}

/**
 * The tensors of a media file, routed by what it is (one probe): a video with sound →
 * `[audio, video]` (decoded by one ffmpeg process), a silent video → `[video]`, audio (also
 * with a cover picture) → `[audio]`, a still image → `[image]`. Sound is left out when
 * `options.audio` is false or `hasAudio` is false (the projector has no audio branch).
 * @throws VideoLlamaError `NO_VIDEO_STREAM` for a file with neither picture nor sound (or only
 *   sound, when sound is left out), and the decoding errors.
 * @internal
 */
export async function mediaTensors(input: MediaInput, info: PreprocessingInfo & { hasAudio: boolean }, options: MediaRouteOptions):
Promise<KindTensor[]> {
  return withSource(input, options, async (source): Promise<KindTensor[]> => {
    const withSound = info.hasAudio && options.audio !== false;
    switch (source.probe.kind) {
      case 'image':
        return [{ kind: 'image', input: await new ImageProcessor(info).process(await source.decodeImage()) }];
      case 'audio':
        if (withSound) return [{ kind: 'audio', input: await decodeAudio(source, new AudioProcessor(info, options.clips)) }];
        break;
      case 'video': {
        const videoProcessor = new VideoProcessor(info, options.frames);
        const audioProcessor = withSound && source.probe.hasAudio ? new AudioProcessor(info, options.clips) : undefined;
        const { video, audio } = await decodeVideoAndAudio(source, videoProcessor, audioProcessor);
        const videoTensor: KindTensor = {
          kind: 'video', input: videoProcessor.toTensor(video.rgb, video.indices.length), description: videoProcessor.describe(video.indices, video.fps),
        };
        return audio ? [{ kind: 'audio', input: audio }, videoTensor] : [videoTensor];
      }
      case undefined:
        break;
    }
    throw new VideoLlamaError('NO_VIDEO_STREAM',
      `${source.file} has nothing to encode: ${source.probe.kind === 'audio' ? 'only sound, and sound was left out' : 'neither picture nor sound'}`,
      { file: source.file, kind: source.probe.kind });
  });
}

/** The frames of a video source, decoded and in sampling order. @internal */
export async function decodeVideo(source: MediaSource, processor: VideoProcessor): Promise<DecodedVideo> {
  return (await decodeVideoAndAudio(source, processor, undefined)).video;
}

/** The fbank tensor of an audio source. @internal */
export async function decodeAudio(source: MediaSource, processor: AudioProcessor): Promise<TensorInput> {
  const plan = audioPlan(source, processor);
  const { pcm } = await source.decode({ pcm: plan.decode });
  return await processor.fromPlan(plan, pcm!);
}

/** Opens a file path or bytes as a {@link MediaSource} for `work`. @internal */
export async function withSource<T>(input: MediaInput, options: MediaDecodeOptions & Pick<AudioInputOptions, 'audioStream'>,
  work: (source: MediaSource) => Promise<T>): Promise<T> {
  validateMediaInput(input, 'input');
  const decodeOptions: DecodeOptions = { signal: options.signal, limitInputPixels: options.limitInputPixels, audioStream: options.audioStream };
  validateDecodeOptions(decodeOptions);
  return withLocalFile(input, async (file) => work(await MediaSource.open(file, decodeOptions)), options);
}

/** A video's sampled frames and, when an audio processor is given, its fbank, from one ffmpeg process. @internal */
async function decodeVideoAndAudio(source: MediaSource, videoProcessor: VideoProcessor, audioProcessor: AudioProcessor | undefined):
Promise<{ video: DecodedVideo; audio?: TensorInput }> {
  requireVideoStream(source.probe, source.file);
  const totalFrames = source.probe.frameCount ?? 0;
  if (totalFrames === 0) throw new VideoLlamaError('MEDIA_DECODE', `the video stream of ${source.file} has no frames`, { file: source.file });
  const sample = videoProcessor.sample(totalFrames);
  const plan = audioProcessor && audioPlan(source, audioProcessor);
  const decoded = await source.decode({ frames: { indices: sample.unique, size: videoProcessor.size }, pcm: plan?.decode });
  return {
    video: { rgb: videoProcessor.gather(decoded.frames!, sample), indices: sample.indices, totalFrames, fps: source.probe.video?.fps ?? 0 },
    audio: plan && await audioProcessor!.fromPlan(plan, decoded.pcm!),
  };
}

function audioPlan(source: MediaSource, processor: AudioProcessor): AudioPlan {
  const stream = requireAudioStream(source.probe, source.file);
  const samples = source.probe.audioSamples ?? 0;
  if (samples === 0) throw new VideoLlamaError('MEDIA_DECODE', `the audio stream of ${source.file} decoded to 0 samples`, { file: source.file });
  return processor.plan(samples, stream.sampleRate, source.file);
}
