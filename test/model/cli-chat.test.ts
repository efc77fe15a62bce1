import { describe, expect, it } from 'vitest';

import { runCli } from '../support/cli.js';
import { loadTinyLlama, tinyLlamaFile } from '../support/tiny-llama.js';

describe('video-llama chat', () => {
  it('answers each piped line with the same reply as the library', async () => {
    const llm = await tinyLlamaFile();
    const { status, stdout, stderr } = await runCli(['chat', '--llm', llm, '--temperature', '0', '--max-tokens', '10', '--threads', '1', '--stats'],
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

  it('reports a bad option with the expected value', async () => {
    const { status, stderr } = await runCli(['chat', '--llm', 'x.gguf', '--top-k', '2.5']);
    expect(status).toBe(1);
    expect(stderr).toContain('INVALID_ARGUMENT: Expected an integer >= 0 for --top-k but received "2.5"');
  });
});
