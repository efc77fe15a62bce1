/**
 * A bounded queue in front of the model: `concurrency` jobs run, at most `maxWaiting` wait, the
 * rest are refused at once (the route answers 429 with Retry-After). A waiting job whose client
 * goes away leaves the queue.
 * @module
 */
import { ApiError } from './api-error.js';

/** Runs jobs `concurrency` at a time in arrival order, with a bounded wait list. */
export class RequestQueue {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  /**
   * @param concurrency - jobs that run at once
   * @param maxWaiting - jobs that may wait; one more is refused
   * @param retryAfterSeconds - what a refused client is told to wait
   */
  constructor(readonly concurrency: number, readonly maxWaiting: number, private readonly retryAfterSeconds: number) {}

  /** Jobs waiting for a turn. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Jobs running. */
  get running(): number {
    return this.active;
  }

  /**
   * Runs `job` when a slot is free. Throws a 429 {@link ApiError} at once when the wait list is
   * full; rejects with `signal`'s reason when it aborts while waiting.
   */
  async run<T>(signal: AbortSignal, job: () => Promise<T>): Promise<T> {
    await this.acquire(signal);
    try {
      return await job();
    } finally {
      this.active--;
      this.waiters.shift()?.();
    }
  }

  private acquire(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.active < this.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.maxWaiting) {
      throw new ApiError(429, `the server is busy (${this.active} running, ${this.waiters.length} waiting); retry later`,
        'queue_full', null, this.retryAfterSeconds);
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(signal.reason);
      };
      const waiter = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.active++;
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }
}
