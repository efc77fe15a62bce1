/**
 * The TS↔C++ boundary agrees with itself: the GGUF names the native loaders read are the table
 * the converter writes from (src/gguf/keys.ts, whose own test checks the converter writes exactly those names), ProjectorInfo has the fields native/core/projector_info.h lists, and every
 * error code native code throws is one src/bindings/errors.ts translates.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { addon } from '../../src/bindings/addon.js';
import { NATIVE_ERROR_CODES } from '../../src/bindings/errors.js';
import { PROJECTOR_INFO_FIELDS } from '../../src/bindings/projector-info.js';
import { GGUF_KEYS, GGUF_TENSOR_NAMES, PROJECTOR_ARCHITECTURE } from '../../src/gguf/keys.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A native printf template in the notation of src/gguf/keys.ts (`{}` for each placeholder). */
function asTsTemplate(template: string): string {
  return template.replace(/%[ds]/g, '{}');
}

describe('the native boundary', () => {
  it('the native GGUF key table is the converter\'s (src/gguf/keys.ts): same ids, same templates', () => {
    const { keys } = addon().ggufNames();
    const native = Object.fromEntries(Object.entries(keys).map(([id, template]) => [id, asTsTemplate(template)]));
    expect(native).toEqual(GGUF_KEYS);
    expect(addon().ggufNames().projectorArchitecture).toBe(PROJECTOR_ARCHITECTURE);
  });

  it('the native tensor-name table is the converter\'s: same ids, same templates', () => {
    const { tensors } = addon().ggufNames();
    const native = Object.fromEntries(Object.entries(tensors).map(([id, template]) => [id, asTsTemplate(template)]));
    expect(native).toEqual(GGUF_TENSOR_NAMES);
  });

  it('ProjectorInfo lists the fields the addon fills, in the same order', () => {
    expect(addon().projectorInfoFields).toEqual([...PROJECTOR_INFO_FIELDS]);
  });

  it('every error code in native sources is one that fromNative translates', () => {
    const sources = fs.readdirSync(path.join(repoRoot, 'native'), { recursive: true, encoding: 'utf8' })
      .filter((file) => /\.(cpp|h)$/.test(file))
      .map((file) => fs.readFileSync(path.join(repoRoot, 'native', file), 'utf8'));
    const codes = new Set(sources.flatMap((text) => [...text.matchAll(/(?:Error|coded_error)\((?:env, |[a-z.()]*Env\(\), )?"([A-Z_]+)"/g)].map((m) => m[1]!)));
    expect(codes.size).toBeGreaterThan(6);
    expect([...codes].filter((code) => !NATIVE_ERROR_CODES.has(code as never))).toEqual([]);
  });
});
