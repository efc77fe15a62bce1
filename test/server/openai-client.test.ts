/**
 * The official `openai` npm client against the server on the tiny models: completions whole and
 * streamed, with text, image, audio and video parts, uploads, and the errors a client sees.
 * Answers are random text from random weights: the tests assert structure and counts.
 */
import fs from 'node:fs';

import OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Engine } from '../../src/server/engine.js';
import { CLIP, dataUrl, loadTinyEngine, metric, pngFrame, startServer, WAV, type RunningServer } from './support.js';

let engine: Engine;
let running: RunningServer;
let client: OpenAI;
/** Media files the server had ffmpeg probe. */
let probes = 0;

beforeAll(async () => {
  engine = await loadTinyEngine();
  const counting = Object.create(engine) as Engine;
  counting.probe = (input, signal) => {
    probes++;
    return engine.probe(input, signal);
  };
  running = await startServer({ engine: counting });
  client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});

afterAll(async () => {
  await running?.server.shutdown(1000);
  await engine?.dispose();
});

/** A greedy, short completion request about `content`. */
function request(content: string | ChatCompletionContentPart[]): ChatCompletionCreateParamsNonStreaming {
  return { model: 'video-llama', messages: [{ role: 'user', content }], max_tokens: 6, temperature: 0, seed: 1 };
}

/** A content part the openai types do not list (llama.cpp's video part, OpenAI's file part). */
function part(value: Record<string, unknown>): ChatCompletionContentPart {
  return value as unknown as ChatCompletionContentPart;
}

const QUESTION = { type: 'text', text: 'What is in it?' } as const;

describe('the openai client', () => {
  it('lists the model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['video-llama']);
  });

  it('gets a whole completion about text, with usage', async () => {
    const completion = await client.chat.completions.create(request('Hello there'));
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]!.message.role).toBe('assistant');
    expect(typeof completion.choices[0]!.message.content).toBe('string');
    expect(['stop', 'length']).toContain(completion.choices[0]!.finish_reason);
    const usage = completion.usage!;
    expect(usage.completion_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeLessThanOrEqual(6);
    expect(usage.prompt_tokens).toBeGreaterThan(usage.completion_tokens);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
  });

  it('streams the same greedy reply in chunks ending with [DONE], with usage last', async () => {
    const whole = await client.chat.completions.create(request('Tell me something'));
    const stream = await client.chat.completions.create({ ...request('Tell me something'), stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.object).toBe('chat.completion.chunk');
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0]!.message.content);
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish!.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
  });

  it('ends a reply at a stop string', async () => {
    const whole = await client.chat.completions.create({ ...request('Tell me something'), max_tokens: 12 });
    const text = whole.choices[0]!.message.content!;
    // The reply's third character onwards as a stop string: the reply now ends before it.
    const stop = text.trim().slice(2, 4);
    expect(stop.length).toBe(2);
    const stopped = await client.chat.completions.create({ ...request('Tell me something'), max_tokens: 12, stop: [stop] });
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
    expect(stopped.choices[0]!.message.content).not.toContain(stop);
    expect(text.startsWith(stopped.choices[0]!.message.content!.trim().slice(0, 2))).toBe(true);
  });

  it('counts the media positions of an image, an audio track and a video with sound', async () => {
    const text = (await client.chat.completions.create(request([QUESTION]))).usage!.prompt_tokens;
    const image = await client.chat.completions.create(request([{ type: 'image_url', image_url: { url: await dataUrl(await pngFrame(), 'image/png') } }, QUESTION]));
    const audio = await client.chat.completions.create(request([{ type: 'input_audio', input_audio: { data: fs.readFileSync(WAV).toString('base64'), format: 'wav' } }, QUESTION]));
    const video = await client.chat.completions.create(request([part({ type: 'input_video', input_video: { data: fs.readFileSync(CLIP).toString('base64') } }), QUESTION]));
    // The tiny projector makes 32 video queries and 8 audio queries; the template adds its wording.
    expect(image.usage!.prompt_tokens - text).toBeGreaterThanOrEqual(32);
    expect(audio.usage!.prompt_tokens - text).toBeGreaterThanOrEqual(8);
    expect(video.usage!.prompt_tokens - text).toBeGreaterThanOrEqual(40);
    for (const completion of [image, audio, video]) expect(completion.choices[0]!.message.content).toEqual(expect.any(String));
  });

  it('streams a reply about a video', async () => {
    const stream = await client.chat.completions.create({
      ...request([part({ type: 'input_video', input_video: { url: await dataUrl(CLIP, 'video/mp4') } }), QUESTION]), stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(typeof text).toBe('string');
    expect(['stop', 'length']).toContain(finish);
  });

  it('uploads once and asks twice: the second question encodes nothing', async () => {
    const upload = await client.files.create({ file: fs.createReadStream(CLIP), purpose: 'user_data' });
    expect(upload.id).toMatch(/^file-[0-9a-f]{64}$/);
    expect(upload.bytes).toBe(fs.statSync(CLIP).size);
    const again = await client.files.create({ file: fs.createReadStream(CLIP), purpose: 'user_data' });
    expect(again.id).toBe(upload.id);
    const ask = (question: string) => client.chat.completions.create(request([part({ type: 'file', file: { file_id: upload.id } }), { type: 'text', text: question }]));
    await ask('What happens?');
    const counts = async (): Promise<number[]> => Promise.all(['videollama_encode_seconds_count', 'videollama_encode_cache_misses_total', 'videollama_encode_cache_hits_total']
      .map((name) => metric(running.url, name)));
    const [encodes, misses, hits] = await counts();
    expect(encodes).toBeGreaterThan(0);
    const probed = probes;
    const second = await ask('And then?');
    expect(second.usage!.prompt_tokens).toBeGreaterThan(40);
    // The engine's encode cache answered: no encode ran, one more hit; the upload's probe was kept.
    expect(await counts()).toEqual([encodes, misses, hits + 1]);
    expect(probes).toBe(probed);
    expect((await client.files.list()).data.map((file) => file.id)).toEqual([upload.id]);
  });

  it('continues a conversation with an earlier assistant turn', async () => {
    const completion = await client.chat.completions.create({
      ...request('And now?'),
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Hi.' },
        { role: 'user', content: 'And now?' },
      ],
    });
    const alone = await client.chat.completions.create(request('And now?'));
    expect(completion.usage!.prompt_tokens).toBeGreaterThan(alone.usage!.prompt_tokens);
  });

  it('answers in JSON that validates against a json_schema response format, whole and streamed', async () => {
    const schema = {
      type: 'object',
      properties: { colour: { enum: ['red', 'green'] }, count: { type: 'integer' }, tags: { type: 'array', items: { type: 'string', maxLength: 6 }, maxItems: 2 } },
    };
    for (const seed of [1, 2]) {
      const completion = await client.chat.completions.create({
        ...request('Give me JSON'), max_tokens: 200, temperature: 0.9, seed,
        response_format: { type: 'json_schema', json_schema: { name: 'answer', schema } },
      });
      expect(completion.choices[0]!.finish_reason).toBe('stop');
      const value = JSON.parse(completion.choices[0]!.message.content!) as { colour: string; count: number; tags: string[] };
      expect(Object.keys(value)).toEqual(['colour', 'count', 'tags']);
      expect(['red', 'green']).toContain(value.colour);
      expect(Number.isInteger(value.count)).toBe(true);
      expect(value.tags.length).toBeLessThanOrEqual(2);
      expect(value.tags.every((t) => typeof t === 'string' && t.length <= 6)).toBe(true);
    }
    const stream = await client.chat.completions.create({
      ...request('Pick one'), max_tokens: 50, temperature: 0.9, seed: 3, stream: true,
      response_format: { type: 'json_schema', json_schema: { name: 'pick', schema: { enum: ['yes', 'no'] } } },
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(['yes', 'no']).toContain(JSON.parse(text));
  });

  it('answers a json_object response format with a JSON object', async () => {
    const completion = await client.chat.completions.create({
      ...request('Give me JSON'), max_tokens: 300, temperature: 0.9, seed: 4, response_format: { type: 'json_object' },
    });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    const value: unknown = JSON.parse(completion.choices[0]!.message.content!);
    expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
  });

  it('sends a JSON answer cut off by max_tokens as its text so far with finish_reason length', async () => {
    const completion = await client.chat.completions.create({
      ...request('Give me JSON'), max_tokens: 3, temperature: 0.9, seed: 4, response_format: { type: 'json_object' },
    });
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.choices[0]!.message.content).toMatch(/^\{/);
    expect(() => JSON.parse(completion.choices[0]!.message.content!)).toThrow();
  });

  it('refuses a json_schema that no grammar can follow with a 400 naming the schema', async () => {
    const error = await client.chat.completions.create({
      ...request('Give me JSON'),
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'strnig' } } },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('response_format.json_schema.schema');
  });

  it('takes frequency and presence penalties, and refuses them out of range', async () => {
    const completion = await client.chat.completions.create({ ...request('Hello'), frequency_penalty: 1.5, presence_penalty: 0.5 });
    expect(completion.usage!.completion_tokens).toBeGreaterThan(0);
    const error = await client.chat.completions.create({ ...request('Hi'), presence_penalty: 3 }).catch((e: unknown) => e);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('presence_penalty');
  });

  it('reports a bad field as a 400 naming it', async () => {
    const error = await client.chat.completions.create({ ...request('Hi'), temperature: 7 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
  });
});
