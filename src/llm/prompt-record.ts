/**
 * What a KV cache holds, position by position, so that a new prompt is compared with it and
 * only the part after the common prefix is evaluated.
 * @internal
 * @module
 */

/**
 * One run of prompt positions: token ids, or `count` embedding vectors (`data` holds them row
 * after row). Cached positions are matched by token id, or by the identity of `data` and the
 * row index, so an embedding's `data` must not change once evaluated.
 */
export type PromptItem =
  | { readonly type: 'tokens'; readonly tokens: Int32Array }
  | { readonly type: 'embeddings'; readonly data: Float32Array; readonly count: number };

/** The positions of `item` from its `from`-th on. */
export interface PromptRun {
  readonly item: PromptItem;
  readonly from: number;
}

/** Positions in a prompt item. */
export function itemLength(item: PromptItem): number {
  return item.type === 'tokens' ? item.tokens.length : item.count;
}

/** The positions of `items` from position `start` of the whole prompt on, as runs. */
export function runsFrom(items: readonly PromptItem[], start: number): PromptRun[] {
  const runs: PromptRun[] = [];
  let position = 0;
  for (const item of items) {
    const n = itemLength(item);
    const from = Math.max(0, start - position);
    position += n;
    if (from < n) runs.push({ item, from });
  }
  return runs;
}

/** A run as the typed array the addon decodes: token ids, or whole embedding rows. */
export function runData({ item, from }: PromptRun): Int32Array | Float32Array {
  if (item.type === 'tokens') return item.tokens.subarray(from);
  return item.data.subarray((from * item.data.length) / item.count);
}

/** Parallel arrays, one entry per cached position: a token id with a null source, or row `value` of the `source` embeddings. */
export class PositionRecord {
  private readonly sources: (Float32Array | null)[] = [];
  private readonly values: number[] = [];

  get length(): number {
    return this.values.length;
  }

  truncate(length: number): void {
    this.sources.length = Math.min(length, this.sources.length);
    this.values.length = this.sources.length;
  }

  /** Records the first `count` positions of `run` as the next cached positions. */
  append({ item, from }: PromptRun, count = itemLength(item) - from): void {
    for (let i = from; i < from + count; i++) {
      this.sources.push(item.type === 'tokens' ? null : item.data);
      this.values.push(item.type === 'tokens' ? item.tokens[i]! : i);
    }
  }

  /** How many leading positions of `items` equal the recorded ones. */
  commonPrefix(items: readonly PromptItem[]): number {
    let position = 0;
    for (const item of items) {
      const n = itemLength(item);
      for (let i = 0; i < n; i++, position++) {
        if (position >= this.values.length) return position;
        const matches = item.type === 'tokens'
          ? this.sources[position] === null && this.values[position] === item.tokens[i]
          : this.sources[position] === item.data && this.values[position] === i;
        if (!matches) return position;
      }
    }
    return position;
  }
}
