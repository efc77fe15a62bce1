/**
 * `video-llama train <recipe.json>`: train what a recipe says (src/train/recipe.ts), with a progress
 * line (loss, samples/s, ETA) and checkpoints; Ctrl+C stops after the current step, checkpointed,
 * and the same command resumes.
 * @internal
 * @module
 */
import { invalidArgument } from '../../errors.js';
import { type PretrainLlmProgress, pretrainLlm } from '../../train/llm-pretrain.js';
import { type LlmRecipe, loadRecipe, type Recipe } from '../../train/recipe.js';
import { type RecipeEvent, runRecipe } from '../../train/run-recipe.js';
import type { Command } from '../command.js';

/** Seconds as `1h02m`, `3m05s` or `12s`. */
function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Writes a line to stderr at most every 2 s, and always the final one. */
function throttledLines(): (final: boolean, line: string) => void {
  let last = 0;
  return (final, line) => {
    const now = performance.now();
    if (!final && now - last < 2000) return;
    last = now;
    process.stderr.write(`${line}\n`);
  };
}

/** One stderr line per event of a branch recipe, steps at most every 2 s (and the last). */
function reporter(): (event: RecipeEvent) => void {
  const throttled = throttledLines();
  return (event) => {
    switch (event.type) {
      case 'examples': return throttled(event.done === event.total, `train: examples ${event.done}/${event.total} entries`);
      case 'bad-entry': return process.stderr.write(`train: skipped ${event.entry.manifest}:${event.entry.line} (${event.entry.problem}): ${event.entry.message}\n`);
      case 'branch': return process.stderr.write(`train: ${event.branch} branch, ${event.examples} examples${event.resumedAt > 0 ? `, resuming at step ${event.resumedAt}` : ''}\n`);
      case 'checkpoint': return process.stderr.write(`train: ${event.branch} checkpoint at step ${event.step}: ${event.file}\n`);
      case 'step': {
        const p = event.progress;
        return throttled(p.step === p.totalSteps, `train: ${event.branch} step ${p.step}/${p.totalSteps} epoch ${p.epoch} loss ${p.loss.toFixed(4)} ` +
          `lr ${p.learningRate.toExponential(2)} ${p.samplesPerSecond.toFixed(2)} samples/s ETA ${duration(p.etaSeconds)}`);
      }
    }
  };
}

async function trainBranches(recipe: Recipe, signal: AbortSignal): Promise<void> {
  const result = await runRecipe(recipe, { signal, onEvent: reporter() });
  const trained = Object.entries(result.examples).map(([branch, n]) => `${branch} (${n} examples)`).join(', ');
  console.log(`trained ${trained}; ${result.badEntries.length} bad entries skipped`);
  console.log(result.output);
}

async function pretrain(recipe: LlmRecipe, signal: AbortSignal): Promise<void> {
  const throttled = throttledLines();
  const onProgress = (p: PretrainLlmProgress) => throttled(p.step === p.steps, `train: llm step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ` +
    `lr ${p.learningRate.toExponential(2)} ${p.tokensPerSecond.toFixed(0)} tokens/s ETA ${duration(p.etaSeconds)}`);
  const result = await pretrainLlm(recipe.options, { signal, onProgress });
  console.log(`trained the LLM for ${result.steps} steps${result.resumedFrom > 0 ? ` (resumed at step ${result.resumedFrom})` : ''}`);
  console.log(result.model);
}

/** `video-llama train training/stage2.json`. */
export const trainCommand: Command = {
  name: 'train',
  summary: 'Train as a recipe says: the projector\'s branches (stage 1 captions, stage 2 instructions) or the LLM (stage "llm"); resumable',
  positionals: '<recipe.json>',
  options: {},
  async run(args) {
    if (args.positionals.length !== 1) throw invalidArgument('arguments', 'one recipe file', args.positionals.join(' '));
    const recipe = await loadRecipe(args.positionals[0]!);
    const controller = new AbortController();
    const stop = () => {
      process.stderr.write('train: stopping after this step (run the same command to resume)\n');
      controller.abort();
    };
    process.once('SIGINT', stop);
    try {
      await (recipe.stage === 'llm' ? pretrain(recipe, controller.signal) : trainBranches(recipe, controller.signal));
    } finally {
      process.off('SIGINT', stop);
    }
  },
};
