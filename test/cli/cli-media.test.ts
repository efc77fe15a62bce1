/**
 * The media commands for a person at a terminal (issue 11, items 11–13): the media and its
 * options are checked before the LLM is loaded, errors speak the command line's names, progress
 * shows on a terminal only, `--json` for `describe` and `plan`, `-` for stdin, notes for options
 * that do not apply, and `chat` about media (`--media`, `/media`).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { beforeAll, describe, expect, test } from 'vitest';

import { cachedRandomProjector, tinyProjector } from '../../src/dev/random-projector.js';
import { CLI_SHELL_COMMAND, runCli } from '../support/cli.js';
import { fixture, TINY_A } from '../support/fixtures.js';
import { tempDir } from '../support/projector-files.js';
import { CACHE_DIR, tinyLlamaFile } from '../support/tiny-llama.js';

/** Width shared by the tiny LLM and the random projector (as `video-llama demo` pairs them). */
const WIDTH = 96;
const clip = fixture(TINY_A, 'inputs/clip.mp4');
const sound = fixture(TINY_A, 'inputs/audio.wav');
const dir = tempDir('video-llama-cli-media-');
const picture = path.join(dir, 'picture.png');
/** An LLM path that does not exist: a command that loaded it before checking its media would fail on it. */
const missingLlm = path.join(dir, 'never-loaded.gguf');

let llm: string;
let projector: string;

beforeAll(async () => {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=64x48', '-frames:v', '1', picture]);
  llm = await tinyLlamaFile({ embeddingWidth: WIDTH });
  projector = await cachedRandomProjector(CACHE_DIR, tinyProjector(WIDTH));
}, 300_000);

const generation = ['--temperature', '0', '--max-tokens', '5', '--threads', '1'];

describe('checked before loading the LLM, in the words of the command line', () => {
  test('a missing media file fails before any model is loaded', async () => {
    const missing = path.join(dir, 'missing.mp4');
    const result = await runCli(['describe', missing, '--llm', missingLlm, '--projector', projector]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^video-llama: FILE_NOT_FOUND: media file .*missing\.mp4 cannot be read/);
    expect(result.stderr).not.toContain('never-loaded');
  });

  test('--frames over the projector\'s limit names --frames, before any model is loaded', async () => {
    const result = await runCli(['describe', clip, '--frames', '64', '--llm', missingLlm, '--projector', projector]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('INVALID_ARGUMENT: Expected an integer from 1 to 32 (this projector\'s limit) for --frames but received "64"');
    expect(result.stderr).not.toMatch(/options\.|never-loaded/);
  });

  test('a missing positional, an extra one and an unknown option are said plainly', async () => {
    const none = await runCli(['describe', '--llm', missingLlm, '--projector', projector]);
    expect(none.stderr).toMatch(/^video-llama: INVALID_ARGUMENT: missing media file \(a path, or - for stdin\): give exactly one\n/);
    const two = await runCli(['plan', clip, sound, '--projector', projector]);
    expect(two.stderr).toContain(`expected exactly one media file (a path, or - for stdin), got 2: ${clip} ${sound}`);
    const unknown = await runCli(['plan', clip, '--frame', '4']);
    const firstLine = unknown.stderr.split('\n')[0]!;
    expect(firstLine).toBe('video-llama: INVALID_ARGUMENT: unknown option --frame (the options are listed below)');
    expect([none, two, unknown].map((r) => r.status)).toEqual([1, 1, 1]);
  });

  test('a library check after loading names the flag too (--top-p, not options.topP)', async () => {
    const result = await runCli(['chat', '--llm', llm, '--top-p', '2', ...generation], 'Hello\n');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('INVALID_ARGUMENT: Expected a number in (0, 1] for --top-p but received 2');
  });
});

describe('plan', () => {
  test('--json from stdin (-): the plan of the clip, stderr quiet', async () => {
    const result = await runCli(['plan', '-', '--projector', projector, '--json', '--frames', '4'], fs.readFileSync(clip));
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const plan = JSON.parse(result.stdout) as { file: string; kind: string; frameTimes: number[]; mediaPositions: number };
    expect(plan).toMatchObject({ file: '-', kind: 'video+audio' });
    expect(plan.frameTimes).toHaveLength(4);
  });

  test('options that do not apply are notes on stderr', async () => {
    const image = await runCli(['plan', picture, '--projector', projector, '--frames', '4', '--no-audio']);
    expect(image.status, image.stderr).toBe(0);
    expect(image.stderr).toContain(`video-llama: note: --frames does not apply: ${picture} is an image`);
    expect(image.stderr).toContain(`video-llama: note: --no-audio does not apply: ${picture} is an image`);
    expect(image.stdout).toMatch(/^.*picture\.png: image/);
    const audio = await runCli(['plan', sound, '--projector', projector, '--no-audio']);
    expect(audio.status, audio.stderr).toBe(0);
    expect(audio.stderr).toContain(`video-llama: note: --no-audio does not apply: ${sound} has only sound, and that is what is described`);
    expect(audio.stdout).toMatch(/audio\.wav: audio/);
  });
});

describe('describe and chat', () => {
  test('describe --json: one JSON object on stdout, nothing on a non-terminal stderr', async () => {
    const result = await runCli(['describe', clip, '--llm', llm, '--projector', projector, '--json', ...generation]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const out = JSON.parse(result.stdout) as { answer: string; media: Array<{ kind: string; tokens: number }>; prompt: string };
    expect(out.media.map((m) => m.kind)).toEqual(['audio', 'video']);
    expect(out.prompt).toBe('Describe this video in detail.');
    expect(out.answer.length).toBeGreaterThan(0);
  });

  test('on a terminal, describe shows loading, decoding and each encoder stage', async () => {
    const command = [CLI_SHELL_COMMAND, 'describe', `'${clip}'`, '--llm', `'${llm}'`, '--projector', `'${projector}'`, ...generation].join(' ');
    const { stdout: terminal } = await promisify(execFile)('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    expect(terminal).toMatch(/loading the models \d+%/);
    expect(terminal).toContain('decoding the media');
    expect(terminal).toMatch(/encoding: vit done \(1\/3\)/);
    expect(terminal).toMatch(/encoded audio \+ video in [\d.]+ s/);
  });

  test('chat --media attaches a video to the first message, /media a picture to a later one', async () => {
    const result = await runCli(['chat', '--llm', llm, '--projector', projector, '--media', clip, ...generation],
      `What happens in it?\n/media ${picture}\nAnd in this one?\n/media ${path.join(dir, 'nothing.png')}\nThanks\n`);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(3);
    expect(result.stderr).toContain(`attached ${clip} (audio + video) to the next message`);
    expect(result.stderr).toContain(`attached ${picture} (image) to the next message`);
    // a bad file is said, and the chat goes on
    expect(result.stderr).toMatch(/video-llama: FILE_NOT_FOUND: media file .*nothing\.png cannot be read/);
  });
});
