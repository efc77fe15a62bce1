/** Runs the CLI from source, as `video-llama <args>`, with `input` on stdin. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const viteNode = path.join(repoRoot, 'node_modules', '.bin', 'vite-node');
const main = path.join(repoRoot, 'src', 'cli', 'main.ts');

/** The command line that runs the CLI from source, quoted for a shell (for `script -qc`). */
export const CLI_SHELL_COMMAND = `'${viteNode}' '${main}'`;

/** The result of a CLI run. */
export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The CLI's exit status and output once it has exited. Asynchronous on purpose: a test blocked
 * in `spawnSync` for long starves vitest's own messages ("Timeout calling onTaskUpdate").
 */
export async function runCli(args: string[], input: string | Uint8Array = ''): Promise<CliResult> {
  const child = spawnCli(args, input);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => { stdout += text; });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { status, stdout, stderr };
}

/** Starts the CLI as a child process with piped stdio and `input` on stdin (for tests that signal it or close its output). */
export function spawnCli(args: string[], input: string | Uint8Array = ''): ChildProcess {
  const child = spawn(viteNode, [main, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(input);
  return child;
}
