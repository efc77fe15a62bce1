/**
 * native AddonProjector (native/addon/addon_projector.cpp): the projector's weights and compute
 * state. `info()` returns a {@link ProjectorInfo} (./projector-info.ts).
 * @module
 */
import type { NativeGpuChoice } from '../backends.js';
import type { NativeJob } from './job.js';
import type { ProjectorInfo, StageTensor } from './projector-info.js';


/** Options of an encode: a job with per-stage progress, and whether to return every stage's tensor. */
export interface NativeEncodeOptions extends NativeJob<[stage: string, completed: number, total: number]> {
  stages?: boolean;
}

/** What an encode resolves to. */
export interface NativeEncodeResult {
  tokens: number;
  dim: number;
  data: Float32Array;
  stages?: Record<string, StageTensor>;
}

/** The projector; `load()` must resolve before the other methods. One encode at a time. */
export interface AddonProjector {
  /** Reads the weights on a worker thread; `onProgress` gets 0..1; an aborted load frees everything. */
  load(job?: NativeJob<[fraction: number]>): Promise<void>;
  info(): ProjectorInfo;
  encodeVideo(tensor: Float32Array, shape: readonly number[], options?: NativeEncodeOptions): Promise<NativeEncodeResult>;
  encodeAudio(tensor: Float32Array, shape: readonly number[], options?: NativeEncodeOptions): Promise<NativeEncodeResult>;
  /** Bytes of the compute buffers so far. */
  computeBytes(): number;
  dispose(): void;
}

/** new AddonProjector(path, options) */
export type AddonProjectorConstructor = new (path: string, options: { threads?: number; gpu?: NativeGpuChoice }) => AddonProjector;
