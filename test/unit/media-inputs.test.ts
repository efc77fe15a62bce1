/**
 * Media inputs people hold (issue 11): an ArrayBuffer, a Blob, a Readable stream, a `file:` URL,
 * an `http:` URL only when asked for, and PCM at another sample rate.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { probe } from '../../src/media/probe.js';
import { Projector } from '../../src/projector.js';
import { describeWithFixtures, fixture, TINY_A } from '../support/fixtures.js';
import { convertFixture, tempDir } from '../support/projector-files.js';

/** A 16-bit mono WAV file of `samples` (in [-1, 1]) at `rate`. */
function wav(samples: Float32Array, rate: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples.length * 2, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples.length * 2, 40);
  const body = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => body.writeInt16LE(Math.round(s * 32767), i * 2));
  return Buffer.concat([header, body]);
}

describeWithFixtures(TINY_A, 'media inputs (tiny-a)', () => {
  const clip = fixture(TINY_A, 'inputs/clip.mp4');
  const bytes = fs.readFileSync(clip);
  let dir: string;
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    dir = tempDir('video-llama-inputs-');
    server = http.createServer((request, response) => {
      if (request.url === '/clip.mp4') response.end(bytes);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('probes an ArrayBuffer, a Blob, a Readable, a file: URL and (with allowHttp) an http: URL as the path', async () => {
    const expected = await probe(clip);
    const arrayBuffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const inputs = [arrayBuffer, new Blob([bytes]), Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), pathToFileURL(clip)];
    for (const input of inputs) expect(await probe(input)).toEqual(expected);
    expect(await probe(new URL(`${base}/clip.mp4`), { allowHttp: true })).toEqual(expected);
  });

  it('refuses an http: URL without allowHttp, another protocol, a failed download and an erroring stream with typed errors', async () => {
    await expect(probe(new URL(`${base}/clip.mp4`))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: /allowHttp/ });
    await expect(probe(new URL('ftp://example.com/a.mp4'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(probe(new URL(`${base}/missing.mp4`), { allowHttp: true })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND', details: { status: 404 } });
    const failing = new Readable({ read() { this.destroy(new Error('socket closed')); } });
    await expect(probe(failing)).rejects.toMatchObject({ code: 'MEDIA_DECODE', message: /socket closed/ });
    await expect(probe(42 as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('encodes a Readable like the path, and PCM at 8 kHz with sampleRate like the same audio in an 8 kHz file', async () => {
    await using projector = await Projector.load(await convertFixture(TINY_A, 'f32', dir), { threads: 1 });
    const fromPath = await projector.encodeMedia(clip);
    const fromStream = await projector.encodeMedia(Readable.from([bytes]));
    expect(fromStream.map((e) => e.kind)).toEqual(fromPath.map((e) => e.kind));
    fromStream.forEach((e, i) => expect(e.data).toEqual(fromPath[i]!.data));

    // Every second sample of the 16 kHz fixture: an 8 kHz signal, as a file and as PCM.
    const wav16 = fs.readFileSync(fixture(TINY_A, 'inputs/audio.wav'));
    const pcm = new Float32Array((wav16.length - 44) >> 2);
    for (let i = 0; i < pcm.length; i++) pcm[i] = wav16.readInt16LE(44 + 4 * i) / 32767;
    const file8k = path.join(dir, 'audio-8k.wav');
    fs.writeFileSync(file8k, wav(pcm, 8000));
    const fromFile = await projector.encodeAudio(file8k);
    const fromPcm = await projector.encodeAudio(pcm, { sampleRate: 8000 });
    const worst = fromFile.data.reduce((m, v, i) => Math.max(m, Math.abs(v - fromPcm.data[i]!)), 0);
    expect(worst).toBeLessThan(1e-3);
    // Read as 16 kHz (the default), the same PCM is another signal.
    const as16k = await projector.encodeAudio(pcm);
    expect(as16k.data.reduce((m, v, i) => Math.max(m, Math.abs(v - fromPcm.data[i]!)), 0)).toBeGreaterThan(1e-2);
    await expect(projector.encodeAudio(pcm, { sampleRate: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  }, 60_000);
});
