/**
 * The TS↔C++ boundary agrees with itself: the GGUF names the native loaders read are the names
 * the converter writes, ProjectorInfo has the fields native/core/projector_info.h lists, and every
 * error code native code throws is one src/bindings/errors.ts translates.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { addon } from '../../src/bindings/addon.js';
import { NATIVE_ERROR_CODES } from '../../src/bindings/errors.js';
import { PROJECTOR_INFO_FIELDS } from '../../src/bindings/projector.js';
import { projectorMetadata, projectorTensors } from '../../src/convert/tensor-map.js';
import { tinyProjector } from '../../src/dev/random-projector.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The Q-Formers' metadata key groups and tensor prefixes (docs/projector-format.md). */
const QFORMER_KEY_GROUPS = '(qformer|video_qformer|audio_qformer)';
const QFORMER_PREFIXES = '(qf|vqf|aqf)';

/**
 * A native printf template as a whole-name pattern: %d a block index; %s a Q-Former's key group
 * (in `vl.%s.`) or tensor prefix (leading), or a `weight` / `bias` suffix (trailing).
 */
function templatePattern(template: string): RegExp {
  const escaped = template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = escaped.replace(/%d/g, '\\d+').replace(/^vl\\\.%s/, `vl\\.${QFORMER_KEY_GROUPS}`)
    .replace(/^%s/, QFORMER_PREFIXES).replace(/%s$/, '(weight|bias)');
  return new RegExp(`^${pattern}$`);
}

/** Every name `written` is matched by exactly one template, and every template matches some name. */
function expectAgreement(templates: Record<string, string>, written: readonly string[]): void {
  const patterns = Object.entries(templates).map(([id, template]) => ({ id, pattern: templatePattern(template) }));
  const unmatched = written.filter((name) => patterns.filter((p) => p.pattern.test(name)).length !== 1);
  expect(unmatched, 'written names without exactly one native template').toEqual([]);
  const unused = patterns.filter((p) => !written.some((name) => p.pattern.test(name))).map((p) => p.id);
  expect(unused, 'native templates the converter never writes').toEqual([]);
}

describe('the native boundary', () => {
  // Both branches, and Q-Formers with and without cross-attention layers: every template is used.
  const hparams = tinyProjector(96);

  it('the native GGUF key table is the set of keys the converter writes', () => {
    const written = [...projectorMetadata(hparams).map(([key]) => key), 'general.file_type'];
    const { keys } = addon().ggufNames();
    expect(Object.keys(keys).length).toBeGreaterThan(40);
    expectAgreement(keys, written);
  });

  it('the native tensor-name table is the set of tensor names the converter writes', () => {
    const written = projectorTensors(hparams).map((spec) => spec.name);
    const { tensors } = addon().ggufNames();
    expectAgreement(tensors, written);
    // The Q-Former prefixes: qf, vqf and aqf each appear.
    for (const prefix of ['qf', 'vqf', 'aqf']) expect(written.some((name) => name.startsWith(`${prefix}.blk.0.self_q`))).toBe(true);
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
