/**
 * `video-llama plan <media>`: what `describe` would do with a media file — its kind, the frames
 * and sound it would take, the LLM positions, the encoder work — from a probe, without decoding
 * a pixel or loading the LLM.
 * @internal
 * @module
 */
import type { EncodePlan } from '../../plan/plan.js';
import { Projector } from '../../projector.js';
import { onePositional, requireString, type Command } from '../command.js';
import { checkMedia, MEDIA_OPTIONS } from '../media.js';
import { optionalNumber } from '../options.js';
import { Progress } from '../progress.js';

/** Seconds as `12.3 s`. */
const secondsText = (s: number): string => `${s.toFixed(1)} s`;

/** The plan in a few lines for a person. */
function planText(name: string, plan: EncodePlan): string {
  const lines = [`${name}: ${plan.kind}${plan.durationSeconds !== undefined ? `, ${secondsText(plan.durationSeconds)}` : ''}, ${plan.bytes} bytes`];
  if (plan.frameTimes.length > 0) lines.push(`frames at ${plan.frameTimes.map((t) => t.toFixed(1)).join(', ')} s`);
  if (plan.audioRanges.length > 0) lines.push(`sound from ${plan.audioRanges.map(([a, b]) => `${a.toFixed(1)}–${b.toFixed(1)}`).join(', ')} s`);
  lines.push(`${plan.mediaPositions} LLM positions for the media`);
  if (plan.context) lines.push(`${plan.context.positions} of ${plan.context.contextSize} context positions: ${plan.context.fits ? 'fits' : 'does NOT fit'}`);
  lines.push(`${(plan.flop / 1e9).toFixed(1)} GFLOP of encoder work, ${(plan.inputBytes / 2 ** 20).toFixed(1)} MiB of prepared input`);
  return lines.join('\n');
}

/** `video-llama plan clip.mp4 --projector projector.gguf [--json]`. */
export const planCommand: Command = {
  name: 'plan',
  summary: 'Say what describing a media file would take (frames, sound, LLM positions), from a probe',
  positionals: '<media-file|->',
  options: {
    projector: { type: 'string', value: '<projector.gguf>', description: 'Projector GGUF from `video-llama convert` (required)' },
    frames: MEDIA_OPTIONS.frames!,
    clips: MEDIA_OPTIONS.clips!,
    'no-audio': MEDIA_OPTIONS['no-audio']!,
    'context-size': { type: 'string', value: '<n>', api: 'options.contextSize', description: 'Also say whether the media fits a chat context of n positions' },
    json: { type: 'boolean', description: 'Print the plan as one JSON object' },
  },
  async run(args) {
    const name = onePositional(args, 'media file (a path, or - for stdin)');
    const file = requireString(args, 'projector');
    const contextSize = optionalNumber(args, 'context-size', { integer: true, min: 1 });
    const media = await checkMedia(name, args, file);
    const progress = new Progress();
    const projector = await Projector.load(file, { onProgress: (f) => progress.fraction('loading the projector', f) });
    progress.done();
    try {
      const plan = await projector.plan(media.input, { frames: media.frames, clips: media.clips, audio: media.audio, contextSize });
      console.log(args.values.json === true ? JSON.stringify({ file: name, ...plan }) : planText(name, plan));
    } finally {
      await projector.dispose();
    }
  },
};
