import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Native work is CPU-bound on a 2-core machine: one test file at a time keeps timings honest.
    fileParallelism: false,
    pool: 'forks',
  },
});
