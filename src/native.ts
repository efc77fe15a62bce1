/**
 * Loads the native addon (built by scripts/build-native.mjs into build/Release).
 * Each part of the addon declares its own binding interface next to the code that uses it;
 * this module only finds and loads the binary.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { VideoLlamaError } from './errors.js';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let addon: Record<string, unknown> | undefined;

/** The loaded addon, typed by the caller as the part of it that caller uses. */
export function loadAddon<T>(): T {
  if (!addon) {
    const require = createRequire(import.meta.url);
    const file = path.join(packageRoot, 'build', 'Release', 'video_llama.node');
    try {
      addon = require(file) as Record<string, unknown>;
    } catch (error) {
      throw new VideoLlamaError('NATIVE', `could not load the native addon ${file}: ${(error as Error).message}. ` +
        'Run `npm run build:native` in the video-llama package to build it.', { file }, { cause: error });
    }
  }
  return addon as T;
}
