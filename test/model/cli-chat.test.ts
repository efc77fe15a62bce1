import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { loadTinyLlama, tinyLlamaFile } from '../support/tiny-llama.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs the CLI from source, as `video-llama <args>`, with `input` on stdin. */
function cli(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const viteNode = path.join(repoRoot, 'node_modules', '.bin', 'vite-node');
  const result = spawnSync(viteNode, [path.join(repoRoot, 'src', 'cli', 'main.ts'), ...args], { input, encoding: 'utf8', cwd: repoRoot, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('video-llama chat', () => {
  it('answers each piped line with the same reply as the library', async () => {
    const llm = await tinyLlamaFile();
    const { status, stdout, stderr } = cli(['chat', '--llm', llm, '--temperature', '0', '--max-tokens', '10', '--threads', '1', '--stats'],
      'Hello there\nWhat is in the video?\n');
    expect(status, stderr).toBe(0);
    const model = await loadTinyLlama();
    const chat = model.createChat();
    const expected = [await chat.send('Hello there', { temperature: 0, maxTokens: 10 }), await chat.send('What is in the video?', { temperature: 0, maxTokens: 10 })];
    await model.dispose();
    expect(stdout).toBe(`${expected.join('\n')}\n`);
    expect(stderr).toMatch(/prompt items evaluated .* stop: maxTokens/);
    // libllama's and ggml's own log stays off the terminal.
    expect(stderr).not.toMatch(/llama|ggml|load_backend/);
  });

  it('reports a bad option with the expected value', () => {
    const { status, stderr } = cli(['chat', '--llm', 'x.gguf', '--top-k', '2.5']);
    expect(status).toBe(1);
    expect(stderr).toContain('INVALID_ARGUMENT: Expected an integer >= 0 for --top-k but received "2.5"');
  });
});
