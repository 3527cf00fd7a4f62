/**
 * Main thread. Dirty-block tracking compiled into a guest: every instruction that writes
 * linear memory (the stores, SIMD stores, `memory.fill`, `memory.copy`, `memory.init`) is
 * paired with a write of 1 into a byte map — one byte per 4 KiB block of the guest's memory —
 * that lives in a second memory the guest's own code never names. After a call the worker
 * restores only the marked blocks from the snapshot, so a reset costs what the call touched.
 *
 * The walk decodes every instruction of every function body. A body it cannot follow (an
 * opcode it does not know: atomics, exceptions, GC) or one that changes what an in-place
 * reset cannot restore (tables, dropped segments) makes the whole module uninstrumentable;
 * such a module is then reset by replacing its instance.
 *
 * Why it is this long: one walk over each body's instructions inserts all of the
 * rewrite's code (dirty marks, interruption checks, fuel) — split, each part would decode
 * every instruction again, or share the walk's state through an interface as long as it.
 */
import { readLeb, writeLeb } from '../wasm-binary.js';
import { REGION_ACCESS_BYTES } from './layout.js';

/** log2 of the tracked block size: blocks of 4 KiB. */
export const BLOCK_SHIFT = 12;
export const BLOCK_BYTES = 1 << BLOCK_SHIFT;
/**
 * Bytes a single store may write past the block its address falls in (a 16-byte `v128.store`
 * that starts in the last byte of a block). A store marks only its first block; the reset
 * restores this much of the next block too.
 */
export const STORE_SPILL = 16;

/** Why a module cannot be instrumented; the module is then reset by replacement. */
export class Uninstrumentable extends Error {}

export interface CodeLayout {
  /** Parameter count of every function type, by type index. */
  paramCounts: number[];
  /** Type index of every defined function, in order. */
  functionTypes: number[];
  /** Index of the i32 global holding this instance's offset into the dirty map. */
  baseGlobal: number;
  /** Function index the mark helper `(dest: i32, length: i32) -> ()` will have. */
  markFunction: number;
  /** Index of the i32 global holding the id of the call the instance runs (`__nuvola_arm`). */
  armedGlobal: number;
  /** Whether to add the interruption checks (default true). */
  checks?: boolean;
  /** With a `fuel` budget: the index of the i64 fuel global, counted down beside each check. */
  fuelGlobal?: number;
  /** How many functions the module imports (the host's): a call to one is followed by a check. */
  functionImports?: number;
  /**
   * With `nuvola:region` imports: the accessor each imported function index is (its name in
   * abi.ts), and where the instance's slot table lies from the dirty-map base
   * (`regionTableOffset`). Each call of an accessor becomes the access itself (see `regionAccess`).
   */
  regions?: { accessors: ReadonlyMap<number, string>; table: number };
}

/**
 * Checks at the instructions that may run long without a function entry or loop header
 * inside them: where each lands in a body (see `instrumentBody`).
 */
interface Checks {
  /** At a function entry: the interruption check (plain load) and fuel. */
  entry: number[];
  /** At a loop header: the interruption check (atomic load) and fuel. */
  loop: number[];
  /**
   * After a bulk memory instruction, a call to a host import or a call_indirect (whose table
   * may hold imports): the interruption check alone (atomic load), no fuel. Without it a body
   * of straight-line code — thousands of `memory.fill`s of the whole memory, or of a slow
   * host call — runs for seconds past its deadline, and only stopping its worker ends it.
   */
  after: number[];
  /** Functions the module imports (indices below this are the host's). */
  imports: number;
  regions: CodeLayout['regions'];
}

/**
 * Fuel, beside each interruption check: decrement the fuel global and trap (`unreachable`)
 * once it is below zero. One unit per function entry and loop iteration, so the count of a
 * call depends only on the path its code takes: the same on every machine.
 */
function fuelCheck(fuelGlobal: number): number[] {
  const g = writeLeb(fuelGlobal);
  return [0x23, ...g, 0x42, 0x01, 0x7d, 0x24, ...g, 0x23, ...g, 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b];
}

/**
 * The interruption check, at every function entry and loop header: when the worker's
 * interrupt word (memory 2, offset 0) names the call this instance runs, trap. The pool sets
 * the word when a call on the CPU passes its deadline; the trap ends that call only.
 */
function interruptCheck(armedGlobal: number, atomic: boolean): number[] {
  // At a loop header an atomic load (0xfe 0x10), which the engine may not hoist out of the
  // loop; at a function entry a plain one (0x28): it runs once per call, and the checks at the
  // loop headers of any caller it is inlined into still see the word.
  const load = atomic ? [0xfe, 0x10] : [0x28];
  return [0x23, ...writeLeb(armedGlobal), 0x41, 0x00, ...load, 0x42, 0x02, 0x00, 0x46, 0x04, 0x40, 0x00, 0x0b];
}

const I32 = 0x7f;
const I64 = 0x7e;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;

const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const GLOBAL_GET = 0x23;
const I32_CONST = 0x41;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_SHR_U = 0x76;
const I32_EQZ = 0x45;
const I32_STORE8 = 0x3a;
const CALL = 0x10;
/** memarg flags with the multi-memory bit set and alignment 1, then memory index 1. */
const DIRTY_MEMARG = [0x40, 0x01, 0x00];

/** Value type stored by each MVP store opcode (0x36..0x3e). */
const STORE_TYPES: Record<number, number> = {
  0x36: I32,
  0x37: I64,
  0x38: F32,
  0x39: F64,
  0x3a: I32,
  0x3b: I32,
  0x3c: I64,
  0x3d: I64,
  0x3e: I64,
};

class Writer {
  private buf = new Uint8Array(1024);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }
  bytes(src: ArrayLike<number>): void {
    this.reserve(src.length);
    this.buf.set(src, this.length);
    this.length += src.length;
  }
  leb(value: number): void {
    this.bytes(writeLeb(value));
  }
  /** Signed LEB128 of a 32-bit value. */
  sleb(value: number): void {
    let v = value | 0;
    for (;;) {
      const byte = v & 0x7f;
      v >>= 7;
      const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
      this.byte(done ? byte : byte | 0x80);
      if (done) return;
    }
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/**
 * Where a rewritten function body's bytes came from, for mapping engine offsets (stack frames)
 * back to the original module's (source maps): `anchors` holds pairs (offset in the new body,
 * offset in the original body), one where each run of copied original bytes starts; bytes the
 * rewrite inserted map to the anchor before them. Undefined for a body copied unchanged.
 */
export type BodyMap = number[] | undefined;

/**
 * Rewrites a code section's payload; appends the mark helper's body as the last function.
 * `maps`, when given, receives one {@link BodyMap} per original function.
 */
export function instrumentCode(section: Uint8Array, layout: CodeLayout, maps?: BodyMap[]): Uint8Array {
  let pos = 0;
  const count = readLeb(section, pos);
  pos = count.next;
  if (count.value !== layout.functionTypes.length) throw new Uninstrumentable('code and function sections disagree');
  const out = new Writer();
  const imports = layout.functionImports ?? 0;
  const check: Checks =
    layout.checks === false
      ? { entry: [], loop: [], after: [], imports, regions: layout.regions }
      : {
          entry: interruptCheck(layout.armedGlobal, false),
          loop: interruptCheck(layout.armedGlobal, true),
          after: interruptCheck(layout.armedGlobal, true),
          imports,
          regions: layout.regions,
        };
  if (layout.fuelGlobal !== undefined) {
    const fuel = fuelCheck(layout.fuelGlobal);
    check.entry = [...check.entry, ...fuel];
    check.loop = [...check.loop, ...fuel];
  }
  out.leb(count.value + 1);
  for (let f = 0; f < count.value; f++) {
    const size = readLeb(section, pos);
    const start = size.next;
    const end = start + size.value;
    if (end > section.length) throw new Uninstrumentable('function body runs past its section');
    const params = layout.paramCounts[layout.functionTypes[f]!];
    if (params === undefined) throw new Uninstrumentable('function refers to an unknown type');
    const anchors: number[] = [];
    const body = instrumentBody(section.subarray(start, end), params, layout.baseGlobal, layout.markFunction, anchors, check);
    maps?.push(anchors.length === 0 ? undefined : anchors);
    out.leb(body.length);
    out.bytes(body);
    pos = end;
  }
  const mark = markBody(layout.baseGlobal);
  out.leb(mark.length);
  out.bytes(mark);
  return out.result();
}

function instrumentBody(
  body: Uint8Array,
  params: number,
  base: number,
  markFunction: number,
  anchors: number[],
  check: Checks,
): Uint8Array {
  let pos = 0;
  const groups = readLeb(body, pos);
  pos = groups.next;
  let locals = params;
  const localsStart = pos;
  for (let g = 0; g < groups.value; g++) {
    const n = readLeb(body, pos);
    const type = body[n.next];
    if (type === undefined || type === 0x63 || type === 0x64) throw new Uninstrumentable('typed references in locals');
    locals += n.value;
    pos = n.next + 1;
  }
  const localsEnd = pos;
  // Scratch locals appended after the function's own: three i32s, then one per value type.
  const A = locals;
  const B = locals + 1;
  const C = locals + 2;
  const scratch: Record<number, number> = { [I32]: B, [I64]: locals + 3, [F32]: locals + 4, [F64]: locals + 5, [V128]: locals + 6 };
  let usesV128 = false;

  const code = new Writer();
  let copied = pos;
  // Function entry: recursion without loops is interrupted here.
  code.bytes(check.entry);
  // Anchors in `code` (made relative to the new body at the end) → the original body.
  const codeAnchors: number[] = [];
  const copy = (from: number, to: number): void => {
    codeAnchors.push(code.length, from);
    code.bytes(body.subarray(from, to));
  };
  const flushTo = (at: number): void => {
    copy(copied, at);
  };
  const markStore = (instrStart: number, instrEnd: number, valueType: number, offset: number): void => {
    flushTo(instrStart);
    if (valueType === V128) usesV128 = true;
    const v = scratch[valueType]!;
    code.byte(LOCAL_SET);
    code.leb(v);
    code.byte(LOCAL_TEE);
    code.leb(A);
    code.byte(LOCAL_GET);
    code.leb(v);
    copy(instrStart, instrEnd);
    code.byte(LOCAL_GET);
    code.leb(A);
    if (offset !== 0) {
      code.byte(I32_CONST);
      code.sleb(offset);
      code.byte(I32_ADD);
    }
    code.bytes([I32_CONST, BLOCK_SHIFT, I32_SHR_U, GLOBAL_GET]);
    code.leb(base);
    code.bytes([I32_ADD, I32_CONST, 1, I32_STORE8, ...DIRTY_MEMARG]);
    copied = instrEnd;
  };
  // The mark goes first: a call can fail on entry (call stack exhausted), and a write must
  // never have happened without its mark. (Inline store marks involve no call.)
  const markBulk = (instrStart: number, instrEnd: number): void => {
    flushTo(instrStart);
    code.byte(LOCAL_SET);
    code.leb(C);
    code.byte(LOCAL_SET);
    code.leb(B);
    code.byte(LOCAL_TEE);
    code.leb(A);
    code.byte(LOCAL_GET);
    code.leb(C);
    code.byte(CALL);
    code.leb(markFunction);
    code.byte(LOCAL_GET);
    code.leb(A);
    code.byte(LOCAL_GET);
    code.leb(B);
    code.byte(LOCAL_GET);
    code.leb(C);
    copy(instrStart, instrEnd);
    code.bytes(check.after);
    copied = instrEnd;
  };
  /** The interruption check right after the instruction that ends at `pos`. */
  const checkAfter = (): void => {
    if (check.after.length === 0) return;
    flushTo(pos);
    code.bytes(check.after);
    copied = pos;
  };

  const leb = (): number => {
    const r = readLeb(body, pos);
    pos = r.next;
    return r.value;
  };
  const skipLeb = (): void => {
    while ((body[pos++]! & 0x80) !== 0) if (pos >= body.length) throw new Uninstrumentable('truncated immediate');
  };
  const memarg = (): number => {
    const flags = leb();
    if ((flags & 0x40) !== 0 && leb() !== 0) throw new Uninstrumentable('memory index other than 0');
    return leb();
  };
  const unsupported = (what: string): never => {
    throw new Uninstrumentable(what);
  };

  while (pos < body.length) {
    const at = pos;
    const op = body[pos++]!;
    if (op >= 0x45 && op <= 0xc4) continue;
    if (op >= 0x28 && op <= 0x35) {
      memarg();
      continue;
    }
    if (op >= 0x36 && op <= 0x3e) {
      const offset = memarg();
      markStore(at, pos, STORE_TYPES[op]!, offset);
      continue;
    }
    switch (op) {
      case 0x00: // unreachable
      case 0x01: // nop
      case 0x05: // else
      case 0x0b: // end
      case 0x0f: // return
      case 0x1a: // drop
      case 0x1b: // select
      case 0xd1: // ref.is_null
        break;
      case 0x02: // block
      case 0x04: // if
        if (body[pos] === 0x63 || body[pos] === 0x64) unsupported('typed-reference block type');
        skipLeb();
        break;
      case 0x03: // loop: a check at its head runs once per iteration
        if (body[pos] === 0x63 || body[pos] === 0x64) unsupported('typed-reference block type');
        skipLeb();
        flushTo(pos);
        code.bytes(check.loop);
        copied = pos;
        break;
      case 0x10: {
        // call: one of a host import is followed by a check; one of a region accessor is replaced by the access
        const callee = leb();
        const accessor = check.regions?.accessors.get(callee);
        if (accessor !== undefined) {
          flushTo(at);
          code.bytes(
            regionAccess(accessor, {
              callee,
              base,
              table: check.regions!.table,
              mark: markFunction,
              after: check.after,
              first: locals + 7,
              f32: scratch[F32]!,
              f64: scratch[F64]!,
            }),
          );
          copied = pos;
        } else if (callee < check.imports) checkAfter();
        break;
      }
      case 0x0c: // br
      case 0x0d: // br_if
      case 0x12: // return_call
      case 0x20: // local.get
      case 0x21: // local.set
      case 0x22: // local.tee
      case 0x23: // global.get
      case 0x24: // global.set
      case 0x25: // table.get
      case 0x3f: // memory.size
      case 0x40: // memory.grow
      case 0xd2: // ref.func
        skipLeb();
        break;
      case 0x0e: {
        // br_table
        for (let n = leb(); n > 0; n--) skipLeb();
        skipLeb();
        break;
      }
      case 0x11: // call_indirect: its table may hold host imports
        skipLeb();
        skipLeb();
        checkAfter();
        break;
      case 0x13: // return_call_indirect
        skipLeb();
        skipLeb();
        break;
      case 0x1c: {
        // select t*
        for (let n = leb(); n > 0; n--) {
          const t = body[pos++];
          if (t === 0x63 || t === 0x64) unsupported('typed-reference select');
        }
        break;
      }
      case 0x41: // i32.const
      case 0x42: // i64.const
        skipLeb();
        break;
      case 0x43:
        pos += 4;
        break;
      case 0x44:
        pos += 8;
        break;
      case 0xd0: // ref.null
        skipLeb();
        break;
      case 0x26:
        unsupported('table.set');
        break;
      case 0xfc: {
        const sub = leb();
        if (sub <= 7) break; // saturating truncations
        if (sub === 8) {
          skipLeb();
          skipLeb();
          markBulk(at, pos);
        } else if (sub === 10) {
          skipLeb();
          skipLeb();
          markBulk(at, pos);
        } else if (sub === 11) {
          skipLeb();
          markBulk(at, pos);
        } else if (sub === 16) {
          skipLeb(); // table.size
        } else {
          unsupported(`0xfc ${sub} (tables or dropped segments)`);
        }
        break;
      }
      case 0xfd: {
        const sub = leb();
        if (sub <= 10 || sub === 92 || sub === 93) memarg();
        else if (sub === 11) {
          const offset = memarg();
          markStore(at, pos, V128, offset);
        } else if (sub === 12 || sub === 13) pos += 16;
        else if (sub >= 21 && sub <= 34) pos += 1;
        else if (sub >= 84 && sub <= 87) {
          memarg();
          pos += 1;
        } else if (sub >= 88 && sub <= 91) {
          const offset = memarg();
          pos += 1;
          markStore(at, pos, V128, offset);
        }
        break;
      }
      default:
        unsupported(`opcode 0x${op.toString(16)}`);
    }
  }
  if (pos !== body.length) throw new Uninstrumentable('function body ends inside an instruction');
  flushTo(body.length);

  // Region accessors use five more i32s after the v128 scratch local, so a module with them always has that one.
  const regions = check.regions !== undefined;
  const out = new Writer();
  out.leb(groups.value + (regions ? 6 : usesV128 ? 5 : 4));
  out.bytes(body.subarray(localsStart, localsEnd));
  out.bytes([3, I32, 1, I64, 1, F32, 1, F64]);
  if (usesV128 || regions) out.bytes([1, V128]);
  if (regions) out.bytes([5, I32]);
  const header = out.length;
  out.bytes(code.result());
  for (let i = 0; i < codeAnchors.length; i += 2) anchors.push(header + codeAnchors[i]!, codeAnchors[i + 1]!);
  return out.result();
}

/** Where a region access finds what it needs: see {@link regionAccess}. */
interface RegionSite {
  /** The accessor's import: called with the access's operands when the check fails, to say why. */
  callee: number;
  /** The dirty-map base global (the slot table lies at `base + table` in memory 1). */
  base: number;
  table: number;
  /** The mark helper, called before `read_into` writes the guest's memory. */
  mark: number;
  /** The interruption check that follows a bulk copy. */
  after: number[];
  /** The first of five scratch i32 locals: the slot's table entry, the offset, two more operands, the slot. */
  first: number;
  /** The scratch locals that hold an f32 or f64 value to store. */
  f32: number;
  f64: number;
}

const REGION = 3;
/** memarg in memory 1 (the slot table), 4-byte aligned, at `offset`. */
const tableMemarg = (offset: number): number[] => [0x42, 0x01, ...writeLeb(offset)];
/** memarg in the region memory, alignment hint `align` (log2), offset 0. */
const regionMemarg = (align: number): number[] => [0x40 | align, REGION, 0x00];

/** Per accessor: the instruction on the region memory; its width is {@link REGION_ACCESS_BYTES} (its alignment hint log2 of it). */
const ACCESSORS: Record<string, { op: number[]; kind: 'get' | 'set' | 'rmw' | 'cas' }> = {
  get_f64: { op: [0x2b], kind: 'get' },
  get_f32: { op: [0x2a], kind: 'get' },
  get_i32: { op: [0x28], kind: 'get' },
  get_u8: { op: [0x2d], kind: 'get' },
  set_f64: { op: [0x39], kind: 'set' },
  set_f32: { op: [0x38], kind: 'set' },
  set_i32: { op: [0x36], kind: 'set' },
  set_u8: { op: [0x3a], kind: 'set' },
  atomic_add_i32: { op: [0xfe, 0x1e], kind: 'rmw' },
  compare_exchange_i32: { op: [0xfe, 0x48], kind: 'cas' },
};

/**
 * The code that replaces a call of a region accessor: the same operands on the stack, the same
 * result. The slot (masked to the table's 16 entries) names an entry of the instance's slot
 * table in memory 1 — the key's base and the address of its live size in the region memory —
 * and the access traps unless `off + width <= size`, computed in i64 so that no offset wraps:
 * the failing branch calls the accessor's own import with the same operands, whose host half
 * throws the error that says which region, offset and size (`unreachable` after it, should it
 * ever return). So a guest reaches only the bytes of keys it mapped, whatever offset it passes;
 * an empty slot reads size 0 and every access through it traps. Inline rather than a call of
 * an appended helper: V8 inlined such a helper in a measured loop (1 M f64 sums ran alike), but
 * whether it inlines depends on the caller's size.
 */
function regionAccess(name: string, site: RegionSite): number[] {
  const E = site.first;
  const OFF = E + 1;
  const X = E + 2;
  const Y = E + 3;
  const S = E + 4;
  const entry = [
    0x22,
    ...writeLeb(S),
    I32_CONST,
    15,
    0x71,
    I32_CONST,
    3,
    0x74,
    GLOBAL_GET,
    ...writeLeb(site.base),
    I32_ADD,
    LOCAL_SET,
    ...writeLeb(E),
  ];
  const sizeOf = [LOCAL_GET, ...writeLeb(E), 0x28, ...tableMemarg(site.table + 4)];
  const within = (width: number[], operands: number[]): number[] => [
    LOCAL_GET,
    ...writeLeb(OFF),
    0xad, // i64.extend_i32_u
    ...width,
    0x7c, // i64.add
    ...sizeOf,
    0x28,
    ...regionMemarg(2),
    0xad,
    0x56, // i64.gt_u
    0x04,
    0x40,
    LOCAL_GET,
    ...writeLeb(S),
    LOCAL_GET,
    ...writeLeb(OFF),
    ...operands.flatMap((local) => [LOCAL_GET, ...writeLeb(local)]),
    CALL,
    ...writeLeb(site.callee),
    0x00,
    0x0b,
  ];
  const address = [LOCAL_GET, ...writeLeb(E), 0x28, ...tableMemarg(site.table), LOCAL_GET, ...writeLeb(OFF), I32_ADD];
  const set = (local: number): number[] => [LOCAL_SET, ...writeLeb(local)];
  const get = (local: number): number[] => [LOCAL_GET, ...writeLeb(local)];
  if (name === 'size') return [...entry, ...sizeOf, 0xfe, 0x10, ...regionMemarg(2)];
  if (name === 'read_into' || name === 'write_from') {
    const head = [...set(Y), ...set(X), ...set(OFF), ...entry, ...within([...get(Y), 0xad], [X, Y])];
    // read_into writes the guest's memory: marked first, like any bulk write.
    if (name === 'read_into')
      return [
        ...head,
        ...get(X),
        ...get(Y),
        CALL,
        ...writeLeb(site.mark),
        ...get(X),
        ...address,
        ...get(Y),
        0xfc,
        10,
        0,
        REGION,
        ...site.after,
      ];
    return [...head, ...address, ...get(X), ...get(Y), 0xfc, 10, REGION, 0, ...site.after];
  }
  const a = ACCESSORS[name];
  const bytes = REGION_ACCESS_BYTES[name];
  if (a === undefined || bytes === undefined) throw new Uninstrumentable(`an unknown nuvola:region import '${name}'`);
  const width = [0x42, bytes];
  const op = [...a.op, ...regionMemarg(Math.log2(bytes))];
  switch (a.kind) {
    case 'get':
      return [...set(OFF), ...entry, ...within(width, []), ...address, ...op];
    case 'set': {
      const value = a.op[0] === 0x39 ? site.f64 : a.op[0] === 0x38 ? site.f32 : X;
      return [...set(value), ...set(OFF), ...entry, ...within(width, [value]), ...address, ...get(value), ...op];
    }
    case 'rmw':
      return [...set(X), ...set(OFF), ...entry, ...within(width, [X]), ...address, ...get(X), ...op];
    case 'cas':
      return [...set(Y), ...set(X), ...set(OFF), ...entry, ...within(width, [X, Y]), ...address, ...get(X), ...get(Y), ...op];
  }
}

/**
 * `(dest: i32, length: i32) -> ()`: marks every block of [dest, dest + length) with one
 * `memory.fill` into the dirty map; nothing for a zero length. It runs before the bulk write,
 * which may then trap for being out of bounds: the range is clamped to the memory's size, so
 * marks never reach past the instance's own slice.
 */
function markBody(base: number): Uint8Array {
  const I64_EXTEND_I32_U = 0xad;
  const I64_ADD = 0x7c;
  const I64_SUB = 0x7d;
  const I64_SHL = 0x86;
  const I64_SHR_U = 0x88;
  const I64_LT_U = 0x54;
  const I64_GE_U = 0x5a;
  const I64_CONST = 0x42;
  const I32_WRAP_I64 = 0xa7;
  const w = new Writer();
  // locals 2 (end) and 3 (limit), both i64
  w.bytes([1, 2, 0x7e]);
  // if (length == 0) return
  w.bytes([LOCAL_GET, 1, I32_EQZ, 0x04, 0x40, 0x0f, 0x0b]);
  // end = dest + length; limit = memory.size(0) << 16 (in i64: 65536 pages is 2^32 bytes)
  w.bytes([LOCAL_GET, 0, I64_EXTEND_I32_U, LOCAL_GET, 1, I64_EXTEND_I32_U, I64_ADD, LOCAL_SET, 2]);
  w.bytes([0x3f, 0x00, I64_EXTEND_I32_U, I64_CONST, 16, I64_SHL, LOCAL_SET, 3]);
  // end = min(end, limit)
  w.bytes([LOCAL_GET, 2, LOCAL_GET, 3, LOCAL_GET, 2, LOCAL_GET, 3, I64_LT_U, 0x1b, LOCAL_SET, 2]);
  // if (dest >= end) return
  w.bytes([LOCAL_GET, 0, I64_EXTEND_I32_U, LOCAL_GET, 2, I64_GE_U, 0x04, 0x40, 0x0f, 0x0b]);
  // dest: base + (d >>> 12)
  w.bytes([LOCAL_GET, 0, I32_CONST, BLOCK_SHIFT, I32_SHR_U, GLOBAL_GET]);
  w.leb(base);
  w.byte(I32_ADD);
  // value: 1
  w.bytes([I32_CONST, 1]);
  // length: ((end - 1) >>> 12) - (d >>> 12) + 1
  w.bytes([LOCAL_GET, 2, I64_CONST, 1, I64_SUB, I64_CONST, BLOCK_SHIFT, I64_SHR_U, I32_WRAP_I64]);
  w.bytes([LOCAL_GET, 0, I32_CONST, BLOCK_SHIFT, I32_SHR_U, I32_SUB, I32_CONST, 1, I32_ADD]);
  // memory.fill on memory 1
  w.bytes([0xfc, 11, 1]);
  w.byte(0x0b);
  return w.result();
}

export { Writer };
