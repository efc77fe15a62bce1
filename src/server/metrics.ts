/**
 * The server's counters and their Prometheus text exposition (`GET /metrics`). Written by hand:
 * a handful of counters and gauges need no client library.
 * @module
 */
import type { EngineCacheStats } from './engine.js';

/** Live values read when the metrics are rendered. */
export interface MetricGauges {
  /** Requests waiting for the model. */
  queueLength: number;
  /** Requests being answered. */
  running: number;
  /** The engine's encode cache; undefined while the model loads. */
  cache: EngineCacheStats | undefined;
}

/** Counters the routes update. */
export class Metrics {
  private readonly requests = new Map<string, number>();
  private generatedTokens = 0;
  private generationSeconds = 0;
  private lastTokensPerSecond = 0;

  /** Counts a finished request (499 when the client went away first). */
  countRequest(route: string, status: number): void {
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Records a reply's generation. */
  countGeneration(tokens: number, milliseconds: number): void {
    this.generatedTokens += tokens;
    this.generationSeconds += milliseconds / 1000;
    if (milliseconds > 0) this.lastTokensPerSecond = tokens / (milliseconds / 1000);
  }

  /** The Prometheus text format (version 0.0.4). */
  render(gauges: MetricGauges): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]): void => {
      lines.push(`# HELP videollama_${name} ${help}`, `# TYPE videollama_${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`videollama_${name}${labels ? `{${labels}}` : ''} ${value}`);
    };
    metric('requests_total', 'counter', 'Finished HTTP requests by route and status (499: the client went away).', [...this.requests]);
    metric('queue_length', 'gauge', 'Requests waiting for the model.', [['', gauges.queueLength]]);
    metric('running_requests', 'gauge', 'Requests being answered.', [['', gauges.running]]);
    metric('generated_tokens_total', 'counter', 'Tokens generated.', [['', this.generatedTokens]]);
    metric('generation_seconds_total', 'counter', 'Seconds spent generating tokens.', [['', this.generationSeconds]]);
    metric('tokens_per_second', 'gauge', 'Generation speed of the last reply.', [['', this.lastTokensPerSecond]]);
    const cache = gauges.cache;
    metric('encode_seconds', 'summary', 'Time spent encoding media files (cache misses).', []);
    lines.push(`videollama_encode_seconds_sum ${cache?.encodeSeconds ?? 0}`, `videollama_encode_seconds_count ${cache?.encodes ?? 0}`);
    metric('encode_cache_hits_total', 'counter', 'Media found already encoded, by the encode cache tier that held them.',
      [['tier="memory"', cache?.memoryHits ?? 0], ['tier="disk"', cache?.diskHits ?? 0]]);
    metric('encode_cache_misses_total', 'counter', 'Media that had to be encoded.', [['', cache?.misses ?? 0]]);
    metric('encode_cache_corrupt_total', 'counter', 'On-disk cache entries that failed their check and were dropped.', [['', cache?.corrupt ?? 0]]);
    return `${lines.join('\n')}\n`;
  }
}
