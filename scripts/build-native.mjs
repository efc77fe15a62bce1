#!/usr/bin/env node
// Builds the native addon against the llama.cpp that node-llama-cpp ships:
// headers come from its git bundle (extracted here, never committed), libraries
// from the prebuilt @node-llama-cpp/<platform> package of this machine.
//
// The addon finds those libraries relative to itself ($ORIGIN), so the installation can be moved.
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

/** The exact node-llama-cpp version this package pins (its platform packages share it). */
function nodeLlamaCppVersion() {
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies['node-llama-cpp'];
}

function nodeLlamaCppDir() {
  return packageDir('node-llama-cpp') ?? fail('the dependency node-llama-cpp is not installed (run npm install).');
}

/**
 * Name of the @node-llama-cpp platform package whose libraries the addon links: the CPU build
 * (Apple Silicon has only the Metal one). GPU flavours are not linked: they are loaded at run
 * time (`gpu` load option, src/backends.ts).
 */
function platformPackageName() {
  if (process.platform === 'darwin') return `@node-llama-cpp/mac-${process.arch}${process.arch === 'arm64' ? '-metal' : ''}`;
  return `@node-llama-cpp/${process.platform}-${process.arch}`;
}

function prebuiltLibDir() {
  const name = platformPackageName();
  const pkgDir = packageDir(name) ??
    fail(`no prebuilt llama.cpp libraries for this platform: the package ${name} is not installed. ` +
      `node-llama-cpp installs it as an optional dependency (not with --omit=optional); install it with ` +
      `\`npm install ${name}@${nodeLlamaCppVersion()}\`.`);
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

/** How to install the build tools on this system, for the failure message. */
function installHint() {
  if (process.platform === 'darwin') return 'xcode-select --install && brew install cmake';
  return 'apt-get install cmake g++ git   (Fedora: dnf install cmake gcc-c++ git)';
}

/** Fails before anything is built when cmake, a C++ compiler or git is missing, naming each. */
function checkTools() {
  const compiler = process.env.CXX ?? (process.platform === 'darwin' ? 'clang++' : 'c++');
  const missing = [['cmake', 'cmake'], [compiler, 'a C++17 compiler'], ['git', 'git']]
    .filter(([command]) => spawnSync(command, ['--version'], { stdio: 'ignore' }).status !== 0)
    .map(([command, what]) => `${what} (\`${command}\`)`);
  if (missing.length > 0) {
    fail(`the addon is compiled at install time and needs ${missing.join(', ')}, not found on the PATH. ` +
      `Install them (${installHint()}) and run \`npm rebuild video-llama\`.`);
  }
}

function main() {
  const target = bench ? 'video_llama_bench' : 'video_llama';
  const addon = path.join(root, 'build', 'Release', `${target}.node`);
  if (!force && !bench && fs.existsSync(addon)) {
    console.log('video-llama: native addon already built (npm run build:native rebuilds it).');
    return;
  }
  checkTools();
  const headers = extractHeaders();
  const libDir = prebuiltLibDir();
  const cmakeJs = path.join(packageDir('cmake-js'), 'bin', 'cmake-js');
  // `build`, not `compile`: after a failed build, `compile` deletes build/ (the extracted
  // headers too) and starts over, which buries the compiler's first error under missing headers.
  const args = [cmakeJs, 'build', '--out', path.join(root, 'build'),
    `--CDLLAMA_HEADERS_DIR=${headers.dest}`, `--CDLLAMA_LIB_DIR=${libDir}`,
    `--CDNODE_ADDON_API_DIR=${packageDir('node-addon-api')}`, '--target', target];
  console.log(`video-llama: building the addon against llama.cpp ${headers.tag}, libraries from ${libDir}`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) fail('cmake-js exited with an error (see above).');
}

main();
