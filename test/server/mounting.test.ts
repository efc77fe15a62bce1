/**
 * The server's other forms and sources: as a plugin under a prefix in a host's Fastify app, as a
 * plain request handler, while the model loads; media from an allowed remote URL (within its
 * size and time limits) and from the operator's media root; an encode cache on disk that two
 * servers share.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Engine } from '../../src/server/engine.js';
import { createRequestHandler, createServer } from '../../src/server/server.js';
import { videoLlamaPlugin } from '../../src/server/plugin.js';
import { CLIP, dataUrl, loadTinyEngine, metric, pngFrame, startServer } from './support.js';

let engine: Engine;

beforeAll(async () => {
  engine = await loadTinyEngine();
});

afterAll(async () => {
  await engine?.dispose();
});

/** A short greedy question, optionally about one content part. */
function question(part?: unknown): string {
  const content = part ? [part, { type: 'text', text: 'What is it?' }] : 'Hello';
  return JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 3, temperature: 0 });
}

async function ask(url: string, part?: unknown): Promise<{ status: number; body: { error?: { param: string; code: string }; usage?: { prompt_tokens: number } } }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: question(part) });
  return { status: response.status, body: await response.json() as never };
}

/** Listens on a loopback port; resolves to the base URL. */
async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('mounting', () => {
  it('runs as a plugin under a prefix, beside the host\'s own routes', async () => {
    const app = Fastify({ logger: false });
    app.get('/own', async () => ({ mine: true }));
    await app.register(videoLlamaPlugin, { prefix: '/llm', engine, webRoot: false });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      expect(await (await fetch(`${url}/own`)).json()).toEqual({ mine: true });
      expect(await (await fetch(`${url}/llm/health`)).json()).toEqual({ status: 'ready' });
      expect((await ask(`${url}/llm/v1/chat/completions`)).status).toBe(200);
      // The plugin's strict validation stays inside it.
      expect((await fetch(`${url}/v1/chat/completions`, { method: 'POST' })).status).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('runs as a request handler inside a plain http.Server', async () => {
    const { handler, close } = await createRequestHandler({ engine, logger: false, webRoot: false });
    const server = http.createServer((request, response) => {
      if (request.url === '/own') response.end('mine');
      else handler(request, response);
    });
    const url = await listen(server);
    try {
      expect(await (await fetch(`${url}/own`)).text()).toBe('mine');
      expect((await ask(`${url}/v1/chat/completions`)).status).toBe(200);
    } finally {
      server.close();
      await close();
    }
  });

  it('says loading until the model is there, and answers model routes with 503 and Retry-After', async () => {
    let loaded!: (engine: Engine) => void;
    const server = await createServer({ engine: new Promise<Engine>((resolve) => { loaded = resolve; }), logger: false, webRoot: false });
    const url = await server.listen(0);
    try {
      const health = await fetch(`${url}/health`);
      expect([health.status, await health.json()]).toEqual([503, { status: 'loading' }]);
      const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: question() });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('2');
      loaded(engine);
      await expect.poll(async () => (await fetch(`${url}/health`)).status).toBe(200);
      expect((await ask(`${url}/v1/chat/completions`)).status).toBe(200);
    } finally {
      await server.shutdown(1000);
    }
  });
});

describe('media sources the operator allows', () => {
  it('fetches remote media within the size limit', async () => {
    const png = fs.readFileSync(await pngFrame());
    const origin = http.createServer((_request, response) => response.end(png));
    const originUrl = await listen(origin);
    const roomy = await startServer({ engine, allowRemoteMedia: true });
    const tight = await startServer({ engine, allowRemoteMedia: true, limits: { remoteBytes: png.length - 1 } });
    try {
      const image = { type: 'image_url', image_url: { url: `${originUrl}/frame.png` } };
      const fetched = await ask(`${roomy.url}/v1/chat/completions`, image);
      expect(fetched.status).toBe(200);
      expect(fetched.body.usage!.prompt_tokens).toBeGreaterThan(32);
      const refused = await ask(`${tight.url}/v1/chat/completions`, image);
      expect([refused.status, refused.body.error?.code]).toEqual([422, 'media_too_large']);
    } finally {
      origin.close();
      await roomy.server.shutdown(1000);
      await tight.server.shutdown(1000);
    }
  });

  it('gives up on a remote file that does not arrive within the time limit', async () => {
    // An origin that sends its headers and a first chunk, then nothing more.
    let originGaveUp!: () => void;
    const closed = new Promise<void>((resolve) => { originGaveUp = resolve; });
    const origin = http.createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'image/png' });
      response.write(Buffer.alloc(1024));
      request.socket.once('close', originGaveUp);
    });
    const originUrl = await listen(origin);
    const hasty = await startServer({ engine, allowRemoteMedia: true, limits: { remoteTimeoutMs: 300 } });
    try {
      const stalled = await ask(`${hasty.url}/v1/chat/completions`, { type: 'image_url', image_url: { url: `${originUrl}/slow.png` } });
      expect([stalled.status, stalled.body.error?.code, stalled.body.error?.param]).toEqual([422, 'media_fetch_failed', 'messages[0].content[0]']);
      // The server closed its connection to the origin: nothing is left hanging.
      await closed;
    } finally {
      origin.closeAllConnections();
      origin.close();
      await hasty.server.shutdown(1000);
    }
  });

  it('reads file:// URLs inside the media root only', async () => {
    const running = await startServer({ engine, mediaRoot: path.dirname(CLIP) });
    try {
      const url = `${running.url}/v1/chat/completions`;
      const inside = await ask(url, { type: 'input_video', input_video: { url: `file:///${path.basename(CLIP)}` } });
      expect(inside.status).toBe(200);
      for (const escape of ['file:///../../../../etc/passwd', 'file:///%2e%2e/%2e%2e/%2e%2e/etc/passwd', 'file:///missing.mp4']) {
        const refused = await ask(url, { type: 'input_video', input_video: { url: escape } });
        expect([refused.status, refused.body.error?.param]).toEqual([400, 'messages[0].content[0]']);
      }
    } finally {
      await running.server.shutdown(1000);
    }
  });
});

describe('an encode cache on disk', () => {
  it('lets a second server (a replica, or a restart) answer about media the first encoded, without encoding it', async () => {
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-llama-serve-cache-'));
    const engines = await Promise.all([0, 1].map(() => loadTinyEngine({ encodeCache: { cacheDir } })));
    const servers = await Promise.all(engines.map((replica) => startServer({ engine: replica })));
    try {
      const video = { type: 'input_video', input_video: { url: await dataUrl(CLIP, 'video/mp4') } };
      const [first, second] = servers.map((server) => `${server.url}/v1/chat/completions`);
      const encoded = await ask(first!, video);
      expect(encoded.status).toBe(200);
      expect(await metric(servers[0]!.url, 'videollama_encode_seconds_count')).toBe(1);
      const fromDisk = await ask(second!, video);
      expect([fromDisk.status, fromDisk.body.usage?.prompt_tokens]).toEqual([200, encoded.body.usage?.prompt_tokens]);
      const text = await (await fetch(`${servers[1]!.url}/metrics`)).text();
      expect(text).toMatch(/^videollama_encode_seconds_count 0$/m);
      expect(text).toMatch(/^videollama_encode_cache_hits_total\{tier="disk"\} 1$/m);
    } finally {
      for (const server of servers) await server.server.shutdown(1000);
      for (const replica of engines) await replica.dispose();
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
