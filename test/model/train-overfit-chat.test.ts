/**
 * Issue 13's overfit-4, through the product's own path: stage-2 examples in the `'chat'` format
 * (the prompt `Chat` sends), trained on four world videos; the exported projector is then loaded by
 * `VideoLlama`, the four files are encoded again from disk, and a greedy `Chat` must answer each
 * with its own training answer.
 */
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { LlmModel, Projector, VideoLlama } from '../../src/index.js';
import { FeatureCache } from '../../src/train/features.js';
import { modelTokenizer, stage2Layout } from '../../src/train/template.js';
import type { TrainingExample } from '../../src/train/example.js';
import { Trainer } from '../../src/train/trainer.js';
import { makeScene, sceneFileName, writeSceneFile, type Scene } from '../../src/world/index.js';
import { tempDir } from '../support/projector-files.js';
import { TINY_SIZES, writeSyntheticProjector, type SyntheticSizes } from '../support/synthetic-projector.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';

const SIZES: SyntheticSizes = {
  ...TINY_SIZES,
  llm: 96, // the default tiny LLaMA's width
  qformer: { width: 16, heads: 2, ffn: 32, layers: 1, queries: 4, crossFreq: 1 },
  // 16 media positions: the chat's prompt puts ~35 positions between the media and the answer, and
  // with 4 (train-overfit.test.ts's, media next to the answer) the frozen random 2-layer LLM's
  // attention does not find them (loss stuck at 1.85 after 300 steps; 16: 0.02 after 400).
  video: { layers: 1, queries: 16, maxFrames: 4 },
};
const FRAMES = 2;
/** One question for all four videos: only the media can tell the answers apart. */
const QUESTION = 'What does it show?';
const ANSWERS = ['water sound', 'good name', 'first day', 'little man'];
/** Steps and learning rate (no dropout, to fit exactly); ~60 s alone. */
const STEPS = 400;
const LR = 1e-2;

/** The first four scenes of a world seed that have a picture that moves (videos, with or without sound). */
function videoScenes(): Scene[] {
  const scenes: Scene[] = [];
  for (let i = 0; scenes.length < ANSWERS.length; i++) {
    const scene = makeScene('train', 9, i);
    if (scene.kind === 'video' || scene.kind === 'silent-video') scenes.push(scene);
  }
  return scenes;
}

describe('overfitting 4 chat-format examples', () => {
  it('fits them, and a greedy Chat on the exported projector gives back the 4 answers', async () => {
    const dir = tempDir('vl-overfit-chat-');
    const projectorFile = path.join(dir, 'projector.gguf');
    await writeSyntheticProjector(projectorFile, SIZES, 11);
    const llmFile = await tinyLlamaFile();
    const files = await Promise.all(videoScenes().map(async (scene) => {
      const file = path.join(dir, sceneFileName(scene));
      await writeSceneFile(scene, file);
      return file;
    }));

    // Frozen features (and each video's description) as a training run's feature cache holds them.
    const frozen = await Projector.load(projectorFile, { threads: 1 });
    const cache = new FeatureCache(path.join(dir, 'features'));
    const features = [];
    for (const file of files) features.push(await cache.features(frozen, { media: file, input: 'video', frames: FRAMES }));
    await frozen.dispose();

    const model = await LlmModel.load(llmFile);
    const tokenizer = modelTokenizer(model);
    const examples: TrainingExample[] = features.map((f, i) => {
      const layout = stage2Layout(tokenizer, {
        template: 'vicuna', format: 'chat', queries: SIZES.video.queries,
        conversation: [{ q: QUESTION, a: ANSWERS[i]! }], media: { kind: 'video', description: f.description },
      });
      return { branch: 'video', features: f.data, units: f.units, tokens: layout.tokens, mediaOffset: layout.mediaOffset, labels: layout.labels };
    });
    await model.dispose();

    const trainer = await Trainer.create({ llm: llmFile, projector: projectorFile, branch: 'video', threads: 1 });
    const before = await trainer.loss(examples);
    await trainer.train(examples, { epochs: 1, stepsPerEpoch: STEPS, batchSize: 4, initLr: LR, warmupLr: 1e-3, warmupSteps: 5, dropout: 0 });
    const after = await trainer.loss(examples);
    console.log(`overfit-4 (chat format, ${examples[0]!.tokens.length} positions): loss ${before.toFixed(3)} -> ${after.toFixed(4)}`);
    // Near 0 for this frozen random LLM, whose logits are bounded (see train-overfit.test.ts).
    expect(after).toBeLessThan(0.25);
    const exported = path.join(dir, 'trained.gguf');
    await trainer.exportProjector(exported);
    await trainer.dispose();

    await using llama = await VideoLlama.load({ llm: llmFile, projector: exported, threads: 1, contextSize: 512 });
    for (const [i, file] of files.entries()) {
      const video = await llama.encodeVideo(file, { frames: FRAMES });
      expect(video.description).toBe(features[i]!.description);
      await using chat = llama.createChat();
      const message = { text: QUESTION, media: [video] };
      // The chat's prompt is the training prompt up to the answer: the same positions.
      const answerStart = examples[i]!.labels.findIndex((label) => label >= 0);
      expect(chat.promptPositions(message)).toBe(answerStart);
      const reply = await chat.send(message, { temperature: 0, maxTokens: 12 });
      expect(reply).toBe(ANSWERS[i]);
      expect(chat.lastStats?.stopReason).toBe('stopString');
    }
  }, 600_000);
});
