#!/usr/bin/env node
// Builds the native addon against the llama.cpp that node-llama-cpp ships:
// headers come from its git bundle (extracted here, never committed), libraries
// from the prebuilt @node-llama-cpp/<platform> package of this machine.
//
// Environment:
//   VIDEO_LLAMA_GPU=cpu|cuda|vulkan|metal   which prebuilt flavour to link (default: cpu,
//                                           or metal on Apple Silicon)
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const force = process.argv.includes('--force');
// --bench: the benchmark addon (video_llama_bench.node, for bench/ only) instead of the library's
const bench = process.argv.includes('--bench');

function fail(message) {
  console.error(`video-llama: native build failed: ${message}`);
  process.exit(1);
}

/** Folder of an installed package, looked up the way Node does (some packages do not export package.json). */
function packageDir(name, from = root) {
  for (const dir of require.resolve.paths(name) ?? []) {
    if (!dir.startsWith(path.parse(from).root)) continue;
    const candidate = path.join(dir, name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
  }
  return undefined;
}

function nodeLlamaCppDir() {
  return packageDir('node-llama-cpp') ?? fail('the dependency node-llama-cpp is not installed (run npm install).');
}

/** Name of the @node-llama-cpp platform package for this machine and GPU choice. */
function platformPackageName() {
  const gpu = process.env.VIDEO_LLAMA_GPU ?? (process.platform === 'darwin' && process.arch === 'arm64' ? 'metal' : 'cpu');
  const base = `${process.platform === 'darwin' ? 'mac' : process.platform}-${process.arch}`;
  if (gpu === 'cpu') return `@node-llama-cpp/${base}`;
  if (gpu === 'metal') return `@node-llama-cpp/${base}-metal`;
  if (gpu === 'cuda' || gpu === 'vulkan') return `@node-llama-cpp/${base}-${gpu}`;
  fail(`VIDEO_LLAMA_GPU=${gpu} is not one of cpu, cuda, vulkan, metal.`);
}

function prebuiltLibDir() {
  const name = platformPackageName();
  const pkgDir = packageDir(name) ??
    fail(`no prebuilt llama.cpp libraries for this platform: the package ${name} is not installed. ` +
      `Install it (npm install ${name}) or pick another flavour with VIDEO_LLAMA_GPU.`);
  const binsDir = path.join(pkgDir, 'bins');
  const flavour = fs.readdirSync(binsDir).find((d) => fs.statSync(path.join(binsDir, d)).isDirectory());
  if (!flavour) fail(`${name} has no bins/ folder`);
  return path.join(binsDir, flavour);
}

/** Extracts include/ and ggml/include/ of the bundled llama.cpp release into build/llama.cpp-<tag>. */
function extractHeaders() {
  const llamaDir = path.join(nodeLlamaCppDir(), 'llama');
  const info = JSON.parse(fs.readFileSync(path.join(llamaDir, 'llama.cpp.info.json'), 'utf8'));
  const dest = path.join(root, 'build', `llama.cpp-${info.tag}`);
  const stamp = path.join(dest, '.extracted');
  if (fs.existsSync(stamp)) return { dest, tag: info.tag };
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  const repo = path.join(dest, '.repo');
  const git = (...args) => execFileSync('git', args, { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    fs.mkdirSync(repo);
    git('init', '-q');
    git('fetch', '-q', path.join(llamaDir, 'gitRelease.bundle'), 'HEAD');
    const tar = git('archive', '--format=tar', 'FETCH_HEAD', 'include', 'ggml/include');
    execFileSync('tar', ['-x', '-C', dest], { input: tar });
  } catch (error) {
    fail(`could not extract llama.cpp ${info.tag} headers from node-llama-cpp's gitRelease.bundle ` +
      `(git and tar are needed): ${error.message}`);
  }
  fs.rmSync(repo, { recursive: true, force: true });
  fs.writeFileSync(stamp, info.tag);
  return { dest, tag: info.tag };
}

function main() {
  const target = bench ? 'video_llama_bench' : 'video_llama';
  const addon = path.join(root, 'build', 'Release', `${target}.node`);
  if (!force && !bench && fs.existsSync(addon)) {
    console.log('video-llama: native addon already built (npm run build:native rebuilds it).');
    return;
  }
  const headers = extractHeaders();
  const libDir = prebuiltLibDir();
  const cmakeJs = path.join(packageDir('cmake-js'), 'bin', 'cmake-js');
  const args = [cmakeJs, 'compile', '--out', path.join(root, 'build'),
    `--CDLLAMA_HEADERS_DIR=${headers.dest}`, `--CDLLAMA_LIB_DIR=${libDir}`,
    `--CDNODE_ADDON_API_DIR=${packageDir('node-addon-api')}`, '--target', target];
  console.log(`video-llama: building the addon against llama.cpp ${headers.tag}, libraries from ${libDir}`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) fail('cmake-js exited with an error (see above).');
}

main();
