/**
 * Everything between a media file and the encoders' input tensors: ffmpeg decoding (no ffprobe
 * needed) and the TypeScript re-implementation of Video-LLaMA's preprocessing (decord frame
 * sampling, BLIP-2 image processor, ImageBind audio fbank clips).
 * @module
 */
export { probeMedia, type MediaProbe, type StreamInfo } from './probe.js';
export {
  decodeVideoFrames, loadImageTensor,
  type DecodedVideo, type DecodeVideoOptions, type LoadImageOptions, type RgbFrames,
} from './video.js';
export { decodeAudio, loadAudioFbank, type DecodedAudio, type LoadAudioFbankOptions } from './audio.js';
export { type MediaInput } from './input.js';
export { locateFfmpeg, FFMPEG_PATH_ENV } from './ffmpeg.js';
export { normalizeFrames, CLIP_MEAN, CLIP_STD } from '../processors/normalize.js';
export { audioToFbank, type Audio16k, type FbankClipOptions } from '../processors/melspec.js';
export { uniformFrameIndices } from '../processors/frame-sampling.js';
