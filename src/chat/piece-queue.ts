/**
 * Text pieces pushed by a running generation and pulled by an async iterator, ending with
 * the generation (or its error).
 * @internal
 * @module
 */

/** A single-consumer queue of text pieces that ends, or fails, once. */
export class PieceQueue implements AsyncIterable<string> {
  private readonly pieces: string[] = [];
  private ended = false;
  private error: unknown;
  private failed = false;
  private wake: (() => void) | undefined;

  push(piece: string): void {
    this.pieces.push(piece);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: unknown): void {
    this.failed = true;
    this.error = error;
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      if (this.pieces.length > 0) {
        yield this.pieces.shift()!;
      } else if (this.ended) {
        if (this.failed) throw this.error;
        return;
      } else {
        await new Promise<void>((resolve) => { this.wake = resolve; });
      }
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
