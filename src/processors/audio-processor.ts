/**
 * The audio encoder's input from decoded PCM: ImageBind's `load_and_transform_audio_data` with the
 * fbank settings of a projector file. The processor plans which native samples the clips need
 * (so a long file is never decoded into memory whole) and turns them into fbank clips.
 * @module
 */
import { VideoLlamaError } from '../errors.js';
import type { PcmRange, PcmWindow } from '../media/source.js';
import { mergeRanges } from './clip-sampling.js';
import { AUDIO_SAMPLE_RATE, DEFAULT_CLIPS, type PreprocessingInfo } from './constants.js';
import {
  clipRanges, clipsToFbankSteps, MIN_SAMPLES, pcm16kSegment, resolveFbankClipOptions,
  type ResolvedFbankClipOptions, type WaveformSegment,
} from './melspec.js';
import { SincResampler } from './resample.js';
import { runSliced, type Sliced } from './slices.js';
import { checkCount, type TensorInput } from './tensor.js';

/** Which samples of a native-rate stream the clips read. */
export interface AudioPlan {
  /** The stream's own rate and length. */
  nativeRate: number;
  nativeSamples: number;
  /** Length of the 16 kHz waveform. */
  totalSamples: number;
  /** The clip windows at 16 kHz (merged where they overlap). */
  windows: PcmRange[];
  /** For each window, the native samples it is resampled from (the resampler's reach included). */
  sources: PcmRange[];
  /** The native ranges to decode: {@link AudioPlan.sources} merged. */
  decode: PcmRange[];
}

/** Clips, resamples and turns audio into normalised fbanks for one projector. */
export class AudioProcessor {
  /** Clips taken. */
  readonly clips: number;
  private readonly options: ResolvedFbankClipOptions;

  /**
   * @param clips - clips to take; default 8 (or the projector's `maxClips` if smaller); an
   *   integer from 1 to `maxClips`, else INVALID_ARGUMENT.
   */
  constructor(info: PreprocessingInfo, clips?: number) {
    this.clips = checkCount(clips, 'options.clips', info.maxClips, DEFAULT_CLIPS);
    this.options = resolveFbankClipOptions({
      clips: this.clips, melBins: info.melBins, targetFrames: info.targetFrames, clipSeconds: info.clipSeconds,
      mean: info.fbankMean, std: info.fbankStd,
    });
  }

  /** The tensor's shape, [M, 1, melBins, targetFrames]. */
  get shape(): number[] {
    return [this.clips, 1, this.options.melBins, this.options.targetFrames];
  }

  /**
   * The native samples the clips of a stream of `nativeSamples` samples at `nativeRate` need.
   * @throws VideoLlamaError `MEDIA_DECODE` for audio shorter than one 25 ms fbank frame.
   */
  plan(nativeSamples: number, nativeRate: number, what: string): AudioPlan {
    const resampler = resamplerFrom(nativeRate);
    const totalSamples = resampler ? resampler.outputLength(nativeSamples) : nativeSamples;
    if (totalSamples < MIN_SAMPLES) {
      throw new VideoLlamaError('MEDIA_DECODE',
        `the audio of ${what} is too short: ${totalSamples} samples at 16 kHz, at least ${MIN_SAMPLES} (25 ms) are needed`,
        { file: what, samples: totalSamples });
    }
    const windows = mergeRanges(clipRanges(totalSamples, this.options).map((clip) => ({ start: clip.sampleStart, end: clip.sampleEnd })));
    const sources = windows.map((w) => (resampler ? resampler.inputRange(w.start, w.end, nativeSamples) : w));
    return { nativeRate, nativeSamples, totalSamples, windows, sources, decode: mergeRanges(sources) };
  }

  /**
   * The fbank clips from the decoded ranges of a {@link AudioPlan}: each window is resampled to
   * 16 kHz on its own, which gives exactly the samples a whole-file resampling would (the
   * windows include the resampler's reach). Runs in slices: the event loop is never held for long.
   */
  fromPlan(plan: AudioPlan, decoded: readonly PcmWindow[]): Promise<TensorInput> {
    return runSliced(this.fromPlanSteps(plan, decoded));
  }

  /** The fbank clips of 16 kHz mono PCM in [-1, 1], in slices like {@link AudioProcessor.fromPlan}. */
  async fromPcm16k(samples: Float32Array): Promise<TensorInput> {
    const segment = pcm16kSegment(samples);
    return { tensor: await runSliced(clipsToFbankSteps([segment], segment.channels[0]!.length, this.options)), shape: this.shape };
  }

  private *fromPlanSteps(plan: AudioPlan, decoded: readonly PcmWindow[]): Sliced<TensorInput> {
    const resampler = resamplerFrom(plan.nativeRate);
    const segments: WaveformSegment[] = [];
    for (const [i, window] of plan.windows.entries()) {
      const source = plan.sources[i]!;
      const native = decoded.find((d) => d.start <= source.start && source.end <= d.start + d.channels[0]!.length);
      if (!native) throw new RangeError(`no decoded range holds [${source.start}, ${source.end})`);
      const channels: Float32Array[] = [];
      for (const channel of native.channels) {
        channels.push(resampler
          ? resampler.resampleRange(channel, native.start, plan.nativeSamples, window.start, window.end)
          : channel.subarray(window.start - native.start, window.end - native.start));
        yield;
      }
      segments.push({ start: window.start, channels });
    }
    return { tensor: yield* clipsToFbankSteps(segments, plan.totalSamples, this.options), shape: this.shape };
  }
}

/** Channels at `rate` → 16 kHz, like `torchaudio.functional.resample` (none for 16 kHz input). */
export function resampleTo16k(channels: readonly Float32Array[], rate: number): Float32Array[] {
  const resampler = resamplerFrom(rate);
  return resampler ? channels.map((channel) => resampler.resample(channel)) : [...channels];
}

function resamplerFrom(rate: number): SincResampler | undefined {
  return rate === AUDIO_SAMPLE_RATE ? undefined : new SincResampler(rate, AUDIO_SAMPLE_RATE);
}
