/**
 * The web page in a real browser (Debian's chromium through playwright-core), at a phone's
 * size: upload the fixture clip, see the sampled frames and audio clips, ask with the keyboard,
 * read the streamed answer, stop an answer, reload and find the conversation and the upload;
 * every control named, reachable by the keyboard, nothing wider than the phone's screen. A
 * screenshot is kept in .cache/artifacts (not compared).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Engine } from '../../src/server/engine.js';
import { CACHE_DIR } from '../support/tiny-llama.js';
import { CLIP, loadTinyEngine, startServer, type RunningServer } from './support.js';

const CHROMIUM = '/usr/bin/chromium';

let engine: Engine;

/**
 * The engine with its replies handed out one piece per 20 ms: the tiny model writes a whole
 * reply in a few milliseconds, too fast for a person (or this test) to press Stop in time.
 * The server's own stopping of a generation is tested in faults.test.ts.
 */
function pacedReplies(inner: Engine): Engine {
  const paced = Object.create(inner) as Engine;
  paced.reply = async (request, onText) => {
    const pieces: string[] = [];
    const result = await inner.reply(request, (text) => pieces.push(text));
    for (const piece of pieces) {
      request.signal.throwIfAborted();
      onText(piece);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return result;
  };
  return paced;
}
let running: RunningServer;
let browser: Browser;
let webRoot: string;

beforeAll(async () => {
  webRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'video-llama-web-'));
  await build({ configFile: path.resolve('web/vite.config.ts'), build: { outDir: webRoot, emptyOutDir: true }, logLevel: 'silent' });
  engine = await loadTinyEngine();
  running = await startServer({ engine: pacedReplies(engine), webRoot });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
});

afterAll(async () => {
  await browser?.close();
  await running?.server.shutdown(1000);
  await engine?.dispose();
  fs.rmSync(webRoot, { recursive: true, force: true });
});

describe('the web page', () => {
  it('uploads a clip, shows its frames and clips, streams an answer and stops one', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    // The page must work offline: every request goes to the server.
    const foreign: string[] = [];
    page.on('request', (request) => { if (!request.url().startsWith(running.url)) foreign.push(request.url()); });
    // A short first reply, then a long one, so that there is time to stop it (the context holds 1024 positions).
    const lengths = [20, 400];
    await page.route('**/v1/chat/completions', (route) =>
      route.continue({ postData: JSON.stringify({ ...(route.request().postDataJSON() as object), max_tokens: lengths.shift() }) }));
    await page.goto(running.url);
    await expect.poll(() => page.textContent('#model')).toMatch(/^video-llama: .*vision/);

    await page.getByLabel('Drop a video, image or audio file here, or choose one').setInputFiles(CLIP);
    await page.locator('#frames img').nth(7).waitFor({ timeout: 30_000 });
    const captions = await page.locator('#frames figcaption').allTextContents();
    expect(captions).toHaveLength(8);
    expect(captions.map((c) => Number.parseFloat(c))).toEqual([...captions.map((c) => Number.parseFloat(c))].sort((a, b) => a - b));
    captions.forEach((caption) => expect(caption).toMatch(/^\d+\.\d s$/));
    expect(await page.locator('#clips button').count()).toBe(8);
    expect(await page.locator('#progress').getAttribute('value')).toBe('1');
    expect(await page.locator('#media-status').textContent()).toMatch(/audio \+ video, 40 positions/);

    // Ask with the keyboard: the label names the box, Enter sends.
    await page.getByLabel('Your question').fill('What happens in this video?');
    await page.getByLabel('Your question').press('Enter');
    const first = page.locator('.answer').first();
    await expect.poll(async () => (await first.textContent())?.length ?? 0, { timeout: 30_000 }).toBeGreaterThan(0);
    await page.locator('#send:not([disabled])').waitFor({ timeout: 60_000 });

    // A second question, stopped while it streams.
    await page.getByLabel('Your question').fill('And what next?');
    await page.getByRole('button', { name: 'Ask' }).click();
    const second = page.locator('.answer').nth(1);
    await expect.poll(async () => (await second.textContent())?.length ?? 0, { timeout: 30_000, interval: 10 }).toBeGreaterThan(0);
    // From the keyboard: the streaming text moves the layout, and a key press needs no stable position.
    await page.getByRole('button', { name: 'Stop' }).press('Enter');
    await expect.poll(() => second.textContent()).toMatch(/\[stopped\]$/);
    expect(await page.locator('.log li').count()).toBe(4);

    // After a reload the conversation is still there, and the upload can be picked again.
    await page.reload();
    await expect.poll(() => page.locator('.log li').count()).toBe(4);
    await expect.poll(() => page.locator('#uploads option').count()).toBe(2);
    await page.getByLabel('Or pick an uploaded file').selectOption({ label: 'clip.mp4 (175 KiB)' });
    await page.locator('#frames img').nth(7).waitFor({ timeout: 30_000 });
    expect(await page.locator('#frames figcaption').allTextContents()).toEqual(captions);

    // Readable on a phone: nothing is wider than the 390-pixel screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // Every control has a name that a screen reader announces.
    const unnamed = await page.locator('input, select, textarea, button').evaluateAll((controls) => controls
      .filter((control) => !((control as HTMLInputElement).labels?.length || control.getAttribute('aria-label') || control.textContent?.trim()))
      .map((control) => control.outerHTML));
    expect(unnamed).toEqual([]);
    // The keyboard reaches the file, the uploads, the question and Ask, in that order.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    const reached: string[] = [];
    for (let i = 0; i < 40 && !reached.includes('send'); i++) {
      await page.keyboard.press('Tab');
      reached.push(await page.evaluate(() => document.activeElement?.id ?? ''));
    }
    expect(reached.filter((id) => ['file', 'uploads', 'question', 'send'].includes(id))).toEqual(['file', 'uploads', 'question', 'send']);

    fs.mkdirSync(path.join(CACHE_DIR, 'artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(CACHE_DIR, 'artifacts', 'server-page.png'), fullPage: true });
    expect(foreign).toEqual([]);
    await page.close();
  });
});
