/**
 * What real traffic does to a server: malformed and hostile requests, media over the limits,
 * slow clients, clients that leave mid-stream, a full queue. Each gets the right status in
 * OpenAI's error shape, and the server keeps answering the others.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Engine } from '../../src/server/engine.js';
import { CLIP, loadTinyEngine, metric, startServer, watchedEngine, type RunningServer, type WatchedReply } from './support.js';

let engine: Engine;
let running: RunningServer;
const others: RunningServer[] = [];
/** The replies of `running`'s engine. */
const replies: WatchedReply[] = [];

const LIMITS = { bodyBytes: 512 * 1024, uploadBytes: 64 * 1024, bodyTimeoutMs: 1000, queueLength: 128 };

beforeAll(async () => {
  engine = await loadTinyEngine();
  running = await startServer({ engine: watchedEngine(engine, replies), limits: LIMITS });
});

afterAll(async () => {
  for (const server of [running, ...others]) await server?.server.shutdown(1000);
  await engine?.dispose();
});

/** POSTs a body to /v1/chat/completions. */
function post(body: string, contentType = 'application/json', url = running.url): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': contentType }, body });
}

function ask(content: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'video-llama', messages: [{ role: 'user', content }], max_tokens: 4, temperature: 0, ...extra });
}

/** Checks the status and OpenAI's error shape; returns the error object. */
async function expectError(response: Response, status: number): Promise<{ message: string; type: string; param: string | null; code: string }> {
  const body = await response.json() as { error: { message: string; type: string; param: string | null; code: string } };
  expect({ status: response.status, body }).toMatchObject({ status, body: { error: { message: expect.any(String), type: expect.any(String) } } });
  // Nothing about the server's files.
  expect(body.error.message).not.toMatch(/\/tmp|\/work|video-llama-media|node_modules|at .*\.ts/);
  return body.error;
}

/** The server still answers a plain question. */
async function stillServes(url = running.url): Promise<void> {
  const response = await post(ask('Still there?'), 'application/json', url);
  expect(response.status).toBe(200);
  expect((await response.json() as { object: string }).object).toBe('chat.completion');
}

function videoPart(bytes: Uint8Array): unknown {
  return [{ type: 'input_video', input_video: { data: Buffer.from(bytes).toString('base64') } }, { type: 'text', text: 'What is it?' }];
}

describe('bad requests', () => {
  it('answers malformed JSON with 400', async () => {
    expect((await expectError(await post('{"messages": [ '), 400)).code).toBe('invalid_json');
  });

  it('answers a wrong content type with 415', async () => {
    await expectError(await post(ask('Hi'), 'text/plain'), 415);
  });

  it('names an unknown field, a missing one and a bad value', async () => {
    expect((await expectError(await post(ask('Hi', { frobnicate: true })), 400)).param).toBe('frobnicate');
    expect((await expectError(await post(JSON.stringify({ model: 'x' })), 400)).param).toBe('messages');
    expect((await expectError(await post(ask('Hi', { max_tokens: '5' })), 400)).param).toBe('max_tokens');
    expect((await expectError(await post(ask([{ type: 'video', data: 'x' }])), 400)).param).toBe('messages[0].content[0].type');
    expect((await expectError(await post(ask([{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav', extra: 1 } }])), 400)).param)
      .toBe('messages[0].content[0].input_audio.extra');
    expect((await expectError(await post(ask('<ImageHere> hi')), 400)).param).toBe('messages[0].content');
  });

  it('refuses client file paths and remote URLs unless the operator allows them', async () => {
    const local = await expectError(await post(ask([{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }])), 400);
    expect(local.param).toBe('messages[0].content[0]');
    await expectError(await post(ask([{ type: 'image_url', image_url: { url: 'http://127.0.0.1:1/x.png' } }])), 400);
  });

  it('answers an oversized body with 413', async () => {
    await expectError(await post(ask('x'.repeat(LIMITS.bodyBytes + 1))), 413);
    await stillServes();
  });

  it('answers a conversation longer than the context with 422', async () => {
    const error = await expectError(await post(ask('word '.repeat(1500))), 422);
    expect([error.code, error.param]).toEqual(['context_length_exceeded', 'messages']);
    await stillServes();
  });

  it('answers an upload over the limit with 413 and keeps none of it', async () => {
    const form = new FormData();
    form.append('file', new Blob([fs.readFileSync(CLIP)]), 'clip.mp4');
    expect((await expectError(await fetch(`${running.url}/v1/files`, { method: 'POST', body: form }), 413)).code).toBe('file_too_large');
    expect(await (await fetch(`${running.url}/v1/files`)).json()).toEqual({ object: 'list', data: [] });
  });
});

describe('hostile media', () => {
  it('answers corrupt, truncated and non-media files with 422 and nothing about the server', async () => {
    const clip = fs.readFileSync(CLIP);
    for (const bytes of [randomBytes(4096), clip.subarray(0, 2000), Buffer.from('#!/bin/sh\nrm -rf /\n'.repeat(50))]) {
      const error = await expectError(await post(ask(videoPart(bytes))), 422);
      expect(error.param).toBe('messages[0].content[0]');
    }
    await stillServes();
  });

  it('answers media over the pixel and duration limits with 422', async () => {
    const small = await startServer({ engine, limits: { mediaPixels: 320 * 200 } });
    const short = await startServer({ engine, limits: { mediaSeconds: 3 } });
    others.push(small, short);
    expect((await expectError(await post(ask(videoPart(fs.readFileSync(CLIP))), 'application/json', small.url), 422)).code).toBe('media_too_large');
    expect((await expectError(await post(ask(videoPart(fs.readFileSync(CLIP))), 'application/json', short.url), 422)).code).toBe('media_too_long');
  });
});

describe('clients that misbehave', () => {
  it('times out a client that sends its body too slowly (408) and serves others meanwhile', async () => {
    const port = Number(new URL(running.url).port);
    const socket = net.connect(port, '127.0.0.1');
    const answer = new Promise<string>((resolve) => {
      let data = '';
      socket.on('data', (chunk) => { data += chunk.toString(); });
      socket.on('close', () => resolve(data));
    });
    socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"messa');
    await stillServes();
    expect(await answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('stops the generation of 100 clients that leave mid-stream within a token, and keeps serving', async () => {
    const gone = async (): Promise<number> => {
      const text = await (await fetch(`${running.url}/metrics`)).text();
      return Number(/videollama_requests_total\{route="\/v1\/chat\/completions",status="499"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const goneBefore = await gone();
    // What one reply that is not stopped costs: the one each client starts.
    const long = ask('Talk for a long time', { stream: false, max_tokens: 900 });
    const full = await (await post(long)).json() as { usage: { completion_tokens: number } };
    expect(full.usage.completion_tokens).toBeGreaterThan(300);
    const leave = async (): Promise<void> => {
      const controller = new AbortController();
      // A reply that would fill the context if the server did not stop it.
      const response = await fetch(`${running.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: controller.signal,
        body: long.replace('"stream":false', '"stream":true'),
      });
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      let text = '';
      while (!text.includes('"content"')) {
        const { value, done } = await reader.read();
        expect(done, text).toBe(false);
        text += new TextDecoder().decode(value);
      }
      controller.abort();
    };
    const first = replies.length;
    await Promise.all(Array.from({ length: 100 }, leave));
    await expect.poll(() => metric(running.url, 'videollama_running_requests'), { timeout: 5000 }).toBe(0);
    const left = replies.slice(first);
    expect(left).toHaveLength(100);
    for (const reply of left) {
      // Ended, at most one token after the server saw the client go, well before the reply's end.
      expect(reply.settled).toBe(true);
      expect(reply.piecesAfterAbort).toBeLessThanOrEqual(1);
      expect(reply.pieces).toBeLessThan(full.usage.completion_tokens);
    }
    expect(await metric(running.url, 'videollama_queue_length')).toBe(0);
    expect(await gone()).toBe(goneBefore + 100);
    // Their sequences were given back: the server (one sequence) still answers.
    await stillServes();
  });

  it('ends requests that take longer than the time limit with 504, waiting or generating', async () => {
    // Replies that never end by themselves: the one generating and the one queued behind it
    // (one reply at a time) can only end at the time limit, however fast or slow the machine.
    const hastyReplies: WatchedReply[] = [];
    const hasty = await startServer({ engine: watchedEngine(engine, hastyReplies, { endless: true }), limits: { requestTimeoutMs: 2000 } });
    others.push(hasty);
    const long = ask('Talk for a long time', { max_tokens: 50 });
    const [first, second] = await Promise.all([post(long, 'application/json', hasty.url), post(long, 'application/json', hasty.url)]);
    expect((await expectError(first, 504)).code).toBe('request_timeout');
    expect((await expectError(second, 504)).code).toBe('request_timeout');
    // The first was generating when its time ran out, and stopped within a token.
    expect(hastyReplies[0]!.pieces).toBeGreaterThan(0);
    for (const reply of hastyReplies) expect([reply.settled, reply.piecesAfterAbort <= 1]).toEqual([true, true]);
    await expect.poll(() => metric(hasty.url, 'videollama_running_requests')).toBe(0);
    expect(await metric(hasty.url, 'videollama_queue_length')).toBe(0);
  });

  it('answers a failure inside the server with a 500 that names nothing of it', async () => {
    const broken = Object.create(engine) as Engine;
    broken.reply = () => Promise.reject(new Error("ENOENT: no such file '/tmp/video-llama-media-x1/frame.png'\n    at decode (/work/src/media/decode.ts:10:3)"));
    const failing = await startServer({ engine: broken });
    others.push(failing);
    const error = await expectError(await post(ask('Hi'), 'application/json', failing.url), 500);
    expect([error.message, error.code]).toEqual(['internal server error', 'internal_error']);
  });

  it('refuses requests beyond the queue with 429 and Retry-After, and finishes every accepted one', async () => {
    const tight = await startServer({ engine, limits: { queueLength: 2 } });
    others.push(tight);
    const responses = await Promise.all(Array.from({ length: 8 }, () => post(ask('Hello', { max_tokens: 20 }), 'application/json', tight.url)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    for (const response of refused) {
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await expectError(response, 429)).code).toBe('queue_full');
    }
    for (const response of responses.filter((r) => r.status === 200)) expect((await response.json() as { object: string }).object).toBe('chat.completion');
  });
});
