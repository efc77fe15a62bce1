/**
 * The GPU the encoders and the language model run on. The addon links node-llama-cpp's CPU build
 * of llama.cpp; a GPU is added at load time by loading the ggml backend library
 * (`libggml-vulkan.so`, `libggml-cuda.so`) of a GPU flavour that node-llama-cpp installed
 * (`@node-llama-cpp/<platform>-<flavour>`, same llama.cpp release): no rebuild is needed.
 * @module
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { invalidArgument, VideoLlamaError } from './errors.js';

/**
 * Where the encoders and the language model run, as node-llama-cpp's `getLlama({ gpu })`:
 * `'auto'` the first GPU flavour installed that finds a device (CUDA, then Vulkan; Metal on Apple
 * Silicon), else the CPU; `'cuda'`, `'vulkan'`, `'metal'` that flavour or a `GPU_UNAVAILABLE`
 * error; `false` the CPU only.
 */
export type GpuOption = 'auto' | 'cuda' | 'vulkan' | 'metal' | false;

/** A GPU flavour of node-llama-cpp's prebuilt llama.cpp. */
type GpuFlavour = Exclude<GpuOption, 'auto' | false>;

/** The environment variable that sets the default of the `gpu` option (CI runs the tests on Vulkan with it). */
export const GPU_ENV = 'VIDEO_LLAMA_GPU';

const FLAVOURS: readonly GpuFlavour[] = ['cuda', 'vulkan', 'metal'];

/** ggml's registry names of the flavours' backends. */
const BACKEND_NAMES: Record<GpuFlavour, string> = { cuda: 'CUDA', vulkan: 'Vulkan', metal: 'Metal' };

/**
 * The packages of each flavour node-llama-cpp (3.22.1) publishes, by `<platform>-<arch>`
 * (the CUDA one has an `-ext` companion with a fallback build). Metal is part of the linked
 * libraries on Apple Silicon.
 */
const FLAVOUR_PACKAGES: Readonly<Record<string, Partial<Record<GpuFlavour, readonly string[]>>>> = {
  'linux-x64': {
    cuda: ['@node-llama-cpp/linux-x64-cuda', '@node-llama-cpp/linux-x64-cuda-ext'],
    vulkan: ['@node-llama-cpp/linux-x64-vulkan'],
  },
  'darwin-arm64': { metal: ['@node-llama-cpp/mac-arm64-metal'] },
};

/** The `gpu` option as the addon takes it (native/addon/gpu_choice.h). @internal */
export interface NativeGpuChoice {
  /** Backends to try in order: ggml registry name and the libraries that provide it. */
  candidates: { backend: string; libraries: string[] }[];
  /** Whether failing to get the (single) candidate is an error rather than the CPU. */
  required: boolean;
}

/** Finds the folder of an installed package, or undefined. @internal */
export type PackageFinder = (name: string) => string | undefined;

/**
 * Checks a `gpu` option value (`name` is the option's name in errors); undefined gives the
 * default: `$VIDEO_LLAMA_GPU` when set (`auto`, `cuda`, `vulkan`, `metal` or `false`), else `'auto'`.
 * @internal
 */
export function gpuOption(value: unknown, name: string): GpuOption {
  if (value === undefined) {
    const env = process.env[GPU_ENV];
    if (env === undefined || env === '') return 'auto';
    return gpuOption(env === 'false' ? false : env, `$${GPU_ENV}`);
  }
  if (value === false || value === 'auto' || FLAVOURS.includes(value as GpuFlavour)) return value as GpuOption;
  throw invalidArgument(name, "'auto', 'cuda', 'vulkan', 'metal' or false", value);
}

function packageName(dir: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name;
  } catch {
    return undefined;
  }
}

/** Looks packages up the way node-llama-cpp does (they are its optional dependencies), then from here. */
function findInstalledPackage(name: string): string | undefined {
  const here = createRequire(import.meta.url);
  const bases = [here];
  try {
    bases.unshift(createRequire(here.resolve('node-llama-cpp')));
  } catch {
    // node-llama-cpp is not resolvable (a trimmed copy): only the packages next to ours count
  }
  for (const base of bases) {
    let entry: string;
    try {
      entry = base.resolve(name);
    } catch {
      continue;
    }
    for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      if (packageName(dir) === name) return dir;
    }
  }
  return undefined;
}

/** The ggml backend libraries of `flavour` under a package folder (`bins/…`, fallback builds last). */
function backendLibraries(dir: string, flavour: GpuFlavour): string[] {
  const file = new RegExp(`^(lib)?ggml-${flavour}\\.(so|dylib|dll)$`);
  const found: string[] = [];
  const walk = (folder: string, depth: number): void => {
    const entries = fs.readdirSync(folder, { withFileTypes: true });
    for (const entry of entries) if (entry.isFile() && file.test(entry.name)) found.push(path.join(folder, entry.name));
    if (depth > 0) for (const entry of entries) if (entry.isDirectory()) walk(path.join(folder, entry.name), depth - 1);
  };
  if (fs.existsSync(path.join(dir, 'bins'))) walk(path.join(dir, 'bins'), 3);
  return found;
}

/** The node-llama-cpp version this package pins exactly; its platform packages share it. */
function nodeLlamaCppVersion(): string {
  const manifest = createRequire(import.meta.url)('../package.json') as { dependencies: Record<string, string> };
  return manifest.dependencies['node-llama-cpp']!;
}

function platformKey(): string {
  return `${process.platform}-${process.arch}`;
}

/**
 * The backend of `flavour` on this platform, or why there is none: a `GPU_UNAVAILABLE` error
 * naming the package to install.
 */
function flavourCandidate(flavour: GpuFlavour, find: PackageFinder): NativeGpuChoice['candidates'][number] | VideoLlamaError {
  const packages = FLAVOUR_PACKAGES[platformKey()]?.[flavour];
  if (!packages) {
    return new VideoLlamaError('GPU_UNAVAILABLE', `node-llama-cpp has no ${BACKEND_NAMES[flavour]} build for ${platformKey()}`,
      { gpu: flavour, platform: platformKey() });
  }
  const dirs = packages.map(find).filter((dir): dir is string => dir !== undefined);
  if (dirs.length === 0) {
    return new VideoLlamaError('GPU_UNAVAILABLE',
      `gpu: '${flavour}' needs node-llama-cpp's ${BACKEND_NAMES[flavour]} build, and the package ${packages[0]} is not installed. ` +
      `Install it with \`npm install ${packages[0]}@${nodeLlamaCppVersion()}\` (node-llama-cpp's version), or load with gpu: 'auto' or false.`,
      { gpu: flavour, package: packages[0] });
  }
  return { backend: BACKEND_NAMES[flavour], libraries: dirs.flatMap((dir) => backendLibraries(dir, flavour)) };
}

/**
 * Resolves a checked `gpu` option ({@link gpuOption}) to what the addon loads. Throws
 * GPU_UNAVAILABLE when a named flavour is not installed for this platform; whether its
 * library loads and finds a device is the addon's to say (GPU_UNAVAILABLE too).
 * @internal
 */
export function resolveGpu(option: GpuOption, find: PackageFinder = findInstalledPackage): NativeGpuChoice {
  if (option === false) return { candidates: [], required: false };
  if (option !== 'auto') {
    const candidate = flavourCandidate(option, find);
    if (candidate instanceof VideoLlamaError) throw candidate;
    return { candidates: [candidate], required: true };
  }
  const candidates = FLAVOURS.map((flavour) => flavourCandidate(flavour, find))
    .filter((c): c is NativeGpuChoice['candidates'][number] => !(c instanceof VideoLlamaError));
  return { candidates, required: false };
}
