/**
 * What the command line says on stderr besides errors: progress of long work (loading, decoding,
 * each encoder stage, converting) only when stderr is a terminal, one line rewritten in place, so
 * pipes and logs stay clean; and notes about options that do not apply, always.
 * @internal
 * @module
 */
import type { EncodeProgress } from '../projector.js';

/** `VIDEO_LLAMA_PROGRESS=1` shows progress on any stderr (one line per step), `=0` hides it. */
export const PROGRESS_ENV = 'VIDEO_LLAMA_PROGRESS';

/** One progress line on stderr. */
export class Progress {
  /** Whether anything is shown. */
  readonly enabled: boolean;
  /** On a terminal the line is rewritten in place; otherwise (forced) each step is a line. */
  private readonly inPlace: boolean;
  private last = '';

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    const forced = process.env[PROGRESS_ENV];
    this.inPlace = stream.isTTY === true;
    this.enabled = forced === '1' || (forced !== '0' && this.inPlace);
  }

  /** Shows `line` in place of the previous one. */
  update(line: string): void {
    if (!this.enabled || line === this.last) return;
    this.last = line;
    this.stream.write(this.inPlace ? `\r\x1b[K${line}` : `${line}\n`);
  }

  /** `label 42%`. */
  fraction(label: string, done: number): void {
    this.update(`${label} ${Math.floor(100 * Math.min(Math.max(done, 0), 1))}%`);
  }

  /** An encoder stage as it finishes: `encoding: vit done (1/3)`; an encode's `onProgress`. */
  encoderStage = ({ stage, completed, total }: EncodeProgress): void => {
    this.update(`encoding: ${stage} done (${completed}/${total})`);
  };

  /** Ends the progress: the line is cleared (in place) and `line`, when given, kept. */
  done(line?: string): void {
    if (!this.enabled) return;
    if (this.inPlace && this.last !== '') this.stream.write('\r\x1b[K');
    this.last = '';
    if (line !== undefined) this.stream.write(`${line}\n`);
  }
}

/** A note on stderr about how the command understood its arguments (an option that does not apply). */
export function note(text: string): void {
  process.stderr.write(`video-llama: note: ${text}\n`);
}
