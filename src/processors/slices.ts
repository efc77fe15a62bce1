/**
 * Long preprocessing (resizing a 48-megapixel photo, the fbank of many clips) written as
 * generators that `yield` at points where pausing is cheap (after a row, after a few fbank
 * frames). {@link runSliced} runs such work in slices of a few milliseconds and lets the event
 * loop run between them, so an encode never stalls a server's other requests; {@link runToEnd}
 * runs it at once (the synchronous helpers that tests and scripts call).
 *
 * Why slices and not a worker thread: the work is pure JavaScript over one buffer, a worker
 * would need its own copy of the processors' modules (which Node 20 cannot load from the
 * TypeScript sources the tests run), and slicing keeps the longest stall to about
 * {@link SLICE_MS} while costing no copy of the picture.
 * @module
 */

/** Work that pauses (yields) between slices and returns T. */
export type Sliced<T> = Generator<void, T, void>;

/** Longest stretch of work between two turns of the event loop, in milliseconds. */
export const SLICE_MS = 10;

/** Runs `work` to its end without pausing. */
export function runToEnd<T>(work: Sliced<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/** Runs `work` in slices of about {@link SLICE_MS}, letting the event loop run between them. */
export async function runSliced<T>(work: Sliced<T>): Promise<T> {
  let sliceStart = performance.now();
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart >= SLICE_MS) {
      await new Promise<void>((resolve) => { setImmediate(resolve); });
      sliceStart = performance.now();
    }
  }
}
