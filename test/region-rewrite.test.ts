// Unit suite: the rewrite of nuvola:region accessors into bounds-checked accesses on the region
// memory, driven directly on this thread with a hand-made slot table and region memory, so that
// every offset a guest could pass can be tried against known bytes.
import { describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { prepareModule, SnapshotUnsupported } from '../runtime/snapshot/rewrite.js';
import {
  IMPORT_DIRTY,
  IMPORT_INTERRUPT,
  IMPORT_MEMORY,
  IMPORT_REGION,
  regionTableOffset,
  SNAPSHOT_MODULE,
} from '../runtime/snapshot/layout.js';
import { newInterrupt } from '../runtime/worker/interrupt.js';

const ACCESSORS = `
  (import "nuvola:region" "map" (func $map (param i32 i32 i32) (result i32)))
  (import "nuvola:region" "size" (func $size (param i32) (result i32)))
  (import "nuvola:region" "get_u8" (func $get_u8 (param i32 i32) (result i32)))
  (import "nuvola:region" "get_i32" (func $get_i32 (param i32 i32) (result i32)))
  (import "nuvola:region" "get_f64" (func $get_f64 (param i32 i32) (result f64)))
  (import "nuvola:region" "get_f32" (func $get_f32 (param i32 i32) (result f32)))
  (import "nuvola:region" "set_u8" (func $set_u8 (param i32 i32 i32)))
  (import "nuvola:region" "set_i32" (func $set_i32 (param i32 i32 i32)))
  (import "nuvola:region" "set_f64" (func $set_f64 (param i32 i32 f64)))
  (import "nuvola:region" "set_f32" (func $set_f32 (param i32 i32 f32)))
  (import "nuvola:region" "atomic_add_i32" (func $add (param i32 i32 i32) (result i32)))
  (import "nuvola:region" "compare_exchange_i32" (func $cas (param i32 i32 i32 i32) (result i32)))
  (import "nuvola:region" "read_into" (func $read_into (param i32 i32 i32 i32)))
  (import "nuvola:region" "write_from" (func $write_from (param i32 i32 i32 i32)))`;

const wat = (extra = '') => `(module ${ACCESSORS}
  (memory (export "memory") 2 2)
  (func (export "size") (param i32) (result i32) (call $size (local.get 0)))
  (func (export "get_u8") (param i32 i32) (result i32) (call $get_u8 (local.get 0) (local.get 1)))
  (func (export "get_i32") (param i32 i32) (result i32) (call $get_i32 (local.get 0) (local.get 1)))
  (func (export "get_f64") (param i32 i32) (result f64) (call $get_f64 (local.get 0) (local.get 1)))
  (func (export "get_f32") (param i32 i32) (result f32) (call $get_f32 (local.get 0) (local.get 1)))
  (func (export "set_u8") (param i32 i32 i32) (call $set_u8 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "set_i32") (param i32 i32 i32) (call $set_i32 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "set_f64") (param i32 i32 f64) (call $set_f64 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "set_f32") (param i32 i32 f32) (call $set_f32 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "add") (param i32 i32 i32) (result i32) (call $add (local.get 0) (local.get 1) (local.get 2)))
  (func (export "cas") (param i32 i32 i32 i32) (result i32) (call $cas (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "read_into") (param i32 i32 i32 i32) (call $read_into (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "write_from") (param i32 i32 i32 i32) (call $write_from (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  ${extra}
  (func (export "main") (result i32) (i32.const 0)))`;

type Fn = (...args: number[]) => number;

/** Two keys in a region memory: A (100 bytes of 0xA0+) at 1024, B (100 bytes of 0xB0) right after its capacity. */
async function setUp(): Promise<{
  x: Record<string, Fn>;
  region: Uint8Array;
  sizes: Int32Array;
  dirty: Uint8Array;
  guest: Uint8Array;
  setSlot: (slot: number, base: number, sizeAddr: number) => void;
}> {
  const prepared = prepareModule(await parse(wat()));
  expect(prepared.layout.regions).toBe(true);
  expect(prepared.layout.tracked).toBe(true);
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2 });
  const dirtyMemory = new WebAssembly.Memory({ initial: 1 });
  const regionMemory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  // The rewritten code calls an accessor's import only when its check fails, with the access's
  // operands: the host half then throws the error that says why.
  const trap =
    (name: string) =>
    (...args: number[]): never => {
      throw new HostReached(name, args);
    };
  const stubs = Object.fromEntries(
    [
      'map',
      'size',
      'get_u8',
      'get_i32',
      'get_f64',
      'get_f32',
      'set_u8',
      'set_i32',
      'set_f64',
      'set_f32',
      'atomic_add_i32',
      'compare_exchange_i32',
      'read_into',
      'write_from',
    ].map((n) => [n, trap(n)]),
  );
  const instance = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes as Uint8Array<ArrayBuffer>), {
    'nuvola:region': stubs,
    [SNAPSHOT_MODULE]: {
      [IMPORT_MEMORY]: memory,
      [IMPORT_DIRTY]: dirtyMemory,
      [IMPORT_INTERRUPT]: newInterrupt().memory,
      [IMPORT_REGION]: regionMemory,
    },
  });
  const region = new Uint8Array(regionMemory.buffer);
  const sizes = new Int32Array(regionMemory.buffer);
  // Key A: size word at 1008, data at 1024 (capacity 128); key B: size word at 1152, data at 1168.
  for (let i = 0; i < 128; i++) region[1024 + i] = 0xa0 + (i % 16);
  region.fill(0xb0, 1168, 1168 + 128);
  sizes[1008 / 4] = 100;
  sizes[1152 / 4] = 100;
  const table = regionTableOffset(2); // the dirty-map base global starts at 0
  const setSlot = (slot: number, base: number, sizeAddr: number) => {
    const w = new Int32Array(dirtyMemory.buffer, table, 32);
    w[slot * 2] = base;
    w[slot * 2 + 1] = sizeAddr;
  };
  setSlot(0, 1024, 1008);
  return {
    x: instance.exports as unknown as Record<string, Fn>,
    region,
    sizes,
    dirty: new Uint8Array(dirtyMemory.buffer),
    guest: new Uint8Array(memory.buffer),
    setSlot,
  };
}

/** What the stub of an accessor's import throws: the rewritten code called it, its check having failed. */
class HostReached extends Error {
  constructor(
    readonly accessor: string,
    readonly operands: number[],
  ) {
    super(`${accessor}(${operands.join(', ')}) reached the host`);
  }
}

/** Whether `f` failed without touching the region: a trap, or the failed check's call of the accessor's import. */
const traps = (f: () => unknown): boolean => {
  try {
    f();
    return false;
  } catch (err) {
    if (!(err instanceof WebAssembly.RuntimeError) && !(err instanceof HostReached)) throw err;
    return true;
  }
};

describe('region accessors after the rewrite', () => {
  it('read a granted key within its live size and trap at every offset past it, however wild', async () => {
    const { x } = await setUp();
    expect(x.size!(0)).toBe(100);
    for (let off = 0; off < 100; off++) expect(x.get_u8!(0, off)).toBe(0xa0 + (off % 16));
    // Every offset from the end to far past the block (B's bytes lie right after A's capacity), and wild ones.
    const wild = [100, 101, 127, 128, 143, 144, 1000, 0x7fffffff, -1, -2, -100, -1024, 0x80000000 | 0, 0xfffffffc | 0];
    for (let off = 100; off < 4096; off++)
      expect(
        traps(() => x.get_u8!(0, off)),
        `offset ${off}`,
      ).toBe(true);
    for (const off of wild) {
      for (const f of ['get_u8', 'get_i32', 'get_f64', 'get_f32'])
        expect(
          traps(() => x[f]!(0, off)),
          `${f} at ${off}`,
        ).toBe(true);
    }
    // A wide access that would end past the size traps even though it starts inside: no wrap either.
    expect(traps(() => x.get_f64!(0, 93))).toBe(true);
    expect(x.get_f64!(0, 92)).toBeTypeOf('number');
    expect(traps(() => x.get_f64!(0, 0xfffffff9 | 0))).toBe(true);
    expect(traps(() => x.get_i32!(0, 97))).toBe(true);
  });

  it('traps through an empty slot, and a slot number is taken modulo the table', async () => {
    const { x, setSlot } = await setUp();
    for (let slot = 1; slot < 16; slot++)
      expect(
        traps(() => x.get_u8!(slot, 0)),
        `slot ${slot}`,
      ).toBe(true);
    expect(x.size!(5)).toBe(0);
    expect(x.get_u8!(16, 3)).toBe(0xa3);
    expect(traps(() => x.get_u8!(-1, 0))).toBe(true);
    setSlot(0, 0, 0);
    expect(traps(() => x.get_u8!(0, 0))).toBe(true);
  });

  it('follows the live size: a shrink traps where it now ends, a growth reads the new bytes', async () => {
    const { x, sizes } = await setUp();
    sizes[1008 / 4] = 10;
    expect(x.size!(0)).toBe(10);
    expect(traps(() => x.get_u8!(0, 10))).toBe(true);
    sizes[1008 / 4] = 128;
    expect(x.get_u8!(0, 127)).toBe(0xaf);
  });

  it('stores only inside the key: B is untouched by any wild store through A', async () => {
    const { x, region } = await setUp();
    x.set_u8!(0, 99, 0x1ff);
    x.set_i32!(0, 0, -2);
    x.set_f64!(0, 8, 2.5);
    x.set_f32!(0, 16, 1.25);
    expect(region[1024 + 99]).toBe(0xff);
    expect(x.get_i32!(0, 0)).toBe(-2);
    expect(x.get_f64!(0, 8)).toBe(2.5);
    expect(x.get_f32!(0, 16)).toBe(1.25);
    for (const off of [100, 128, 144, -1, -144, 0x7fffffff, 0xfffffffd | 0]) {
      expect(traps(() => x.set_u8!(0, off, 1))).toBe(true);
      expect(traps(() => x.set_i32!(0, off, 1))).toBe(true);
      expect(traps(() => x.set_f64!(0, off, 1))).toBe(true);
      expect(traps(() => x.add!(0, off & ~3, 1))).toBe(true);
    }
    expect(region.subarray(1168, 1168 + 128).every((b) => b === 0xb0)).toBe(true);
    expect(region.subarray(1124, 1152).every((b, i) => b === 0xa0 + ((100 + i) % 16))).toBe(true);
  });

  it("a failed check calls the accessor's import with the access's operands, so its host half can say why", async () => {
    const { x, region } = await setUp();
    const reached = (f: () => unknown): HostReached => {
      try {
        f();
      } catch (err) {
        if (err instanceof HostReached) return err;
        throw err;
      }
      throw new Error('the access did not fail');
    };
    const set = reached(() => x.set_i32!(16 + 3, 200, 7));
    expect([set.accessor, ...set.operands]).toEqual(['set_i32', 19, 200, 7]);
    const get = reached(() => x.get_f64!(0, 93));
    expect([get.accessor, ...get.operands]).toEqual(['get_f64', 0, 93]);
    const cas = reached(() => x.cas!(0, 100, 1, 2));
    expect([cas.accessor, ...cas.operands]).toEqual(['compare_exchange_i32', 0, 100, 1, 2]);
    const copy = reached(() => x.read_into!(0, 90, 70000, 20));
    expect([copy.accessor, ...copy.operands]).toEqual(['read_into', 0, 90, 70000, 20]);
    // Nothing was written: A's bytes past 100 are as set up.
    expect(region[1024 + 100]).toBe(0xa0 + (100 % 16));
  });

  it('adds and compare-exchanges atomically, returning the old value; an unaligned offset traps', async () => {
    const { x } = await setUp();
    x.set_i32!(0, 4, 40);
    expect(x.add!(0, 4, 2)).toBe(40);
    expect(x.get_i32!(0, 4)).toBe(42);
    expect(x.cas!(0, 4, 41, 7)).toBe(42);
    expect(x.get_i32!(0, 4)).toBe(42);
    expect(x.cas!(0, 4, 42, 7)).toBe(42);
    expect(x.get_i32!(0, 4)).toBe(7);
    expect(traps(() => x.add!(0, 6, 1))).toBe(true);
    expect(traps(() => x.cas!(0, 2, 0, 1))).toBe(true);
    expect(traps(() => x.add!(0, 96 + 4, 1))).toBe(true);
  });

  it('copies in bulk within the key, marks the guest memory it writes, and traps on a range past the end', async () => {
    const { x, region, guest, dirty } = await setUp();
    x.read_into!(0, 10, 70000, 90);
    expect([...guest.subarray(70000, 70090)]).toEqual([...region.subarray(1034, 1124)]);
    expect(dirty[70000 >>> 12]).toBe(1);
    expect(traps(() => x.read_into!(0, 11, 0, 90))).toBe(true);
    expect(traps(() => x.read_into!(0, 0, 0, -1))).toBe(true);
    expect(traps(() => x.read_into!(0, -1, 0, 2))).toBe(true);
    guest.fill(7, 0, 100);
    x.write_from!(0, 0, 0, 100);
    expect(region.subarray(1024, 1124).every((b) => b === 7)).toBe(true);
    expect(traps(() => x.write_from!(0, 1, 0, 100))).toBe(true);
    expect(region.subarray(1168, 1168 + 128).every((b) => b === 0xb0)).toBe(true);
  });

  it('refuses a module importing nuvola:region whose code it cannot follow', async () => {
    const atomics = '(func (export "other") (result i32) (i32.atomic.load (i32.const 0)))';
    let error: unknown;
    try {
      prepareModule(await parse(wat(atomics)));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SnapshotUnsupported);
    expect((error as Error).message).toMatch(/nuvola:region.*0xfe/);
  });
});
