/**
 * A restricted unpickler for the `data.pkl` of a `torch.save` archive.
 *
 * It is a small stack machine over the pickle opcodes that `torch.save` emits (protocol 2, plus
 * the protocol 3-5 opcodes a newer writer may use for the same data). A pickle can name any
 * Python callable through GLOBAL/STACK_GLOBAL and call it through REDUCE; here every global must
 * be in the caller's allow-list — anything else (`os.system`, `builtins.eval`, ...) stops
 * unpickling with UNSAFE_CHECKPOINT before anything is done with it. The allow-listed "callables"
 * are our own TypeScript functions that build plain values; nothing is ever run or loaded because
 * of the file's content.
 *
 * The input is untrusted: every length is checked against the bytes left, stack pops are checked,
 * memo and stack sizes are bounded, and each opcode consumes at least one byte, so the machine
 * always stops. Malformed input gives INVALID_MODEL.
 *
 * Values: None → null, bool → boolean, int → number (bigint beyond 2^53), float → number,
 * str → string, bytes → Uint8Array, list → array, tuple → frozen array, dict → Map.
 * Opcode reference: CPython Lib/pickletools.py.
 * @internal
 * @module
 */
import { VideoLlamaError } from '../errors.js';

/**
 * A Python global the pickle may reference. `call` (if any) is what REDUCE / NEWOBJ do with it;
 * a global without `call` can only be passed around as a value (e.g. `torch.FloatStorage`).
 */
export class PickleGlobal {
  constructor(
    /** `module.name`, e.g. `collections.OrderedDict`. */
    readonly qualifiedName: string,
    readonly call?: (args: readonly unknown[]) => unknown,
  ) {}
}

/** What the caller allows and how persistent ids resolve. */
export interface UnpickleOptions {
  /** The only globals the pickle may reference, by `module.name`. */
  readonly globals: ReadonlyMap<string, PickleGlobal>;
  /** Resolves BINPERSID ids (torch: the storage tuples). */
  persistentLoad(pid: unknown): unknown;
  /** Names the input in errors (the checkpoint file). */
  readonly source: string;
}

/** Bounds that no state-dict pickle comes near (a 4.5 GB ImageBind has ~1,500 tensors). */
const MAX_STACK = 1_000_000;
const MAX_MEMO = 10_000_000;
const MAX_LONG_BYTES = 64;
const HIGHEST_PROTOCOL = 5;

/** The marker MARK pushes onto the mark stack (CPython's "metastack"). */
type Frame = unknown[];

/** The error for malformed pickle data. */
function invalidPickle(source: string, problem: string, position: number): VideoLlamaError {
  return new VideoLlamaError('INVALID_MODEL', `${source} is not a valid PyTorch checkpoint: ${problem} (pickle byte ${position})`, {
    file: source,
    position,
  });
}

/** The error for a global outside the allow-list. */
function unsafeGlobal(source: string, qualifiedName: string): VideoLlamaError {
  return new VideoLlamaError(
    'UNSAFE_CHECKPOINT',
    `${source} references the Python global '${qualifiedName}', which a state dict never needs; refusing to load it`,
    { file: source, global: qualifiedName },
  );
}

/**
 * Unpickles `data` and returns its top-level value.
 *
 * @example
 * ```ts
 * const globals = new Map([['collections.OrderedDict', new PickleGlobal('collections.OrderedDict', () => new Map())]]);
 * const value = unpickle(bytes, { globals, persistentLoad: () => null, source: 'model.pth' });
 * ```
 */
export function unpickle(data: Uint8Array, options: UnpickleOptions): unknown {
  return new Machine(data, options).run();
}

class Machine {
  private pos = 0;
  private stack: unknown[] = [];
  private readonly marks: Frame[] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  run(): unknown {
    for (;;) {
      if (this.pos >= this.data.length) throw this.fail('pickle ends without STOP');
      const opcode = this.data[this.pos++]!;
      if (opcode === 0x2e /* . STOP */) {
        if (this.stack.length !== 1 || this.marks.length !== 0) throw this.fail('STOP with a malformed stack');
        return this.stack[0];
      }
      this.step(opcode);
      if (this.stack.length > MAX_STACK || this.marks.length > MAX_STACK) throw this.fail('stack too deep');
    }
  }

  private step(opcode: number): void {
    switch (opcode) {
      // Framing and protocol.
      case 0x80: { // PROTO
        const protocol = this.u8();
        if (protocol > HIGHEST_PROTOCOL) throw this.fail(`unsupported pickle protocol ${protocol}`);
        return;
      }
      case 0x95: this.take(8); return; // FRAME: a length hint only

      // Constants and numbers.
      case 0x4e: this.push(null); return; // N NONE
      case 0x88: this.push(true); return; // NEWTRUE
      case 0x89: this.push(false); return; // NEWFALSE
      case 0x4b: this.push(this.u8()); return; // K BININT1
      case 0x4d: this.push(this.u16()); return; // M BININT2
      case 0x4a: { // J BININT
        const v = this.view.getInt32(this.take(4), true);
        this.push(v);
        return;
      }
      case 0x8a: this.push(this.long(this.u8())); return; // LONG1
      case 0x8b: this.push(this.long(this.u32())); return; // LONG4
      case 0x47: this.push(this.view.getFloat64(this.take(8), false)); return; // G BINFLOAT (big-endian)

      // Strings and bytes.
      case 0x58: this.push(this.utf8(this.u32())); return; // X BINUNICODE
      case 0x8c: this.push(this.utf8(this.u8())); return; // SHORT_BINUNICODE
      case 0x8d: this.push(this.utf8(this.u64())); return; // BINUNICODE8
      case 0x42: this.push(this.bytes(this.u32())); return; // B BINBYTES
      case 0x43: this.push(this.bytes(this.u8())); return; // C SHORT_BINBYTES
      case 0x8e: this.push(this.bytes(this.u64())); return; // BINBYTES8

      // Containers.
      case 0x28: this.marks.push(this.stack); this.stack = []; return; // ( MARK
      case 0x29: this.push(Object.freeze([])); return; // ) EMPTY_TUPLE
      case 0x74: this.push(Object.freeze(this.popMark())); return; // t TUPLE
      case 0x85: this.push(Object.freeze(this.popN(1))); return; // TUPLE1
      case 0x86: this.push(Object.freeze(this.popN(2))); return; // TUPLE2
      case 0x87: this.push(Object.freeze(this.popN(3))); return; // TUPLE3
      case 0x5d: this.push([]); return; // ] EMPTY_LIST
      case 0x6c: this.push(this.popMark()); return; // l LIST
      case 0x61: { // a APPEND
        const [item] = this.popN(1);
        this.list(this.top()).push(item);
        return;
      }
      case 0x65: { // e APPENDS
        const items = this.popMark();
        this.list(this.top()).push(...items);
        return;
      }
      case 0x7d: this.push(new Map()); return; // } EMPTY_DICT
      case 0x64: this.push(this.setItems(new Map(), this.popMark())); return; // d DICT
      case 0x73: this.setItems(this.dict(this.top(-3)), this.popN(2)); return; // s SETITEM
      case 0x75: { // u SETITEMS
        const items = this.popMark();
        this.setItems(this.dict(this.top()), items);
        return;
      }

      // Stack and memo.
      case 0x30: this.popN(1); return; // 0 POP
      case 0x31: this.popMark(); return; // 1 POP_MARK
      case 0x32: this.push(this.top()); return; // 2 DUP
      case 0x71: this.put(this.u8()); return; // q BINPUT
      case 0x72: this.put(this.u32()); return; // r LONG_BINPUT
      case 0x94: this.put(this.memo.size); return; // MEMOIZE
      case 0x68: this.get(this.u8()); return; // h BINGET
      case 0x6a: this.get(this.u32()); return; // j LONG_BINGET

      // Globals, calls and persistent ids.
      case 0x63: this.push(this.global(this.line(), this.line())); return; // c GLOBAL
      case 0x93: { // STACK_GLOBAL
        const [module, name] = this.popN(2);
        if (typeof module !== 'string' || typeof name !== 'string') throw this.fail('STACK_GLOBAL needs two strings');
        this.push(this.global(module, name));
        return;
      }
      case 0x52: // R REDUCE
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args); for our allow-listed callables the same as a call
        const [callable, args] = this.popN(2);
        this.push(this.call(callable, args));
        return;
      }
      case 0x62: { // b BUILD
        const [state] = this.popN(1);
        this.build(this.top(), state);
        return;
      }
      case 0x51: { // Q BINPERSID
        const [pid] = this.popN(1);
        this.push(this.options.persistentLoad(pid));
        return;
      }
      case 0x69: // i INST: the global is inline text
        throw unsafeGlobal(this.options.source, `${this.line()}.${this.line()}`);
      default:
        throw this.fail(`unsupported pickle opcode 0x${opcode.toString(16).padStart(2, '0')}`);
    }
  }

  private fail(problem: string): VideoLlamaError {
    return invalidPickle(this.options.source, problem, this.pos - 1);
  }

  /** Advances over `n` bytes and returns where they start. */
  private take(n: number): number {
    if (n > this.data.length - this.pos) throw this.fail(`needs ${n} bytes but only ${this.data.length - this.pos} are left (truncated?)`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
  private u8(): number { return this.data[this.take(1)]!; }
  private u16(): number { return this.view.getUint16(this.take(2), true); }
  private u32(): number { return this.view.getUint32(this.take(4), true); }
  private u64(): number {
    const value = this.view.getBigUint64(this.take(8), true);
    if (value > BigInt(this.data.length)) throw this.fail(`length ${value} exceeds the pickle`);
    return Number(value);
  }
  private bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.data.slice(at, at + n);
  }
  private utf8(n: number): string {
    const at = this.take(n);
    return Buffer.from(this.data.buffer, this.data.byteOffset + at, n).toString('utf8');
  }
  /** A newline-terminated ASCII line (GLOBAL's module and name). */
  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 1024) throw this.fail('unterminated GLOBAL name');
    const text = Buffer.from(this.data.buffer, this.data.byteOffset + this.pos, end - this.pos).toString('latin1');
    this.pos = end + 1;
    return text;
  }
  /** A little-endian two's-complement integer of `n` bytes (LONG1/LONG4). */
  private long(n: number): number | bigint {
    if (n > MAX_LONG_BYTES) throw this.fail(`integer of ${n} bytes is too large`);
    const at = this.take(n);
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.data[at + i]!);
    if (n > 0 && this.data[at + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private push(value: unknown): void {
    this.stack.push(value);
  }
  private top(depth = -1): unknown {
    if (this.stack.length < -depth) throw this.fail('stack underflow');
    return this.stack[this.stack.length + depth];
  }
  private popN(n: number): unknown[] {
    if (this.stack.length < n) throw this.fail('stack underflow');
    return this.stack.splice(this.stack.length - n, n);
  }
  private popMark(): unknown[] {
    const items = this.stack;
    const previous = this.marks.pop();
    if (!previous) throw this.fail('no MARK to pop to');
    this.stack = previous;
    return items;
  }
  private put(index: number): void {
    if (this.memo.size >= MAX_MEMO && !this.memo.has(index)) throw this.fail('memo too large');
    this.memo.set(index, this.top());
  }
  private get(index: number): void {
    if (!this.memo.has(index)) throw this.fail(`memo key ${index} was never stored`);
    this.push(this.memo.get(index));
  }

  private list(value: unknown): unknown[] {
    if (!Array.isArray(value) || Object.isFrozen(value)) throw this.fail('APPEND to something that is not a list');
    return value;
  }
  private dict(value: unknown): Map<unknown, unknown> {
    if (!(value instanceof Map)) throw this.fail('SETITEM on something that is not a dict');
    return value;
  }
  private setItems(dict: Map<unknown, unknown>, items: unknown[]): Map<unknown, unknown> {
    if (items.length % 2 !== 0) throw this.fail('odd number of dict items');
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
    return dict;
  }

  private global(module: string, name: string): PickleGlobal {
    const qualifiedName = `${module}.${name}`;
    const allowed = this.options.globals.get(qualifiedName);
    if (!allowed) throw unsafeGlobal(this.options.source, qualifiedName);
    return allowed;
  }
  private call(callable: unknown, args: unknown): unknown {
    if (!(callable instanceof PickleGlobal)) throw this.fail('REDUCE of something that is not a global');
    if (!callable.call) throw this.fail(`'${callable.qualifiedName}' cannot be called`);
    if (!Array.isArray(args)) throw this.fail(`arguments of '${callable.qualifiedName}' are not a tuple`);
    return callable.call(args);
  }
  /**
   * BUILD sets an object's state. The only object of a state dict that gets one is the
   * OrderedDict itself (its `_metadata` attribute: module versions, not weights), so the state
   * is dropped.
   */
  private build(target: unknown, state: unknown): void {
    if (!(target instanceof Map)) throw this.fail('BUILD on an object that takes no state');
    if (!(state instanceof Map) && !Array.isArray(state) && state !== null) throw this.fail('BUILD with an invalid state');
  }
}
