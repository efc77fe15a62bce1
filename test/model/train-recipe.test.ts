/**
 * Recipes (schema-checked) and `video-llama train <recipe.json>` end to end on tiny models: a world
 * manifest → examples → a trained, loadable projector; a rerun from the checkpoint gives the same file.
 */
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Projector } from '../../src/projector.js';
import { type LlmRecipe, loadRecipe, parseLlmRecipe, parseRecipe, type Recipe } from '../../src/train/recipe.js';
import { runRecipe } from '../../src/train/run-recipe.js';
import { manifestRecord } from '../../src/world/dataset.js';
import { sceneFileName, writeSceneFile } from '../../src/world/encode-file.js';
import { makeScene } from '../../src/world/scene.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/projector-files.js';
import { tinyTrainingFiles, TRAIN_SIZES } from '../support/training.js';

const minimal = { stage: 'stage1', manifests: ['data/stage1.jsonl'], llm: 'llm.gguf', projector: 'p.gguf', output: 'out/p.gguf', checkpointDir: 'runs/s1' };

describe('recipes', () => {
  it('resolves paths against the recipe folder', () => {
    const recipe = parseRecipe({ ...minimal, hyper: { epochs: 2 }, branches: ['video'], unfreeze: ['encoder'] }, '/base');
    expect(recipe).toMatchObject({ manifests: ['/base/data/stage1.jsonl'], llm: '/base/llm.gguf', output: '/base/out/p.gguf', checkpointDir: '/base/runs/s1', hyper: { epochs: 2 }, unfreeze: ['encoder'] });
  });

  it('refuses a bad recipe with every fault listed', () => {
    const { llm: _llm, ...noLlm } = minimal;
    const bad = { ...noLlm, stage: 'stage3', extra: 1, hyper: { batchSize: 0, lr: 1 }, branches: ['video', 'video'], unfreeze: ['llm'] };
    let error: unknown;
    try {
      parseRecipe(bad, '/base');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const errors = (error as { details: { errors: string[] } }).details.errors;
    expect(errors).toEqual(expect.arrayContaining([
      "(the recipe) must have required property 'llm'",
      '(the recipe) has an unknown field "extra"',
      '/stage must be one of "stage1", "stage2"',
      '/hyper has an unknown field "lr"',
      '/hyper/batchSize must be >= 1',
      expect.stringMatching(/^\/branches must NOT have duplicate items/),
      '/unfreeze/0 must be one of "encoder", "qformer"',
    ]));
  });

  it('reads a file: FILE_NOT_FOUND, or INVALID_ARGUMENT for text that is not JSON', async () => {
    const dir = tempDir('vl-recipe-');
    await expect(loadRecipe(path.join(dir, 'none.json'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    fs.writeFileSync(path.join(dir, 'bad.json'), '{ "stage": ');
    await expect(loadRecipe(path.join(dir, 'bad.json'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/not JSON/) });
    fs.writeFileSync(path.join(dir, 'good.json'), JSON.stringify(minimal));
    expect(((await loadRecipe(path.join(dir, 'good.json'))) as Recipe).projector).toBe(path.join(dir, 'p.gguf'));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an LLM recipe (stage "llm"): out resolved against the recipe folder; its outer shape checked', async () => {
    const recipe = parseLlmRecipe({ stage: 'llm', description: 'tiny', options: { out: 'runs/llm', steps: 3 } }, '/base');
    expect(recipe.options).toEqual({ out: '/base/runs/llm', steps: 3 });
    expect(() => parseLlmRecipe({ stage: 'llm', options: { steps: 3 }, extra: 1 }, '/base')).toThrow(expect.objectContaining({
      code: 'INVALID_ARGUMENT',
      details: { errors: expect.arrayContaining(["/options must have required property 'out'", '(the recipe) has an unknown field "extra"']) },
    }));
    const dir = tempDir('vl-recipe-');
    fs.writeFileSync(path.join(dir, 'llm.json'), JSON.stringify({ stage: 'llm', options: { out: 'x', steps: 1 } }));
    expect(((await loadRecipe(path.join(dir, 'llm.json'))) as LlmRecipe).options.out).toBe(path.join(dir, 'x'));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the example recipes in training/ are valid', async () => {
    const folder = path.resolve(__dirname, '../../training');
    const files = fs.readdirSync(folder).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) await loadRecipe(path.join(folder, file));
  });
});

describe('video-llama train, stage "llm"', () => {
  it('pretrains a tiny LLM on our own graph, prints the model, and a rerun resumes with nothing left to do', async () => {
    const dir = tempDir('vl-recipe-llm-');
    const recipe = path.join(dir, 'llm.json');
    const options = { out: 'run', steps: 3, corpus: { documents: ['A red circle moves to the right.', 'A blue square stays still.'] }, model: { embeddingWidth: 64, layers: 2, heads: 4, feedForwardWidth: 128 } };
    fs.writeFileSync(recipe, JSON.stringify({ stage: 'llm', options }));
    const first = await runCli(['train', recipe]);
    expect(first.stderr).not.toMatch(/video-llama: /);
    expect(first.status).toBe(0);
    expect(first.stderr).toMatch(/train: llm step 3\/3 loss \d+\.\d{4} lr .* tokens\/s ETA/);
    expect(first.stdout).toBe(`trained the LLM for 3 steps\n${path.join(dir, 'run', 'model.gguf')}\n`);
    expect(fs.statSync(path.join(dir, 'run', 'model.gguf')).size).toBeGreaterThan(0);
    const again = await runCli(['train', recipe]);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/^trained the LLM for 3 steps \(resumed at step 3\)\n/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});

describe('video-llama train', () => {
  let dir: string;
  let files: { llm: string; projector: string };

  beforeAll(async () => {
    dir = tempDir('vl-train-cli-');
    fs.mkdirSync(path.join(dir, 'media'));
    const scenes = [0, 2].map((i) => makeScene('train', 1, i)); // a silent video and a sound
    for (const scene of scenes) await writeSceneFile(scene, path.join(dir, 'media', sceneFileName(scene)));
    fs.writeFileSync(path.join(dir, 'stage1.jsonl'), scenes.map((s) => `${JSON.stringify(manifestRecord(s, 1))}\n`).join(''));
    files = await tinyTrainingFiles();
    fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify({
      stage: 'stage1', manifests: ['stage1.jsonl'], llm: files.llm, projector: files.projector, output: 'out/trained.gguf', checkpointDir: 'run',
      seed: 3, checkpointEvery: 2, hyper: { epochs: 1, stepsPerEpoch: 3, batchSize: 1, warmupSteps: 0, initLr: 1e-2 },
    }));
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('trains both branches with checkpoints into a projector that loads and encodes differently; a rerun from the checkpoints gives the same file', async () => {
    const recipe = path.join(dir, 'recipe.json');
    const first = await runCli(['train', recipe]);
    expect(first.stderr).not.toMatch(/video-llama: /);
    expect(first.status).toBe(0);
    expect(first.stderr).toMatch(/train: video branch, 1 examples/);
    expect(first.stderr).toMatch(/train: audio branch, 1 examples/);
    expect(first.stderr).toMatch(/train: video step 3\/3 epoch 0 loss \d+\.\d{4} lr .* samples\/s ETA/);
    expect(first.stderr).toMatch(/train: video checkpoint at step 2:/);
    expect(first.stdout).toMatch(/trained video \(1 examples\), audio \(1 examples\); 0 bad entries skipped/);
    const output = path.join(dir, 'out', 'trained.gguf');
    const trainedBytes = fs.readFileSync(output);

    await using before = await Projector.load(files.projector, { threads: 1 });
    await using after = await Projector.load(output, { threads: 1 });
    const clip = path.join(dir, 'media', sceneFileName(makeScene('train', 1, 0)));
    const sound = path.join(dir, 'media', sceneFileName(makeScene('train', 1, 2)));
    expect((await after.encodeVideo(clip)).data).not.toEqual((await before.encodeVideo(clip)).data);
    expect((await after.encodeAudio(sound)).data).not.toEqual((await before.encodeAudio(sound)).data);

    // Without the finished files, a rerun resumes each branch from its checkpoint (step 3 of 3) and exports the same result.
    for (const file of ['video.gguf', 'audio.gguf']) fs.rmSync(path.join(dir, 'run', file));
    fs.rmSync(output);
    const again = await runCli(['train', recipe]);
    expect(again.status).toBe(0);
    expect(again.stderr).toMatch(/train: video branch, 1 examples, resuming at step 3/);
    expect(again.stderr).not.toMatch(/ step \d+\/3/);
    expect(fs.readFileSync(output).equals(trainedBytes)).toBe(true);
  }, 300_000);

  it('with "unfreeze", trains the encoders from cached media: the exported ViT and ImageBind outputs change', async () => {
    const recipe = parseRecipe({
      ...JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8')), output: 'out/unfrozen.gguf', checkpointDir: 'run-unfrozen',
      unfreeze: ['encoder', 'qformer'],
    }, dir);
    const result = await runRecipe(recipe);
    expect(result.examples).toEqual({ video: 1, audio: 1 });
    expect(fs.readdirSync(path.join(dir, 'run-unfrozen', 'features'), { recursive: true }).length).toBeGreaterThan(0);
    await using before = await Projector.load(files.projector, { threads: 1 });
    await using after = await Projector.load(result.output, { threads: 1 });
    const { vit, imagebind } = TRAIN_SIZES;
    const frames = { tensor: new Float32Array(3 * vit.imageSize ** 2).fill(0.5), shape: [1, 3, vit.imageSize, vit.imageSize] };
    const fbank = { tensor: new Float32Array(imagebind.melBins * imagebind.targetFrames).fill(0.5), shape: [1, 1, imagebind.melBins, imagebind.targetFrames] };
    const stage = async (p: Projector, kind: 'video' | 'audio', name: string) =>
      (await p.encodeWithStages(kind, kind === 'video' ? frames : fbank)).stages[name]!.data;
    expect(await stage(after, 'video', 'vit')).not.toEqual(await stage(before, 'video', 'vit'));
    expect(await stage(after, 'audio', 'audio_imagebind')).not.toEqual(await stage(before, 'audio', 'audio_imagebind'));
  }, 300_000);
});
