/**
 * A release-size audio-branch file with the original runner's training state (`model`,
 * `optimizer` with AdamW moments for every tensor, `config`, `scaler`, `epoch`; ~275 MB like
 * `AL_LLaMA_2_7B_Finetuned.pth`): the converter reads `model` only, so its peak memory stays near
 * the largest needed tensor, far below the file's size. Measured in a child process (maxRSS).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { StateDictBuilder, writeStateDict, writeTrainingCheckpoint } from '../support/torch-zip.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MB = 1e6;

/** AL_LLaMA_2_7B_*'s model: the 2-layer audio Q-Former (768 wide, cross-attending to ImageBind's 1024), 8 clip positions, the projection to LLaMA-2-7B's 4096, and the rotary buffers of the LLM's 32 layers. */
function releaseAudioBranch(): StateDictBuilder {
  const al = new StateDictBuilder()
    .qformer('audio_Qformer.bert.', 'audio_query_tokens', { width: 768, ffn: 3072, layers: 2, freq: 1, queries: 8, encoder: 1024 })
    .add('audio_position_embedding.weight', 8, 1024)
    .linear('audio_llama_proj', 768, 4096);
  for (let i = 0; i < 32; i++) al.add(`llama_model.model.layers.${i}.self_attn.rotary_emb.inv_freq`, 64);
  return al;
}

/** Runs `convertCheckpoints(options)` in a fresh Node process; returns its RSS before and its peak RSS. */
function convertInChild(dir: string, options: Record<string, string>): { before: number; peak: number; tensorCount: number } {
  const script = path.join(dir, 'convert-child.ts');
  fs.writeFileSync(script, [
    `import { convertCheckpoints } from ${JSON.stringify(path.join(repoRoot, 'src', 'convert', 'convert.ts'))};`,
    'const before = process.memoryUsage().rss;',
    `const report = await convertCheckpoints(${JSON.stringify(options)});`,
    // maxRSS is in kilobytes.
    'console.log(JSON.stringify({ before, peak: process.resourceUsage().maxRSS * 1024, tensorCount: report.tensorCount }));',
  ].join('\n'));
  const child = spawnSync(path.join(repoRoot, 'node_modules', '.bin', 'vite-node'), [script], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout.trim().split('\n').pop()!);
}

describe('a release-size branch checkpoint with optimizer state', () => {
  it('converts reading only "model": peak memory far below the file size', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-convert-memory-'));
    const audioBranch = path.join(dir, 'AL_LLaMA_2_7B_Finetuned.pth');
    const model = releaseAudioBranch().tensors;
    writeTrainingCheckpoint(audioBranch, model);
    const imagebind = path.join(dir, 'imagebind_huge.pth');
    writeStateDict(imagebind, new StateDictBuilder().imagebindAudio({ width: 24, blocks: 1, mlp: 48, out: 1024, kernel: 16, patches: 228 }).tensors);

    const fileBytes = fs.statSync(audioBranch).size;
    const modelBytes = model.reduce((sum, t) => sum + t.values.byteLength, 0);
    const largest = Math.max(...model.map((t) => t.values.byteLength));
    // Weights + two AdamW moments: the file is about three times its model, like the release's 275 MB.
    expect(fileBytes / modelBytes).toBeGreaterThan(2.9);
    expect(fileBytes).toBeGreaterThan(260 * MB);

    const out = path.join(dir, 'projector.gguf');
    const { before, peak, tensorCount } = convertInChild(dir, { imagebind, audioBranch, out, type: 'f16' });
    const growth = peak - before;
    console.log(`convert of a ${(fileBytes / MB).toFixed(0)} MB branch file with optimizer state: RSS ${(before / MB).toFixed(0)} MB before, ` +
      `peak ${(peak / MB).toFixed(0)} MB (+${(growth / MB).toFixed(0)} MB; largest needed tensor ${(largest / MB).toFixed(1)} MB, model ${(modelBytes / MB).toFixed(0)} MB)`);
    expect(tensorCount).toBeGreaterThan(0);
    expect(fs.statSync(out).size).toBeGreaterThan(modelBytes / 2 - 1 * MB); // the f16 Q-Former and projection
    // Reading the optimizer's moments would add their ~180 MB; reading the model whole, ~90 MB; the bound is ~76 MB.
    expect(growth).toBeLessThan(6 * largest);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
