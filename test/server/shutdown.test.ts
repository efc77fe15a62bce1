/**
 * `video-llama serve` under SIGTERM with requests in flight: it stops accepting, finishes every
 * accepted request, and exits 0.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { loadTinyEngine, metric, startServer, tinyModelFiles } from './support.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Reads a streamed completion to its end; resolves to the raw SSE text. */
async function streamed(url: string, maxTokens = 60): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], stream: true, max_tokens: maxTokens, temperature: 0 }),
  });
  return { status: response.status, text: await response.text() };
}

describe('video-llama serve', () => {
  it('finishes the requests in flight on SIGTERM, then closes and exits 0', async () => {
    const { llm, projector } = await tinyModelFiles();
    const child = spawn(path.join(repoRoot, 'node_modules', '.bin', 'vite-node'),
      [path.join(repoRoot, 'src', 'cli', 'main.ts'), 'serve', '--llm', llm, '--projector', projector, '--port', '0', '--threads', '1', '--context-size', '1024'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], timeout: 110_000 });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let log = '';
    child.stderr.on('data', (chunk) => { log += chunk.toString(); });
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        log += chunk.toString();
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
        if (match) resolve(match[1]!);
      });
      void exited.then(() => reject(new Error(`serve exited early:\n${log}`)));
    });
    await expect.poll(async () => (await fetch(`${url}/health`)).status, { timeout: 30_000, interval: 200 }).toBe(200);

    const requests = Array.from({ length: 6 }, () => streamed(url));
    // Wait until the first is generating and the others are queued behind it.
    await expect.poll(() => metric(url, 'videollama_queue_length'), { timeout: 10_000, interval: 20 }).toBe(5);
    child.kill('SIGTERM');
    const results = await Promise.all(requests);
    for (const result of results) {
      expect(result.status).toBe(200);
      expect(result.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    }
    expect(await exited, log).toBe(0);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('stops what is still running at the shutdown deadline', async () => {
    const engine = await loadTinyEngine();
    const { server, url } = await startServer({ engine });
    try {
      // A reply that would fill the context, and one queued behind it.
      const requests = [streamed(url, 900), streamed(url, 900)];
      await expect.poll(() => metric(url, 'videollama_queue_length'), { timeout: 10_000, interval: 20 }).toBe(1);
      const started = performance.now();
      await server.shutdown(0);
      expect(performance.now() - started).toBeLessThan(5000);
      for (const { status, text } of await Promise.all(requests)) {
        // The first was streaming: its stream ends with an error record; the second never got its turn.
        if (status === 200) expect(text).toMatch(/"code":"shutting_down"/);
        else expect(status).toBe(503);
      }
    } finally {
      await engine.dispose();
    }
  });
});
