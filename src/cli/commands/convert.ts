/**
 * `video-llama convert`: original release checkpoints → projector GGUF.
 * @internal
 * @module
 */
import fs from 'node:fs/promises';
import os from 'node:os';

import { invalidArgument, VideoLlamaError } from '../../errors.js';
import { convertCheckpoints, partialOutputPath, type ConvertProgress, type ProjectorWeightType } from '../../convert/convert.js';
import type { HeadOptions } from '../../convert/hparams.js';
import { requireString, type Command, type ParsedArgs } from '../command.js';
import { Progress } from '../progress.js';

const HEAD_FLAGS: readonly [keyof HeadOptions, string][] = [
  ['vit', 'vit-heads'],
  ['qformer', 'qformer-heads'],
  ['videoQformer', 'video-qformer-heads'],
  ['audioQformer', 'audio-qformer-heads'],
  ['imagebind', 'imagebind-heads'],
];

function optionalString(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A flag's positive integer, or undefined when it is not given. */
function optionalCount(args: ParsedArgs, flag: string): number | undefined {
  const text = optionalString(args, flag);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value <= 0) throw invalidArgument(`--${flag}`, 'a positive integer', text);
  return value;
}

function headOptions(args: ParsedArgs): HeadOptions {
  const heads: HeadOptions = {};
  for (const [key, flag] of HEAD_FLAGS) {
    const value = optionalCount(args, flag);
    if (value !== undefined) heads[key] = value;
  }
  return heads;
}

/** The conversion's progress: percent of the data, tensors done, the tensor being written. */
function showProgress(progress: Progress): (p: ConvertProgress) => void {
  return (p) => progress.update(`converting ${Math.floor((100 * p.bytesDone) / Math.max(p.bytesTotal, 1))}%  ${p.done}/${p.total} tensors  ${p.tensor}`);
}

/**
 * Refuses an existing output unless `--force`: the library replaces `out` (atomically), the
 * command line does not do so silently.
 */
async function checkNotExisting(out: string, force: boolean): Promise<void> {
  if (force || !(await fs.stat(out).then((s) => s.isFile(), () => false))) return;
  throw new VideoLlamaError('INVALID_ARGUMENT', `--out ${out} already exists: pass --force to replace it`, { name: '--out', out });
}

/**
 * Stops a conversion on Ctrl+C or SIGTERM without leaving its partial file: the file being
 * written is removed and the process exits at once (128 + the signal's number, as shells expect).
 * Returns the function that removes the handlers.
 */
function removePartialOnSignal(out: string): () => void {
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = (): void => {
      fs.rm(partialOutputPath(out), { force: true }).finally(() => {
        process.stderr.write(`\nvideo-llama: convert stopped by ${signal}; no output written\n`);
        process.exit(128 + os.constants.signals[signal]);
      });
    };
    process.once(signal, handler);
    return [signal, handler] as const;
  });
  return () => handlers.forEach(([signal, handler]) => process.off(signal, handler));
}

/** `video-llama convert`; see docs/converting.md. */
export const convertCommand: Command = {
  name: 'convert',
  summary: 'Convert the original Video-LLaMA checkpoints (.pth) into one projector GGUF',
  options: {
    'eva-vit': { type: 'string', value: '<eva_vit_g.pth>', description: 'EVA ViT-g weights (vision; with --blip2 and --video-branch)' },
    blip2: { type: 'string', value: '<blip2_*.pth>', description: 'BLIP-2 checkpoint: ln_vision, Q-Former, query tokens (vision)' },
    'video-branch': { type: 'string', value: '<VL_*.pth>', description: 'Video-LLaMA vision-branch checkpoint (vision)' },
    imagebind: { type: 'string', value: '<imagebind.pth>', description: 'ImageBind-Huge weights (audio; with --audio-branch)' },
    'audio-branch': { type: 'string', value: '<AL_*.pth>', description: 'Video-LLaMA audio-branch checkpoint (audio)' },
    out: { type: 'string', short: 'o', api: 'out', value: '<projector.gguf>', description: 'Output file (required)' },
    type: { type: 'string', value: 'f32|f16|bf16|q8_0', api: 'type', description: 'Type of the big matrices (default f16; bf16 and q8_0 run on the fast AVX-512 CPU kernels; q8_0 rows not a multiple of 32 stay f16)' },
    'vit-heads': { type: 'string', value: '<n>', api: 'heads.vit', description: 'EVA ViT heads (default: width/88 if that is >= 4 heads, e.g. 16 at 1408; else 4)' },
    'qformer-heads': { type: 'string', value: '<n>', api: 'heads.qformer', description: 'Q-Former heads, all three Q-Formers (default: width/64 if >= 4, e.g. 12 at 768; else 4)' },
    'video-qformer-heads': { type: 'string', value: '<n>', api: 'heads.videoQformer', description: 'Video Q-Former heads (default: --qformer-heads, else the rule above)' },
    'audio-qformer-heads': { type: 'string', value: '<n>', api: 'heads.audioQformer', description: 'Audio Q-Former heads (default: --qformer-heads, else the rule above)' },
    'vit-depth': { type: 'string', value: '<n>', api: 'vitDepth', description: 'EVA ViT blocks to run (default: 39 at the release width 1408, as the original; else the blocks in the file minus one)' },
    'imagebind-heads': { type: 'string', value: '<n>', api: 'heads.imagebind', description: 'ImageBind audio heads (default: width/64 if >= 4, e.g. 12 at 768; else 4)' },
    force: { type: 'boolean', short: 'f', description: 'Replace --out if it exists (default: refuse)' },
    quiet: { type: 'boolean', short: 'q', description: 'No progress, even on a terminal (progress is shown only on one)' },
  },
  async run(args) {
    if (args.positionals.length > 0) throw invalidArgument('arguments', 'options only (the files are given with --eva-vit, --blip2, …)', args.positionals.join(' '));
    const out = requireString(args, 'out');
    await checkNotExisting(out, args.values.force === true);
    const progress = new Progress();
    const stopHandling = removePartialOnSignal(out);
    const report = await convertCheckpoints({
      evaVit: optionalString(args, 'eva-vit'),
      blip2: optionalString(args, 'blip2'),
      videoBranch: optionalString(args, 'video-branch'),
      imagebind: optionalString(args, 'imagebind'),
      audioBranch: optionalString(args, 'audio-branch'),
      out,
      type: optionalString(args, 'type') as ProjectorWeightType | undefined,
      heads: headOptions(args),
      vitDepth: optionalCount(args, 'vit-depth'),
      onProgress: args.values.quiet === true ? undefined : showProgress(progress),
    }).finally(stopHandling);
    progress.done();
    if (report.vitDepth) {
      const { depth, blocksInFile, reason } = report.vitDepth;
      console.log(`EVA ViT depth ${depth} of the ${blocksInFile} blocks in the file: ${reason}`);
    }
    const branches = [report.hasVision && 'vision', report.hasAudio && 'audio'].filter(Boolean).join(' + ');
    console.log(
      `wrote ${report.out}: ${branches}, ${report.tensorCount} tensors, ${report.type}, ` +
        `${(report.fileBytes / 2 ** 20).toFixed(1)} MiB in ${report.seconds.toFixed(1)} s`,
    );
  },
};
