/**
 * A second process for the encode-cache tests: `vite-node cache-process.ts <dir> <key> <write|read> [seed]`.
 * `write` stores a deterministic embedding under the key (many times, to overlap with another
 * writer); `read` prints what the cache finds as JSON.
 */
import { EncodeCache } from '../../src/cache/encode-cache.js';
import { testEmbedding } from './cache-data.js';

const [dir, key, mode, seed = '1'] = process.argv.slice(2);
const cache = new EncodeCache({ cacheDir: dir, memoryBytes: 0 });
if (mode === 'write') {
  for (let i = 0; i < 20; i++) await cache.set(key!, [testEmbedding(Number(seed))]);
} else {
  const media = await cache.get(key!);
  console.log(JSON.stringify({ found: media !== undefined, first: media?.[0]?.data[0], stats: cache.stats }));
}
