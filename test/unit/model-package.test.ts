/** The model package (model.json): written, read back, and every way it can be wrong as a typed error. */
import fs from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { fileSha256, MODEL_PACKAGE_MANIFEST, readModelPackage, writeModelPackage } from '../../src/eval/model-package.js';
import { tempDir } from '../support/projector-files.js';

const dir = tempDir('video-llama-package-');
const llm = path.join(dir, 'a.gguf');
const projector = path.join(dir, 'b.gguf');
fs.writeFileSync(llm, 'not really a model');
fs.writeFileSync(projector, 'not really a projector');
const training = { recipes: ['training/demo-llm.json'], commit: '0123abc', data: 'world train split, seed 1' };

describe('model packages', () => {
  it('writes the two files with their sizes and SHA-256, and reads them back', async () => {
    const written = await writeModelPackage(path.join(dir, 'pkg'), { name: 'demo', llm, projector, template: 'llama2', training });
    expect(written.llm).toBe(path.join(dir, 'pkg', 'llm.gguf'));
    expect(written.manifest.llm).toEqual({ file: 'llm.gguf', bytes: 18, sha256: '29a6a9f19463c8e9c592d2f06fa009fe46e351b618667e95eac63df77c56f404' }); // sha256sum's
    expect(await fileSha256(projector)).toBe(written.manifest.projector.sha256);
    const read = await readModelPackage(path.join(dir, 'pkg'));
    expect(read.manifest).toEqual({ format: 'video-llama-model', version: 1, name: 'demo', llm: written.manifest.llm, projector: written.manifest.projector, template: 'llama2', training });
  });

  it('a file of the same size but other content, a bad manifest, a missing file: INVALID_MODEL / FILE_NOT_FOUND', async () => {
    const pkg = path.join(dir, 'bad');
    await writeModelPackage(pkg, { name: 'demo', llm, projector, template: 'vicuna', training });
    const manifestFile = path.join(pkg, MODEL_PACKAGE_MANIFEST);
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(pkg, 'projector.gguf'), 'not really a projectoR');
    await expect(readModelPackage(pkg)).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringMatching(/projector\.gguf's SHA-256 is [0-9a-f]{64}, the manifest says/) });
    const withManifest = async (change: Record<string, unknown>) => {
      fs.writeFileSync(manifestFile, JSON.stringify({ ...manifest, ...change }));
      return readModelPackage(pkg);
    };
    await expect(withManifest({ format: 'other' })).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('not a model package') });
    await expect(withManifest({ version: 2 })).rejects.toMatchObject({ code: 'INVALID_MODEL' });
    await expect(withManifest({ template: 'chatml' })).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('template') });
    await expect(withManifest({ llm: { file: '../a.gguf', bytes: 18, sha256: 'a'.repeat(64) } })).rejects.toMatchObject({ code: 'INVALID_MODEL' });
    await expect(withManifest({ training: { recipes: [], data: 'x' } })).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('training') });
    await expect(withManifest({ llm: { file: 'gone.gguf', bytes: 18, sha256: 'a'.repeat(64) } })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    fs.writeFileSync(manifestFile, '{ not json');
    await expect(readModelPackage(pkg)).rejects.toMatchObject({ code: 'INVALID_MODEL', message: expect.stringContaining('not JSON') });
    await expect(readModelPackage(path.join(dir, 'nothing'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});
