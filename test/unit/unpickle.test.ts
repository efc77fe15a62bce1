import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { openPth } from '../../src/convert/pth.js';
import { PickleGlobal, unpickle } from '../../src/convert/unpickle.js';
import { VideoLlamaError } from '../../src/errors.js';
import { PickleBuilder, writeStateDict, writeZip } from '../support/torch-zip.js';

const noGlobals = { globals: new Map<string, PickleGlobal>(), persistentLoad: () => null, source: 'test.pkl' };

function errorOf(run: () => unknown): VideoLlamaError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(VideoLlamaError);
    return error as VideoLlamaError;
  }
  throw new Error('expected an error');
}

describe('unpickle', () => {
  it('decodes the value opcodes torch.save uses', () => {
    const p = new PickleBuilder().proto().op(0x7d) // {}
      .string('ints').mark().op(0x4b, 7).op(0x4d, 0x34, 0x12).int(-5).op(0x8a, 2, 0xff, 0x7f).tuple()
      .op(0x73)
      .string('misc').mark().op(0x4e, 0x88, 0x89).op(0x47, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18).op(0x8c, 2, 0x68, 0x69).tuple()
      .op(0x71, 0) // BINPUT 0
      .op(0x73)
      .string('again').op(0x68, 0).op(0x73) // BINGET 0
      .string('list').op(0x5d).mark().op(0x4b, 1, 0x4b, 2).op(0x65).op(0x73)
      .stop();
    const value = unpickle(p.toBytes(), noGlobals) as Map<string, unknown>;
    expect(value.get('ints')).toEqual([7, 0x1234, -5, 0x7fff]);
    expect(value.get('misc')).toEqual([null, true, false, Math.PI, 'hi']);
    expect(value.get('again')).toBe(value.get('misc'));
    expect(value.get('list')).toEqual([1, 2]);
  });

  it('rejects os.system via GLOBAL + REDUCE without calling anything', () => {
    const p = new PickleBuilder().proto().global('os', 'system').string('touch /tmp/pwned').op(0x85).reduce().stop();
    const error = errorOf(() => unpickle(p.toBytes(), noGlobals));
    expect(error.code).toBe('UNSAFE_CHECKPOINT');
    expect(error.message).toContain("'os.system'");
  });

  it('rejects builtins.eval named through STACK_GLOBAL and the INST opcode', () => {
    const stackGlobal = new PickleBuilder().op(0x80, 4).string('builtins').string('eval').op(0x93).string('1').op(0x85).reduce().stop();
    expect(errorOf(() => unpickle(stackGlobal.toBytes(), noGlobals)).message).toContain("'builtins.eval'");
    const inst = new PickleBuilder().proto().mark().string('x').op(0x69, ...Buffer.from('subprocess\nrun\n')).stop();
    expect(errorOf(() => unpickle(inst.toBytes(), noGlobals)).message).toContain("'subprocess.run'");
  });

  it('only calls globals that have a builder', () => {
    const tag = new Map([['torch.FloatStorage', new PickleGlobal('torch.FloatStorage')]]);
    const p = new PickleBuilder().proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop();
    const error = errorOf(() => unpickle(p.toBytes(), { ...noGlobals, globals: tag }));
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toContain('cannot be called');
  });

  it.each([
    ['empty input', []],
    ['no STOP', [0x80, 2, 0x4e]],
    ['a string longer than the data', [0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x41]],
    ['an unknown memo key', [0x80, 2, 0x68, 9, 0x2e]],
    ['a pop from an empty stack', [0x80, 2, 0x30, 0x2e]],
    ['SETITEMS without a dict', [0x80, 2, 0x4e, 0x28, 0x4e, 0x4e, 0x75, 0x2e]],
    ['an unsupported opcode', [0x80, 2, 0x46, 0x2e]],
    ['a huge integer', [0x80, 2, 0x8b, 0, 0, 0, 1, 0x2e]],
  ])('gives INVALID_MODEL for %s', (_, bytes) => {
    const error = errorOf(() => unpickle(Uint8Array.from(bytes), noGlobals));
    expect(error.code).toBe('INVALID_MODEL');
    expect(error.message).toContain('test.pkl');
  });

  it('never throws anything but a VideoLlamaError on corrupted state-dict pickles', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-unpickle-'));
    const file = path.join(dir, 'ok.pth');
    writeStateDict(file, [{ key: 'w', shape: [2, 3], values: new Float32Array(6) }], { wrapModel: true });
    await (await openPth(file)).close();
    // Mutate the pickle bytes at random (seeded) and re-zip: every outcome must be a clean result or error.
    let seed = 12345;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const original = new Uint8Array(fs.readFileSync(file)); // whole zip; flip bytes inside the pickle entry only
    const pickleStart = 30 + 'archive/data.pkl'.length;
    const pickleLength = new DataView(original.buffer).getUint32(22, true);
    for (let trial = 0; trial < 300; trial++) {
      const mutated = original.slice();
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) {
        mutated[pickleStart + Math.floor(random() * pickleLength)] = Math.floor(random() * 256);
      }
      const target = path.join(dir, 'mutated.pth');
      fs.writeFileSync(target, mutated);
      await openPth(target).then((p) => p.close(), (error: unknown) => {
        expect(error).toBeInstanceOf(VideoLlamaError);
        expect(['INVALID_MODEL', 'UNSAFE_CHECKPOINT']).toContain((error as VideoLlamaError).code);
      });
    }
  });

  it('rejects a torch-like archive whose pickle calls os.system', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vl-unpickle-'));
    const file = path.join(dir, 'evil.pth');
    const marker = path.join(dir, 'pwned');
    const pickle = new PickleBuilder().proto().global('os', 'system').string(`touch ${marker}`).op(0x85).reduce().stop();
    writeZip(file, [{ name: 'evil/data.pkl', data: pickle.toBytes() }, { name: 'evil/version', data: Buffer.from('3\n') }]);
    await expect(openPth(file)).rejects.toMatchObject({ code: 'UNSAFE_CHECKPOINT', message: expect.stringContaining("'os.system'") });
    expect(fs.existsSync(marker)).toBe(false);
  });
});
