// The web page: `npm run build:web` writes it to dist/web, which the package ships and the
// server serves at `/` (no CDN, no network: everything is in the build).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  build: { outDir: path.resolve(here, '..', 'dist', 'web'), emptyOutDir: true, target: 'es2022' },
});
