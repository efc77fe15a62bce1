/**
 * A model package: a folder with an LLM GGUF, a projector GGUF and `model.json`, the manifest that
 * names them with their sizes and SHA-256 and says how they were trained (docs/demo-model.md). The
 * demo model trained on the world ships as one in the npm package, under `models/demo/`.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { TemplateName } from '../chat/templates.js';
import { VideoLlamaError } from '../errors.js';

/** `model.json`'s `format`. */
export const MODEL_PACKAGE_FORMAT = 'video-llama-model';
/** The manifest's file name in a package folder. */
export const MODEL_PACKAGE_MANIFEST = 'model.json';

/** One file of a package: its name in the folder, size and SHA-256 (hex). */
export interface PackagedFile {
  /** File name, relative to the package folder. */
  file: string;
  /** Size in bytes. */
  bytes: number;
  /** SHA-256 of the content, 64 lowercase hex digits. */
  sha256: string;
}

/** Where a packaged model came from. */
export interface ModelProvenance {
  /** The recipes that trained it, in order (paths in the repository, e.g. `training/stage2.json`). */
  recipes: string[];
  /** The git commit of the code and recipes that trained it. */
  commit: string;
  /** The data it was trained on, in words (e.g. `world train split, seed 1, 5,000 scenes`). */
  data: string;
}

/** `model.json`. */
export interface ModelPackageManifest {
  /** {@link MODEL_PACKAGE_FORMAT}. */
  format: typeof MODEL_PACKAGE_FORMAT;
  /** Version of this layout: 1. */
  version: 1;
  /** A name for messages. */
  name: string;
  /** The language model GGUF. */
  llm: PackagedFile;
  /** The projector GGUF made for it. */
  projector: PackagedFile;
  /** The conversation template it was trained in. */
  template: TemplateName;
  /** How it was trained. */
  training: ModelProvenance;
}

/** A package read and checked: its manifest and the absolute paths of its files. */
export interface ModelPackage {
  /** The package folder, absolute. */
  dir: string;
  /** The manifest. */
  manifest: ModelPackageManifest;
  /** The LLM file, absolute. */
  llm: string;
  /** The projector file, absolute. */
  projector: string;
}

/**
 * The demo model's folder: `$VIDEO_LLAMA_DEMO_MODEL` when set, else `models/demo/` of this
 * installation (present once the trained demo model is committed).
 */
export function demoModelDir(): string {
  return process.env.VIDEO_LLAMA_DEMO_MODEL ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'demo');
}

/** Whether `dir` holds a package manifest (whether it is valid is {@link readModelPackage}'s to say). */
export async function hasModelPackage(dir: string): Promise<boolean> {
  return fs.stat(path.join(dir, MODEL_PACKAGE_MANIFEST)).then((stat) => stat.isFile(), () => false);
}

/** SHA-256 of a file, hex, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function invalidPackage(dir: string, problem: string): VideoLlamaError {
  return new VideoLlamaError('INVALID_MODEL', `${path.join(dir, MODEL_PACKAGE_MANIFEST)}: ${problem}`, { dir });
}

const isString = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** The manifest's fields checked; throws INVALID_MODEL naming the first bad one. */
function checkManifest(dir: string, value: unknown): ModelPackageManifest {
  const m = value as Partial<ModelPackageManifest> | null;
  if (typeof m !== 'object' || m === null || m.format !== MODEL_PACKAGE_FORMAT) throw invalidPackage(dir, `not a model package (format is not "${MODEL_PACKAGE_FORMAT}")`);
  if (m.version !== 1) throw invalidPackage(dir, `version ${String(m.version)} is not 1`);
  if (!isString(m.name)) throw invalidPackage(dir, 'name must be a non-empty string');
  for (const key of ['llm', 'projector'] as const) {
    const file = m[key];
    if (typeof file !== 'object' || file === null || !isString(file.file) || path.basename(file.file) !== file.file ||
      !Number.isInteger(file.bytes) || file.bytes < 1 || !/^[0-9a-f]{64}$/.test(String(file.sha256))) {
      throw invalidPackage(dir, `${key} must be { file: a name in the folder, bytes: a positive integer, sha256: 64 hex digits }`);
    }
  }
  if (m.template !== 'llama2' && m.template !== 'vicuna') throw invalidPackage(dir, 'template must be "llama2" or "vicuna"');
  const t = m.training;
  if (typeof t !== 'object' || t === null || !Array.isArray(t.recipes) || !t.recipes.every(isString) || !isString(t.commit) || !isString(t.data)) {
    throw invalidPackage(dir, 'training must be { recipes: [paths], commit: a git commit, data: words }');
  }
  return m as ModelPackageManifest;
}

/**
 * Reads a package folder: the manifest checked, and each file's size and SHA-256 compared with it.
 * Rejects with FILE_NOT_FOUND (no manifest, or a file it names is missing) or INVALID_MODEL (a bad
 * manifest, or a file whose size or hash differs: a truncated or replaced file).
 */
export async function readModelPackage(dir: string): Promise<ModelPackage> {
  const absolute = path.resolve(dir);
  const manifestFile = path.join(absolute, MODEL_PACKAGE_MANIFEST);
  const text = await fs.readFile(manifestFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new VideoLlamaError('FILE_NOT_FOUND', `no model package in ${absolute} (${MODEL_PACKAGE_MANIFEST}: ${error.code ?? error.message})`, { file: manifestFile });
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalidPackage(absolute, `not JSON (${(error as Error).message})`);
  }
  const manifest = checkManifest(absolute, parsed);
  const [llm, projector] = await Promise.all([manifest.llm, manifest.projector].map((entry) => checkedFile(absolute, entry)));
  return { dir: absolute, manifest, llm: llm!, projector: projector! };
}

/** The absolute path of a packaged file whose size and hash match the manifest. */
async function checkedFile(dir: string, entry: PackagedFile): Promise<string> {
  const file = path.join(dir, entry.file);
  const stat = await fs.stat(file).catch(() => {
    throw new VideoLlamaError('FILE_NOT_FOUND', `${file}, named by ${path.join(dir, MODEL_PACKAGE_MANIFEST)}, is missing`, { file });
  });
  if (stat.size !== entry.bytes) throw invalidPackage(dir, `${entry.file} has ${stat.size} bytes, the manifest says ${entry.bytes}`);
  const sha256 = await fileSha256(file);
  if (sha256 !== entry.sha256) throw invalidPackage(dir, `${entry.file}'s SHA-256 is ${sha256}, the manifest says ${entry.sha256}`);
  return file;
}

/** Options of {@link writeModelPackage}. */
export interface WriteModelPackageOptions {
  /** A name for messages. */
  name: string;
  /** The LLM GGUF to copy in (as `llm.gguf`). */
  llm: string;
  /** The projector GGUF to copy in (as `projector.gguf`). */
  projector: string;
  /** The template it was trained in. */
  template: TemplateName;
  /** How it was trained. */
  training: ModelProvenance;
}

/**
 * Makes a package folder (created if missing): copies the two files in as `llm.gguf` and
 * `projector.gguf` and writes `model.json` with their sizes and hashes. Returns the package read back.
 */
export async function writeModelPackage(dir: string, options: WriteModelPackageOptions): Promise<ModelPackage> {
  await fs.mkdir(dir, { recursive: true });
  const files: Record<'llm' | 'projector', PackagedFile> = {} as Record<'llm' | 'projector', PackagedFile>;
  for (const key of ['llm', 'projector'] as const) {
    const file = `${key}.gguf`;
    await fs.copyFile(options[key], path.join(dir, file));
    files[key] = { file, bytes: (await fs.stat(path.join(dir, file))).size, sha256: await fileSha256(path.join(dir, file)) };
  }
  const manifest: ModelPackageManifest = {
    format: MODEL_PACKAGE_FORMAT, version: 1, name: options.name, ...files, template: options.template, training: options.training,
  };
  await fs.writeFile(path.join(dir, MODEL_PACKAGE_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return readModelPackage(dir);
}
