/**
 * Where the golden fixtures are: $VIDEO_LLAMA_FIXTURES, else ../shared/fixtures beside the repo.
 * Tests that need them use `describeWithFixtures`, which says what is missing and which
 * variable to set when they are absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const FIXTURES_ENV = 'VIDEO_LLAMA_FIXTURES';

export function fixturesDir(): string {
  return process.env[FIXTURES_ENV] ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
}

/** Path of a file inside a fixture set, e.g. fixture('videollama-tiny-a', 'inputs/clip.mp4'). */
export function fixture(set: string, file: string): string {
  return path.join(fixturesDir(), set, file);
}

export function hasFixtureSet(set: string): boolean {
  return fs.existsSync(path.join(fixturesDir(), set, 'config.json'));
}

/** `describe` that runs when the fixture set exists and otherwise reports why it did not. */
export function describeWithFixtures(set: string, name: string, body: () => void): void {
  if (hasFixtureSet(set)) {
    describe(name, body);
  } else {
    describe.skipIf(true)(`${name} — fixtures not found at ${path.join(fixturesDir(), set)}; set ${FIXTURES_ENV}`, body);
  }
}

export const TINY_A = 'videollama-tiny-a';
