/**
 * `video-llama eval (--model DIR | --llm L --projector P) [--world DIR …] [--quality]`: ask every
 * question of world dataset folders, and/or the quality check's fixed held-out clips (greedy), and
 * print the accuracy per attribute and split.
 * @internal
 * @module
 */
import os from 'node:os';
import path from 'node:path';

import { EncodeCache } from '../../cache/encode-cache.js';
import { invalidArgument } from '../../errors.js';
import { chatAsker, type MediaChoice } from '../../eval/chat-asker.js';
import { evaluateWorlds, formatEvalTable, type EvalReport } from '../../eval/evaluate.js';
import { readModelPackage } from '../../eval/model-package.js';
import { checkQuality } from '../../eval/quality.js';
import { VideoLlama } from '../../video-llama.js';
import { requireString, type Command, type ParsedArgs } from '../command.js';
import { optionalNumber, optionalString, templateOption } from '../options.js';

/**
 * Default samples in flight: one's encode runs beside another's chats. More cost CPU on small models
 * (measured on the demo sizes: 4 took 1.4x the CPU of 1, 2 about 1.1x; likely libllama's unified KV
 * cache, where a token's attention spans the cells of every sequence), so 2.
 */
const DEFAULT_PARALLEL = 2;
/** KV cells per chat by default: the longest world prompt (~200 positions with the media) plus a reply. */
const CELLS_PER_CHAT = 512;

/** The LLM and projector files: a model package's, or the two options'. */
async function modelFiles(args: ParsedArgs): Promise<{ llm: string; projector: string; template?: 'llama2' | 'vicuna' }> {
  const dir = optionalString(args, 'model');
  if (dir === undefined) return { llm: requireString(args, 'llm'), projector: requireString(args, 'projector') };
  if (args.values.llm !== undefined || args.values.projector !== undefined) throw invalidArgument('--model', 'either --model or --llm and --projector', dir);
  const pkg = await readModelPackage(dir);
  return { llm: pkg.llm, projector: pkg.projector, template: pkg.manifest.template };
}

/** `--media`, checked before anything loads. */
function mediaChoice(args: ParsedArgs): MediaChoice {
  const value = optionalString(args, 'media') ?? 'per-branch';
  if (value !== 'together' && value !== 'per-branch') throw invalidArgument('--media', "'together' or 'per-branch'", value);
  return value;
}

/** `video-llama eval --llm model.gguf --projector projector.gguf --world data/heldout --world data/other`. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'Ask the questions of world datasets (greedy) and print the accuracy per attribute and split',
  options: {
    model: { type: 'string', value: '<dir>', description: 'A model package folder (model.json; e.g. models/demo), instead of --llm and --projector' },
    llm: { type: 'string', value: '<model.gguf>', description: 'Language model GGUF' },
    projector: { type: 'string', value: '<projector.gguf>', description: 'Projector GGUF' },
    world: { type: 'string', multiple: true, value: '<dir>', description: 'A dataset folder of `video-llama world` (repeat for more splits)' },
    quality: { type: 'boolean', description: 'Also ask the quality check: colour, shape, motion and sound of 8 fixed held-out clips' },
    'quality-dir': { type: 'string', value: '<dir>', description: 'Where the quality check\'s clips are rendered (default: a folder in the OS temp dir)' },
    limit: { type: 'string', value: '<n>', description: 'Evaluate the first n samples of each folder (default all)' },
    parallel: { type: 'string', value: '<n>', description: `Samples asked about at once, each on its own sequence (default ${DEFAULT_PARALLEL})` },
    media: { type: 'string', value: 'together|per-branch', description: "Media sent with a question: only the branch's that perceives it, as stage 2 trains (default), or all of the sample's, as a user sends a file" },
    template: { type: 'string', value: 'llama2|vicuna', description: "Conversation template (default: the package's, else as chat picks it for the LLM)" },
    'max-tokens': { type: 'string', value: '<n>', description: 'Longest reply in tokens (default 64)' },
    threads: { type: 'string', value: '<n>', description: 'CPU threads (default: all cores)' },
    'context-size': { type: 'string', value: '<n>', description: `Context positions, shared by the parallel chats (default ${CELLS_PER_CHAT} per chat)` },
    'cache-dir': { type: 'string', value: '<dir>', description: 'Keep the media embeddings on disk here, so that a second run encodes nothing (default: memory only)' },
    json: { type: 'boolean', description: 'Print the reports (scores and every question) as JSON instead of the table' },
  },
  async run(args) {
    if (args.positionals.length > 0) throw invalidArgument('arguments', 'options only', args.positionals.join(' '));
    const worlds = (args.values.world ?? []) as string[];
    const quality = args.values.quality === true;
    if (worlds.length === 0 && !quality) throw invalidArgument('--world', 'at least one dataset folder (or --quality)', undefined);
    const limit = optionalNumber(args, 'limit', { integer: true, min: 1 });
    const maxTokens = optionalNumber(args, 'max-tokens', { integer: true, min: 1 }) ?? 64;
    const parallel = optionalNumber(args, 'parallel', { integer: true, min: 1 }) ?? DEFAULT_PARALLEL;
    const media = mediaChoice(args);
    const files = await modelFiles(args);
    const cacheDir = optionalString(args, 'cache-dir');
    const llama = await VideoLlama.load({
      llm: files.llm, projector: files.projector,
      threads: optionalNumber(args, 'threads', { integer: true, min: 1 }),
      sequences: parallel,
      contextSize: optionalNumber(args, 'context-size', { integer: true, min: 1 }) ?? parallel * CELLS_PER_CHAT,
      cache: new EncodeCache({ cacheDir }),
    });
    const asker = chatAsker(llama, { template: templateOption(args) ?? files.template, maxTokens, media });
    const reports: EvalReport[] = [];
    try {
      const started = performance.now();
      let lastReport = 0;
      if (worlds.length > 0) {
        reports.push(...await evaluateWorlds(worlds, asker.ask, {
          limit,
          concurrency: asker.concurrency,
          onProgress: (done, total, world) => {
            const now = performance.now();
            if (done === total || now - lastReport > 2000) {
              lastReport = now;
              process.stderr.write(`eval: ${world}: ${done}/${total} samples (${((now - started) / 1000).toFixed(0)} s)\n`);
            }
          },
        }));
      }
      if (quality) {
        reports.push(await checkQuality(asker, { dir: optionalString(args, 'quality-dir') ?? path.join(os.tmpdir(), 'video-llama-quality-clips') }));
      }
      process.stderr.write(`eval: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    } finally {
      await asker.dispose();
      await llama.dispose();
    }
    console.log(args.values.json === true ? JSON.stringify(reports, null, 2) : formatEvalTable(reports));
  },
};
