/**
 * The native addon (built by scripts/build-native.mjs into build/Release) and everything it
 * exports, typed: one module per native class beside this one, and this list of exports
 * (native/addon/module.cpp calls its export functions in the same order).
 * @module
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { VideoLlamaError } from '../errors.js';
import type { AbortFlag } from './job.js';
import type { AddonContextConstructor } from './context.js';
import type { AddonLlamaTrainerConstructor } from './llama-trainer.js';
import type { AddonModelConstructor } from './model.js';
import type { AddonProjectorConstructor } from './projector.js';
import type { AddonBranchTrainerConstructor, AddonTrainLlamaConstructor, GradientCheckReport } from './train.js';

/** The GGUF names native/core/gguf_names.h reads: id (`VISION_WIDTH`) → key or printf template. */
export interface GgufNameTables {
  keys: Record<string, string>;
  tensors: Record<string, string>;
  /** `general.architecture` of a projector. */
  projectorArchitecture: string;
}

/** Everything the addon exports. */
export interface Addon {
  AbortFlag: new () => AbortFlag;
  AddonModel: AddonModelConstructor;
  AddonContext: AddonContextConstructor;
  AddonProjector: AddonProjectorConstructor;
  /** ProjectorInfo's field names as native/core/projector_info.h lists them. */
  projectorInfoFields: readonly string[];
  ggufNames(): GgufNameTables;
  /** f32 rows converted to a ggml type with ggml's own functions. */
  quantize(data: Float32Array, rowLength: number, type: string): Uint8Array;
  AddonTrainLlama: AddonTrainLlamaConstructor;
  /** libllama's logits at every position with an f32 KV cache and no flash attention (the training graph's reference). */
  /** Finite-difference check of a named tiny training graph (native/core/train/gradient_check.h). */
  trainGradientCheck(graph: string, seed: number, step: number): Promise<GradientCheckReport>;
  trainReferenceLogits(path: string, tokens: Int32Array, threads: number): Promise<Float32Array>;
  AddonBranchTrainer: AddonBranchTrainerConstructor;
  AddonLlamaTrainer: AddonLlamaTrainerConstructor;
  /** The ggml devices, one per line. */
  devices(): string;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let loaded: Addon | undefined;

/** The loaded addon (loaded on first use; NATIVE when it is not built). */
export function addon(): Addon {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    const file = path.join(packageRoot, 'build', 'Release', 'video_llama.node');
    try {
      loaded = require(file) as Addon;
    } catch (error) {
      throw new VideoLlamaError('NATIVE', `could not load the native addon ${file}: ${(error as Error).message}. ` +
        'Run `npm run build:native` in the video-llama package to build it.', { file }, { cause: error });
    }
  }
  return loaded;
}
