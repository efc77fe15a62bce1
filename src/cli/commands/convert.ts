/**
 * `video-llama convert`: original release checkpoints → projector GGUF.
 * @internal
 * @module
 */
import { invalidArgument } from '../../errors.js';
import { convertCheckpoints, type ConvertProgress, type ProjectorWeightType } from '../../convert/convert.js';
import type { HeadOptions } from '../../convert/hparams.js';
import { requireString, type Command, type ParsedArgs } from '../command.js';

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

/** One status line per ~5% of the data, so huge conversions show life without flooding the terminal. */
function progressPrinter(): (p: ConvertProgress) => void {
  let lastPercent = -5;
  return (p) => {
    const percent = Math.floor((100 * p.bytesDone) / Math.max(p.bytesTotal, 1));
    if (percent - lastPercent < 5 && p.done !== p.total) return;
    lastPercent = percent;
    process.stderr.write(`  ${String(percent).padStart(3)}%  ${p.done}/${p.total} tensors  ${p.tensor}\n`);
  };
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
    out: { type: 'string', short: 'o', value: '<projector.gguf>', description: 'Output file (required)' },
    type: { type: 'string', value: 'f32|f16|bf16|q8_0', description: 'Type of the big matrices (default f16; bf16 and q8_0 run on the fast AVX-512 CPU kernels; q8_0 rows not a multiple of 32 stay f16)' },
    'vit-heads': { type: 'string', value: '<n>', description: 'EVA ViT heads (default: width/88 if that is >= 4 heads, e.g. 16 at 1408; else 4)' },
    'qformer-heads': { type: 'string', value: '<n>', description: 'Q-Former heads, all three Q-Formers (default: width/64 if >= 4, e.g. 12 at 768; else 4)' },
    'video-qformer-heads': { type: 'string', value: '<n>', description: 'Video Q-Former heads (default: --qformer-heads, else the rule above)' },
    'audio-qformer-heads': { type: 'string', value: '<n>', description: 'Audio Q-Former heads (default: --qformer-heads, else the rule above)' },
    'vit-depth': { type: 'string', value: '<n>', description: 'EVA ViT blocks to run (default: 39 at the release width 1408, as the original; else the blocks in the file minus one)' },
    'imagebind-heads': { type: 'string', value: '<n>', description: 'ImageBind audio heads (default: width/64 if >= 4, e.g. 12 at 768; else 4)' },
    quiet: { type: 'boolean', short: 'q', description: 'Print only the summary' },
  },
  async run(args) {
    const report = await convertCheckpoints({
      evaVit: optionalString(args, 'eva-vit'),
      blip2: optionalString(args, 'blip2'),
      videoBranch: optionalString(args, 'video-branch'),
      imagebind: optionalString(args, 'imagebind'),
      audioBranch: optionalString(args, 'audio-branch'),
      out: requireString(args, 'out'),
      type: optionalString(args, 'type') as ProjectorWeightType | undefined,
      heads: headOptions(args),
      vitDepth: optionalCount(args, 'vit-depth'),
      onProgress: args.values.quiet === true ? undefined : progressPrinter(),
    });
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
