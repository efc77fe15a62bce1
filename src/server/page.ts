/**
 * `GET /` and `/assets/*`: the prebuilt web page (web/, built by `npm run build:web` into
 * dist/web). Only the files of the build are served, by exact name.
 * @module
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { FastifyInstance } from 'fastify';

import { ApiError } from './api-error.js';

/** Where the build lands: dist/web, from src/server or dist/server alike. */
export const PACKAGED_WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
};

/** Mounts the page's routes when the build is there (a server without it still serves the API). */
export async function pageRoutes(app: FastifyInstance, webRoot: string): Promise<void> {
  const assetsDir = path.join(webRoot, 'assets');
  const assets = new Set(await fs.readdir(assetsDir).catch(() => [] as string[]));
  const index = await fs.readFile(path.join(webRoot, 'index.html')).catch(() => undefined);
  app.get('/', async (_request, reply) => {
    if (!index) throw new ApiError(404, 'this server was installed without its web page (npm run build:web)', 'page_not_built');
    return reply.type(TYPES['.html']!).header('cache-control', 'no-cache').send(index);
  });
  app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
    const name = request.params.name;
    if (!assets.has(name)) throw new ApiError(404, 'not found', 'not_found');
    const type = TYPES[path.extname(name)] ?? 'application/octet-stream';
    // Vite puts a content hash in every asset name: they never change.
    return reply.type(type).header('cache-control', 'public, max-age=31536000, immutable').send(await fs.readFile(path.join(assetsDir, name)));
  });
}
