/**
 * The encoders and the language model on a Vulkan device, chosen at load time (`gpu`), against
 * the original model's outputs within the GPU bounds of test/support/stages.ts. On CI the device
 * is Mesa's software Vulkan (lavapipe, Debian's mesa-vulkan-drivers), which ggml only lists when
 * GGML_VK_VISIBLE_DEVICES names it; this file sets that before the Vulkan backend loads. Inputs
 * are kept small (1 frame) where the reference allows, because lavapipe is slow.
 */
import fs from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Projector } from '../../src/projector.js';
import { VideoLlama } from '../../src/index.js';
import { fixture, hasFixtureSet, TINY_A } from '../support/fixtures.js';
import { maxAbsDiff, readNpyF32, type NpyArray } from '../support/npy.js';
import { convertFixture, tempDir } from '../support/projector-files.js';
import { expectGpuStage, leadingInput } from '../support/stages.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';

process.env.GGML_VK_VISIBLE_DEVICES ??= '0';

const ICD_DIR = '/usr/share/vulkan/icd.d';
const hasLavapipe = fs.existsSync(ICD_DIR) && fs.readdirSync(ICD_DIR).some((f) => f.startsWith('lvp_icd'));
const runnable = process.platform === 'linux' && process.arch === 'x64' && hasLavapipe && hasFixtureSet(TINY_A);
const reason = 'needs linux-x64, Mesa\'s lavapipe (apt-get install mesa-vulkan-drivers; scripts/setup.sh does) and the tiny-a fixtures';

describe.skipIf(!runnable)(`encoders and LLM on Vulkan${runnable ? '' : ` — ${reason}`}`, () => {
  let dir: string;
  let f32File: string;
  let projector: Projector;
  let frames: NpyArray<Float32Array>;
  let fbank: NpyArray<Float32Array>;

  beforeAll(async () => {
    dir = tempDir('video-llama-vulkan-');
    f32File = await convertFixture(TINY_A, 'f32', dir);
    projector = await Projector.load(f32File, { threads: 1, gpu: 'vulkan' });
    frames = readNpyF32(fixture(TINY_A, 'inputs/frames.npy'));
    fbank = readNpyF32(fixture(TINY_A, 'inputs/fbank.npy'));
  });
  afterAll(() => projector?.dispose());

  it("runs on the Vulkan device with gpu: 'vulkan' and 'auto', on the CPU with false", async () => {
    expect(projector.info.backend).toBe('Vulkan0');
    expect(projector.info.ownKernelLayers).toBe(0);
    await using auto = await Projector.load(f32File, { threads: 1, gpu: 'auto' });
    expect(auto.info.backend).toBe('Vulkan0');
    await using cpu = await Projector.load(f32File, { threads: 1, gpu: false });
    expect(cpu.info.backend).toBe('CPU');
  });

  // Largest graphs first: Mesa 22.3's lavapipe crashes inside its own worker thread (a double free)
  // when a graph needing more than the ones before follows (e.g. 2 audio clips, then 8).
  it('encodes the 8 clips like the reference at every stage (f32, GPU bounds)', async () => {
    const { embedding, stages } = await projector.encodeWithStages('audio', leadingInput(fbank, fbank.shape[0]!));
    for (const stage of ['audio_imagebind_feature', 'audio_imagebind', 'audio_qformer_input', 'audio_qformer']) {
      expectGpuStage(TINY_A, stage, stages[stage]!.data, stages[stage]!.shape.at(-1)!);
    }
    expectGpuStage(TINY_A, 'audio_embeds', embedding.data, embedding.dim);
  });

  it('encodes a frame like the reference at every stage (f32, GPU bounds)', async () => {
    const { embedding, stages } = await projector.encodeWithStages('video', leadingInput(frames, 1));
    const width = (stage: string): number => stages[stage]!.shape.at(-1)!;
    expectGpuStage(TINY_A, 'vit', stages.vit!.data, width('vit'), 1);
    expectGpuStage(TINY_A, 'qformer', stages.qformer!.data, width('qformer'), 1);
    expectGpuStage(TINY_A, 'image_embeds', embedding.data, embedding.dim);
  });

  // No f16 encode here: lavapipe compiles ggml's f16 product shaders with LLVM for ~8 minutes on a
  // busy 2-core machine. Measured once (docs/installing.md): f16 within its CPU bound on Vulkan.
  it.each(['f16', 'bf16', 'q8_0'] as const)('keeps %s weights on the GPU, never on the CPU-only kernels', async (type) => {
    await using quantized = await Projector.load(await convertFixture(TINY_A, type, dir), { threads: 1, gpu: 'vulkan' });
    expect([quantized.info.backend, quantized.info.ownKernelLayers]).toEqual(['Vulkan0', 0]);
  });

  it('chats about an image with the LLM on Vulkan too, its logits matching the CPU run', async () => {
    const llm = await tinyLlamaFile();
    const run = async (gpu: 'vulkan' | false): Promise<{ text: Float32Array; withImage: Float32Array }> => {
      await using model = await VideoLlama.load({ llm, projector: f32File, gpu, threads: 1, contextSize: 256 });
      const image = await model.encodeImage({ tensor: leadingInput(frames, 1).tensor, shape: frames.shape.slice(1) });
      const text = await model.nextTokenLogits([model.tokenize('Look: it shows')]);
      const withImage = await model.nextTokenLogits([model.tokenize('Look:'), image, model.tokenize(' it shows')]);
      const reply = await model.createChat().send({ text: 'What is in it?', media: [image] }, { temperature: 0, maxTokens: 4 });
      expect(typeof reply).toBe('string');
      return { text, withImage };
    };
    const [vulkan, cpu] = [await run('vulkan'), await run(false)];
    const textDiff = maxAbsDiff(vulkan.text, cpu.text);
    const imageDiff = maxAbsDiff(vulkan.withImage, cpu.withImage);
    console.log(`LLM logits Vulkan vs CPU: text ${textDiff.toExponential(2)}, with the image ${imageDiff.toExponential(2)}`);
    // Text alone differs only if libllama computed on another device than the CPU: gpu reached it.
    expect(textDiff).toBeGreaterThan(0);
    expect(Math.max(textDiff, imageDiff)).toBeLessThanOrEqual(5e-2);
  }, 600_000);
});
