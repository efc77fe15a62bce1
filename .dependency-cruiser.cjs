/**
 * The import rules of docs/architecture.md ("Layers"), checked by `npm run lint:deps`.
 * Rules are written by folder so that they hold whatever files a folder gains or loses.
 * A layer may import its own folder and the layers below it, never one above.
 */
const SRC = '^src/';

/** `from` (a folder or file pattern under src/) may import only what `allowed` matches, besides itself. */
function onlyImports(name, from, allowed, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: `${SRC}${from}` },
    to: { path: SRC, pathNot: [`${SRC}${from}`, ...allowed.map((layer) => `${SRC}${layer}`)] },
  };
}

const ERRORS = 'errors\\.ts$';
// The native boundary and what a load asks of the machine (backend, threads, GPU layers).
const NATIVE = '(native\\.ts$|backends\\.ts$|compute-options\\.ts$|bindings/)';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import circle, of any length.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    onlyImports('errors-at-the-bottom', ERRORS, [], 'errors.ts is the bottom layer: it imports nothing of ours.'),
    onlyImports('gguf-low', 'gguf/', [ERRORS, NATIVE], 'gguf/ reads and writes GGUF files: errors and the addon only.'),
    onlyImports('native-low', NATIVE, [ERRORS], 'The addon loader, the GPU backend choice and its typed bindings sit on errors only.'),
    onlyImports('media-only-decodes', 'media/', [ERRORS],
      'media/ decodes (ffmpeg, probe, frames, PCM) and knows nothing of preprocessing or models.'),
    onlyImports('processors-below-encoders', 'processors/', [ERRORS, 'media/'],
      'processors/ prepare decoded data (sampling, resizing, normalising, fbank); they may use media types.'),
    onlyImports('encoders-glue', 'encoders/', [ERRORS, 'media/', 'processors/'],
      'encoders/ joins decoding and preprocessing into encoder inputs; never the projector object itself.'),
    onlyImports('media-embedding-is-data', 'media-embedding\\.ts$', [ERRORS],
      'The hand-over between the projector and the LLM is plain data.'),
    onlyImports('projector-object', 'projector(\\.ts$|/)', [ERRORS, NATIVE, 'gguf/', 'media/', 'processors/', 'encoders/', 'cache/', 'plan/', 'media-embedding\\.ts$'],
      'The projector object: encoders, its cache and its preflight plan below it, never the LLM, the chat or the facade.'),
    onlyImports('llm-object', 'llm/', [ERRORS, NATIVE, 'gguf/', 'media-embedding\\.ts$'],
      'The language model object: no media path, no chat.'),
    onlyImports('chat-above-llm', 'chat/', [ERRORS, 'llm/', 'media-embedding\\.ts$'],
      'Chats drive the LLM with text and embeddings; they never decode or encode media.'),
    onlyImports('convert-tool', 'convert/', [ERRORS, 'gguf/', 'processors/constants\\.ts$'],
      'The converter writes projector GGUFs; the preprocessing constants it writes come from processors/constants.ts.'),
    onlyImports('dev-tools', 'dev/', [ERRORS, 'gguf/', 'convert/'], 'Development helpers (random weights) build on the converter.'),
    {
      name: 'facade-on-top',
      comment: 'Only the public surface (index.ts), the CLI and the server import the facade.',
      severity: 'error',
      from: { path: SRC, pathNot: [`${SRC}(index\\.ts$|cli/|server/|video-llama(\\.ts$|/))`] },
      to: { path: `${SRC}video-llama(\\.ts$|/)` },
    },
    {
      name: 'server-on-top',
      comment: 'The HTTP server sits beside the CLI: only the CLI imports it.',
      severity: 'error',
      from: { path: SRC, pathNot: `${SRC}(cli|server)/` },
      to: { path: `${SRC}server/` },
    },
    {
      name: 'cli-above-all',
      comment: 'Nothing of the library imports the CLI, nor the public index.',
      severity: 'error',
      from: { path: SRC, pathNot: `${SRC}cli/` },
      to: { path: `${SRC}(cli/|index\\.ts$)` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
