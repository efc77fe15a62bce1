/**
 * Turns the raw text of a generation into the reply, as the original's `Chat.answer` does
 * (`output_text.split(stop)[0].strip()`), incrementally: text is released only once no later
 * token can change it (it could still turn out to be the start of a stop string, or trailing
 * whitespace that `strip()` removes).
 * @internal
 * @module
 */

/** The reply text of a generation, fed piece by piece. */
export class ReplyText {
  private raw = '';
  private released = 0;
  private stopAt = -1;

  constructor(private readonly stopStrings: readonly string[]) {}

  /** Whether a stop string has been seen. */
  get stopped(): boolean {
    return this.stopAt >= 0;
  }

  /** Adds generated text; returns the part of the reply that is now certain. */
  push(text: string): string {
    if (this.stopped) return '';
    this.raw += text;
    this.stopAt = this.findStop();
    const visible = this.stopped ? this.raw.slice(0, this.stopAt) : this.raw;
    const start = visible.length - visible.trimStart().length;
    let end = visible.length;
    if (!this.stopped) end -= this.partialStopLength(visible);
    while (end > start && /\s/.test(visible[end - 1]!)) end--;
    return this.release(visible, start, end);
  }

  /** Ends the generation; returns what remains of the reply. */
  finish(): string {
    const visible = this.stopped ? this.raw.slice(0, this.stopAt) : this.raw;
    const trimmed = visible.trim();
    const start = visible.length - visible.trimStart().length;
    return this.release(visible, start, start + trimmed.length);
  }

  /** The whole reply (complete after {@link finish}). */
  get text(): string {
    return (this.stopped ? this.raw.slice(0, this.stopAt) : this.raw).trim();
  }

  private release(visible: string, start: number, end: number): string {
    const from = Math.max(start, this.released);
    if (end <= from) return '';
    this.released = end;
    return visible.slice(from, end);
  }

  private findStop(): number {
    let first = -1;
    for (const stop of this.stopStrings) {
      const at = stop ? this.raw.indexOf(stop) : -1;
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    return first;
  }

  /** Length of the longest end of `text` that begins some stop string. */
  private partialStopLength(text: string): number {
    let longest = 0;
    for (const stop of this.stopStrings) {
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}
