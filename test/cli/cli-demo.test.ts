/**
 * `video-llama demo`: with a trained demo model present (a stand-in package of tiny random models,
 * named by $VIDEO_LLAMA_DEMO_MODEL: the flow is tested, never the quality) and without one.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { DEMO_MODEL_SCOPE, demoScene } from '../../src/cli/commands/demo.js';
import { cachedRandomProjector, tinyProjector } from '../../src/dev/random-projector.js';
import { writeModelPackage } from '../../src/eval/model-package.js';
import { manifestRecord } from '../../src/world/dataset.js';
import { answerMatches, caption, type QaAttribute } from '../../src/world/language.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/projector-files.js';
import { CACHE_DIR, tinyLlamaFile } from '../support/tiny-llama.js';

const WIDTH = 96;
const dir = tempDir('video-llama-cli-demo-');
let pkg: string;

beforeAll(async () => {
  const [llm, projector] = await Promise.all([tinyLlamaFile({ embeddingWidth: WIDTH }), cachedRandomProjector(CACHE_DIR, tinyProjector(WIDTH))]);
  pkg = path.join(dir, 'demo-model');
  await writeModelPackage(pkg, {
    name: 'stand-in demo model', llm, projector, template: 'llama2',
    training: { recipes: ['training/stage2.json'], commit: 'test', data: 'nothing (random weights)' },
  });
}, 300_000);
afterEach(() => {
  delete process.env.VIDEO_LLAMA_DEMO_MODEL;
});

describe('video-llama demo', () => {
  it('with a trained model: a held-out clip, what is in it, every world question asked, streamed and marked', async () => {
    process.env.VIDEO_LLAMA_DEMO_MODEL = pkg;
    const result = await runCli(['demo', '--scene', '5', '--cache', path.join(dir, 'cache'), '--max-tokens', '4', '--threads', '1']);
    expect(result.stderr).not.toMatch(/video-llama: |RANDOM WEIGHTS/);
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('stand-in demo model');
    const scene = demoScene(5);
    expect(scene.split).toBe('heldout');
    expect(scene.kind).toBe('video');
    const record = manifestRecord(scene, 2);
    expect(fs.statSync(path.join(dir, 'cache', 'demo-clips', record.media)).size).toBeGreaterThan(0);
    expect(result.stdout).toContain(`held-out scene ${scene.index} (again: --scene ${scene.index})`);
    expect(result.stdout).toContain(`What is in it: ${caption(scene)}\n`);
    // Each question, the reply streamed after "A: ", and a mark that answerMatches agrees with.
    const asked = [...result.stdout.matchAll(/^Q: (.*)\nA: (.*?)   \[(right|wrong: .*)\]$/gm)];
    expect(asked.map((m) => m[1])).toEqual(record.conversation.map((turn) => turn.q));
    asked.forEach((m, i) => {
      const turn = record.conversation[i]!;
      expect(m[3] === 'right').toBe(answerMatches(turn.attribute as QaAttribute, turn.value, m[2]!));
    });
    const right = asked.filter((m) => m[3] === 'right').length;
    expect(result.stdout).toContain(`${right} of ${record.conversation.length} answers right.`);
    expect(result.stdout).toContain(DEMO_MODEL_SCOPE);
  }, 240_000);

  it('without a trained model: the random-weight run, with its warning', async () => {
    process.env.VIDEO_LLAMA_DEMO_MODEL = path.join(dir, 'no-model-here');
    const result = await runCli(['demo', '--cache', CACHE_DIR, '--max-tokens', '3', '--threads', '1']);
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`No trained demo model in ${path.join(dir, 'no-model-here')}`);
    expect(result.stderr).toMatch(/RANDOM WEIGHTS, so the answer is nonsense/);
    expect(result.stdout.trim().length).toBeGreaterThan(0);
    expect(result.stdout).not.toContain(DEMO_MODEL_SCOPE);
  }, 240_000);

  it('--model naming a folder without a package, or a package whose file changed, is a typed error', async () => {
    const missing = await runCli(['demo', '--model', path.join(dir, 'no-model-here')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^video-llama: FILE_NOT_FOUND: no model package in /m);
    const changed = path.join(dir, 'changed');
    fs.cpSync(pkg, changed, { recursive: true });
    fs.appendFileSync(path.join(changed, 'llm.gguf'), Buffer.from([0]));
    const corrupt = await runCli(['demo', '--model', changed]);
    expect(corrupt.status).toBe(1);
    expect(corrupt.stderr).toMatch(/^video-llama: INVALID_MODEL: .*model\.json: llm\.gguf has \d+ bytes, the manifest says \d+/m);
  }, 120_000);
});
