/**
 * The command line as a Unix tool: a reader that stops early (`| head`) ends it quietly, and
 * `convert` neither leaves a partial file when stopped by a signal nor replaces an existing output
 * without `--force` (issue 11, items 10 and 18).
 */
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { describe, expect, test } from 'vitest';

import { convertCheckpoints } from '../../src/convert/convert.js';
import { CLI_SHELL_COMMAND, runCli, spawnCli } from '../support/cli.js';
import { fixture, TINY_A } from '../support/fixtures.js';
import { tempDir } from '../support/projector-files.js';
import { tinyLlamaFile } from '../support/tiny-llama.js';

/** Exit code and all of stderr once the child has exited. */
function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

const checkpoint = (name: string): string => fixture(TINY_A, `checkpoints/${name}`);
const visionArgs = (out: string): string[] => [
  'convert', '--eva-vit', checkpoint('eva_vit_g.pth'), '--blip2', checkpoint('blip2_pretrained.pth'),
  '--video-branch', checkpoint('VL_finetuned.pth'), '--type', 'f32', '--out', out,
];

describe('the video-llama command as a Unix tool', () => {
  test('a reader that closes its end early (`| head`) ends the command quietly: exit 0, nothing on stderr', async () => {
    const llm = await tinyLlamaFile();
    const child = spawnCli(['chat', '--llm', llm, '--max-tokens', '20', '--threads', '1'], 'Hello there\n');
    child.stdout!.destroy(); // closed before the reply is streamed: its first write fails with EPIPE
    const { code, stderr } = await exited(child);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  }, 120_000);

  test.each([['SIGTERM', 143], ['SIGINT', 130]] as const)('convert stopped by %s while writing leaves neither its .partial file nor an output', async (signal, status) => {
    const out = path.join(tempDir('video-llama-cli-convert-'), 'projector.gguf');
    const partial = `${out}.partial`;
    // The partial file is a FIFO: the conversion blocks in the middle of writing it until this
    // test reads, which holds it there for the signal (a real file of the tiny model is written in ms).
    execFileSync('mkfifo', [partial]);
    const child = spawnCli(visionArgs(out));
    const result = exited(child);
    const reader = fs.createReadStream(partial);
    await new Promise<void>((resolve) => reader.once('data', () => { reader.pause(); resolve(); }));
    child.kill(signal);
    const { code, stderr } = await new Promise<Awaited<typeof result>>((resolve) => {
      // the process exits once its blocked write fails: close our end after the signal is handled
      void result.then(resolve);
      setTimeout(() => reader.destroy(), 2000);
    });
    expect(stderr).toContain(`convert stopped by ${signal}; no output written`);
    expect(code).toBe(status);
    expect(fs.existsSync(partial)).toBe(false);
    expect(fs.existsSync(out)).toBe(false);
  }, 120_000);

  test('convert refuses an existing output unless --force, which replaces it', async () => {
    const out = path.join(tempDir('video-llama-cli-convert-'), 'projector.gguf');
    fs.writeFileSync(out, 'keep me');
    const refused = await runCli(visionArgs(out));
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`INVALID_ARGUMENT: --out ${out} already exists: pass --force to replace it`);
    expect(fs.readFileSync(out, 'utf8')).toBe('keep me');
    const forced = await runCli([...visionArgs(out), '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toBe(''); // no progress off a terminal
    expect(forced.stdout).toMatch(/^wrote .*projector\.gguf: vision,/m);
    expect(fs.readFileSync(out).subarray(0, 4).toString('latin1')).toBe('GGUF');
  }, 180_000);

  test('on a terminal, convert shows its progress', async () => {
    const out = path.join(tempDir('video-llama-cli-convert-'), 'projector.gguf');
    const command = [CLI_SHELL_COMMAND, ...visionArgs(out).map((arg) => `'${arg}'`)].join(' ');
    const { stdout: terminal } = await promisify(execFile)('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    expect(terminal).toMatch(/converting \d+%  \d+\/\d+ tensors/);
    expect(terminal).toMatch(/wrote .*projector\.gguf: vision,/);
  }, 180_000);

  test('a head count error names the field in the library and the flag in the command line', async () => {
    const out = path.join(tempDir('video-llama-cli-convert-'), 'projector.gguf');
    const [evaVit, blip2, videoBranch] = ['eva_vit_g.pth', 'blip2_pretrained.pth', 'VL_finetuned.pth'].map(checkpoint);
    await expect(convertCheckpoints({ evaVit, blip2, videoBranch, out, heads: { vit: 5 } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT', message: 'Expected a positive divisor of the width 64 for heads.vit but received 5 of type number', details: { name: 'heads.vit' },
    });
    const result = await runCli([...visionArgs(out), '--vit-heads', '5']);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('video-llama: INVALID_ARGUMENT: Expected a positive divisor of the width 64 for --vit-heads but received 5 of type number\n');
  }, 120_000);
});
