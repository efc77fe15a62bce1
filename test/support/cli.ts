/** Runs the CLI from source, as `video-llama <args>`, with `input` on stdin. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function cli(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const viteNode = path.join(repoRoot, 'node_modules', '.bin', 'vite-node');
  const result = spawnSync(viteNode, [path.join(repoRoot, 'src', 'cli', 'main.ts'), ...args], { input, encoding: 'utf8', cwd: repoRoot, timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
