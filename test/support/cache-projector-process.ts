/**
 * A second process for the projector cache tests: `vite-node cache-projector-process.ts
 * <projector> <cacheDir> <video>` encodes the video through an on-disk cache and prints the
 * cache's counters and the embedding's first values as JSON.
 */
import { EncodeCache } from '../../src/cache/encode-cache.js';
import { Projector } from '../../src/projector.js';

const [projectorFile, cacheDir, video] = process.argv.slice(2);
const cache = new EncodeCache({ cacheDir: cacheDir! });
const projector = await Projector.load(projectorFile!, { threads: 1, cache });
const embedding = await projector.encodeVideo(video!);
console.log(JSON.stringify({ stats: cache.stats, head: Array.from(embedding.data.subarray(0, 8)), projector: embedding.projector }));
await projector.dispose();
