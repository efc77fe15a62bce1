/**
 * Telling a bad download from a checkpoint, so the error says what the file is and what to do:
 * a Git LFS pointer (a clone without `git lfs pull`), an HTML page saved under the checkpoint's
 * name (an error, sign-in or "blob" page), a pre-1.6 `torch.save` file, or a partial download.
 * @internal
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { VideoLlamaError } from '../errors.js';

/**
 * Sizes of the release files as the Hugging Face file listings show them (rounded by the hub, in
 * MB = 10^6 bytes): DAMO-NLP-SG/Video-LLaMA-2-{7B,13B}-{Pretrained,Finetuned}.
 */
const RELEASE_FILE_MB: Readonly<Record<string, number>> = {
  'VL_LLaMA_2_7B_Pretrained.pth': 266,
  'VL_LLaMA_2_7B_Finetuned.pth': 266,
  'AL_LLaMA_2_7B_Pretrained.pth': 275,
  'AL_LLaMA_2_7B_Finetuned.pth': 275,
  'VL_LLaMA_2_13B_Pretrained.pth': 275,
  'VL_LLaMA_2_13B_Finetuned.pth': 275,
  'AL_LLaMA_2_13B_Pretrained.pth': 284,
  'AL_LLaMA_2_13B_Finetuned.pth': 284,
  'imagebind_huge.pth': 4800,
};

/** How many leading bytes are enough to recognise a pointer or a page. */
const HEAD_BYTES = 1024;
const LFS_POINTER = 'version https://git-lfs.github.com/spec/';
const ZIP_LOCAL_HEADER = Buffer.from('PK\x03\x04', 'latin1');

/** What the start of a file says it is. */
export interface FileHead {
  /** The file's size in bytes. */
  size: number;
  /** Whether it starts like a zip archive (a `torch.save` checkpoint, maybe cut short). */
  startsLikeZip: boolean;
}

function badDownload(file: string, problem: string, message: string, extra: Record<string, unknown> = {}): VideoLlamaError {
  return new VideoLlamaError('INVALID_MODEL', `${path.basename(file)} ${message}`, { file, problem, ...extra });
}

/** `bytes` as the hubs write sizes: `134 bytes`, `120.3 MB`, `4.8 GB`. */
function formatBytes(bytes: number): string {
  if (bytes < 1e6) return `${bytes} bytes`;
  return bytes < 1e9 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e9).toFixed(2)} GB`;
}

/**
 * Reads the start of `file` and throws INVALID_MODEL when it is a Git LFS pointer, an HTML page
 * or a pre-1.6 `torch.save` pickle; otherwise returns what {@link partialDownloadError} needs.
 */
export async function checkFileHead(file: string): Promise<FileHead> {
  const handle = await fs.open(file, 'r');
  let head: Buffer;
  let size: number;
  try {
    size = (await handle.stat()).size;
    head = Buffer.alloc(Math.min(size, HEAD_BYTES));
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const text = head.toString('utf8');
  if (text.startsWith(LFS_POINTER)) throw lfsPointerError(file, text, size);
  if (/^\uFEFF?\s*<(!doctype html|html|head|body)[\s>]/i.test(text)) {
    const title = /<title[^>]*>([^<]{1,120})/i.exec(text)?.[1]?.trim();
    throw badDownload(file, 'html-page',
      `is an HTML page (${formatBytes(size)}${title ? `, titled "${title}"` : ''}), not a checkpoint: the download saved a web page ` +
        `(an error, sign-in or preview page) under the checkpoint's name. Download it again from the file's direct link ` +
        `(on Hugging Face: …/resolve/main/<file>, not …/blob/main/<file>)`);
  }
  if (head[0] === 0x80 && head[1]! <= 5) {
    throw badDownload(file, 'legacy-format',
      'is not a valid PyTorch checkpoint: it is in the legacy (pre-1.6) torch.save format; re-save it with torch.save(torch.load(f), f) on a recent PyTorch');
  }
  return { size, startsLikeZip: head.subarray(0, 4).equals(ZIP_LOCAL_HEADER) };
}

/** A pointer's `size` and `oid` lines (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md). */
function lfsPointerError(file: string, text: string, pointerBytes: number): VideoLlamaError {
  const size = /^size (\d+)$/m.exec(text)?.[1];
  const oid = /^oid sha256:([0-9a-f]{64})$/m.exec(text)?.[1];
  const real = size ? `the real file is ${formatBytes(Number(size))}${oid ? ` (sha256 ${oid.slice(0, 12)}…)` : ''}` : 'the real file was never downloaded';
  return badDownload(file, 'lfs-pointer',
    `is a Git LFS pointer (${formatBytes(pointerBytes)} of text), not the checkpoint: ${real}. ` +
      'Run `git lfs pull` in the cloned repository (after `git lfs install`), or download the file itself',
    size ? { expectedBytes: Number(size) } : {});
}

/**
 * The error for a file that starts like a checkpoint but lacks the zip directory at its end:
 * a download cut short. Names the release size when the file name is a release file's.
 */
export function partialDownloadError(file: string, head: FileHead): VideoLlamaError {
  const releaseMb = RELEASE_FILE_MB[path.basename(file)];
  const expected = releaseMb === undefined ? '' : `; the release ${path.basename(file)} is about ${formatBytes(releaseMb * 1e6)} (Hugging Face listing)`;
  return badDownload(file, 'partial-download',
    `is a partial download: it has ${formatBytes(head.size)} and ends without the zip directory that closes every checkpoint${expected}. ` +
      'Download it again (or resume the download)',
    releaseMb === undefined ? {} : { expectedBytes: releaseMb * 1e6 });
}
