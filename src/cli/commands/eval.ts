/**
 * `video-llama eval --llm L --projector P --world DIR [--world DIR2 …]`: ask every question of world
 * dataset folders (greedy) and print the accuracy per attribute and split.
 * @internal
 * @module
 */
import type { TemplateName } from '../../chat/templates.js';
import { invalidArgument } from '../../errors.js';
import { type AskQuestion, evaluateWorlds, formatEvalTable } from '../../eval/evaluate.js';
import type { MediaEmbedding } from '../../media-embedding.js';
import type { ManifestEntry } from '../../train/manifest.js';
import { VideoLlama } from '../../video-llama.js';
import { requireString, type Command } from '../command.js';
import { optionalNumber, templateOption } from '../options.js';

/** `video-llama eval --llm model.gguf --projector projector.gguf --world data/heldout --world data/other`. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'Ask the questions of world datasets (greedy) and print the accuracy per attribute and split',
  options: {
    llm: { type: 'string', value: '<model.gguf>', description: 'Language model GGUF (required)' },
    projector: { type: 'string', value: '<projector.gguf>', description: 'Projector GGUF (required)' },
    world: { type: 'string', multiple: true, value: '<dir>', description: 'A dataset folder of `video-llama world` (required; repeat for more splits)' },
    limit: { type: 'string', value: '<n>', description: 'Evaluate the first n samples of each folder (default all)' },
    template: { type: 'string', value: 'llama2|vicuna', description: 'Conversation template (default: as chat picks it for the LLM)' },
    'max-tokens': { type: 'string', value: '<n>', description: 'Longest reply in tokens (default 64)' },
    threads: { type: 'string', value: '<n>', description: 'CPU threads (default: all cores)' },
    'context-size': { type: 'string', value: '<n>', description: 'Context positions (default 2048)' },
    json: { type: 'boolean', description: 'Print the reports (scores and every question) as JSON instead of the table' },
  },
  async run(args) {
    if (args.positionals.length > 0) throw invalidArgument('arguments', 'options only', args.positionals.join(' '));
    const worlds = args.values.world;
    if (!Array.isArray(worlds) || worlds.length === 0) throw invalidArgument('--world', 'at least one dataset folder', undefined);
    const limit = optionalNumber(args, 'limit', { integer: true, min: 1 });
    const maxTokens = optionalNumber(args, 'max-tokens', { integer: true, min: 1 }) ?? 64;
    const template = templateOption(args);
    const llama = await VideoLlama.load({
      llm: requireString(args, 'llm'), projector: requireString(args, 'projector'),
      threads: optionalNumber(args, 'threads', { integer: true, min: 1 }),
      contextSize: optionalNumber(args, 'context-size', { integer: true, min: 1 }) ?? 2048,
    });
    let lastReport = 0;
    let reports;
    try {
      reports = await evaluateWorlds(worlds, chatAsker(llama, template, maxTokens), {
        limit,
        onProgress: (done, total, world) => {
          const now = performance.now();
          if (done === total || now - lastReport > 2000) {
            lastReport = now;
            process.stderr.write(`eval: ${world}: ${done}/${total} samples\n`);
          }
        },
      });
    } finally {
      await llama.dispose();
    }
    console.log(args.values.json === true ? JSON.stringify(reports, null, 2) : formatEvalTable(reports));
  },
};

/** Asks in a new greedy chat with the entry's media (`encodeMedia`), encoded once per entry. */
function chatAsker(llama: VideoLlama, template: TemplateName | undefined, maxTokens: number): AskQuestion {
  let current: { entry: ManifestEntry; media: MediaEmbedding[] } | undefined;
  return async (entry, question) => {
    if (current?.entry !== entry) current = { entry, media: await llama.encodeMedia(entry.media) };
    const chat = llama.createChat({ template });
    try {
      return await chat.send({ text: question, media: current.media }, { temperature: 0, maxTokens });
    } finally {
      await chat.dispose();
    }
  };
}
