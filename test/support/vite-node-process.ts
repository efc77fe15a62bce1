/** Runs a TypeScript file of test/support in a new Node process (vite-node), for tests that need a second process. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs `test/support/<script>` with `args`; resolves with its stdout, rejects with its stderr when it fails. */
export function runSupportScript(script: string, ...args: string[]): Promise<string> {
  return runSupportScriptWithNodeOptions('', script, ...args);
}

/** {@link runSupportScript} with `NODE_OPTIONS` (e.g. `--force-node-api-uncaught-exceptions-policy=true`). */
export function runSupportScriptWithNodeOptions(nodeOptions: string, script: string, ...args: string[]): Promise<string> {
  const viteNode = path.join(repoRoot, 'node_modules', '.bin', 'vite-node');
  const env = nodeOptions ? { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${nodeOptions}`.trim() } : process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(viteNode, [path.join(repoRoot, 'test', 'support', script), ...args], { cwd: repoRoot, env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}
