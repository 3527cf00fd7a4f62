// Review suite for shared memory regions (issue 18): a guest that tries to reach the slot table
// (memory 1) or the region arena (memory 3) other than through the rewritten accessors — with
// memories of its own, an imported memory, wild store offsets, or an accessor reached through
// a table or an export.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { createRuntime, type NuvolaError, type Runtime } from 'nuvola';
import { prepareModule, SnapshotUnsupported } from '../runtime/snapshot/rewrite.js';
import { IMPORT_DIRTY, IMPORT_INTERRUPT, IMPORT_MEMORY, regionTableOffset, SNAPSHOT_MODULE } from '../runtime/snapshot/layout.js';
import { newInterrupt } from '../runtime/worker/interrupt.js';
import { StateStore } from '../dist/state/store.js';
import { MemoryTier } from '../dist/state/memory-tier.js';
import { RedisTier } from '../dist/state/redis-tier.js';
import { KeyState } from '../dist/state/key-state.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';

const MAP = '(import "nuvola:region" "map" (func $map (param i32 i32 i32) (result i32)))';
const GET_U8 = '(import "nuvola:region" "get_u8" (func $get_u8 (param i32 i32) (result i32)))';

function refusal(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a refusal');
}

async function failure(p: Promise<unknown>): Promise<NuvolaError> {
  try {
    await p;
  } catch (err) {
    return err as NuvolaError;
  }
  throw new Error('expected a failure');
}

describe('a guest with memories of its own', () => {
  // In the rewritten module memory 1 is the dirty map (with the slot table) and memory 3 the
  // region arena: a guest memory at those indices would alias them.
  const own = {
    'a second memory (index 1)': `(memory (export "memory") 1 1) (memory $m1 1 1)
      (func (export "main") (result i32) (i32.store $m1 (i32.const 32) (i32.const -1)) (i32.const 0))`,
    'four memories, storing to index 3': `(memory (export "memory") 1 1) (memory $m1 1 1) (memory $m2 1 1) (memory $m3 1 1)
      (func (export "main") (result i32) (i32.store $m3 (i32.const 0) (i32.const -1)) (i32.const 0))`,
    'an imported memory next to its own': `(import "env" "mem" (memory 1 1)) (memory (export "memory") 1 1)
      (func (export "main") (result i32) (i32.store 1 (i32.const 0) (i32.const -1)) (i32.const 0))`,
    'an imported memory only': `(import "env" "memory" (memory 1 1)) (export "memory" (memory 0))
      (func (export "main") (result i32) (i32.const 0))`,
    'memory.copy between its two memories': `(memory (export "memory") 1 1) (memory $m1 1 1)
      (func (export "main") (result i32) (memory.copy 0 1 (i32.const 0) (i32.const 0) (i32.const 64)) (i32.const 0))`,
  };
  for (const [what, body] of Object.entries(own)) {
    for (const regions of [true, false]) {
      it(`is refused by the rewrite: ${what}${regions ? ', importing nuvola:region' : ''}`, async () => {
        const bytes = await parse(`(module ${regions ? `${MAP} ${GET_U8}` : ''} ${body})`);
        // The module itself is valid: only the rewrite stands between it and nuvola's memories.
        expect(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)).toBe(true);
        const err = refusal(() => prepareModule(bytes));
        expect(err).toBeInstanceOf(SnapshotUnsupported);
        expect(err.message).toMatch(/more than one memory|imports other than functions|no memory section/);
      });
    }
  }

  let rt: Runtime | undefined;
  afterAll(() => rt?.close());
  it('is refused at register with E_INVALID_MODULE, and the runtime keeps serving', async () => {
    rt = await createRuntime({ workers: 1, logger: () => {} });
    for (const body of Object.values(own)) {
      const err = await failure(rt.register('own-memories', await parse(`(module ${MAP} ${GET_U8} ${body})`)));
      // An imported memory is not one of nuvola's imports: refused before the rewrite sees it.
      expect(['E_INVALID_MODULE', 'E_UNKNOWN_IMPORT']).toContain(err.code);
    }
    await rt.register('plain', await parse('(module (memory (export "memory") 1 1) (func (export "main") (result i32) (i32.const 7)))'));
    expect((await rt.invoke('plain')).returnCode).toBe(7);
  });
});

describe('stores with wild memarg offsets', () => {
  // Offsets near 2^32 wrap in i32 arithmetic; the store itself runs first and traps on its
  // 33-bit effective address, so its dirty mark (computed with the wrapping i32 add) only runs
  // for a store that landed, whose address is below the memory's size.
  const wat = `(module ${MAP} (memory (export "memory") 2 2)
    (func (export "s32_max") (param i32) (i32.store offset=0xfffffffc (local.get 0) (i32.const -1)))
    (func (export "s8_high") (param i32) (i32.store8 offset=0x80000000 (local.get 0) (i32.const -1)))
    (func (export "s64_edge") (param i32) (i64.store offset=0x1fff8 (local.get 0) (i64.const -1)))
    (func (export "v128_edge") (param i32) (v128.store offset=0x1fff0 (local.get 0) (v128.const i64x2 -1 -1)))
    (func (export "lane_far") (param i32) (v128.store8_lane offset=0xffffffff 0 (local.get 0) (v128.const i64x2 -1 -1)))
    (func (export "main") (result i32) (i32.const 0)))`;

  it('never mark outside the dirty blocks: the slot table after them stays as it was', async () => {
    const prepared = prepareModule(await parse(wat));
    expect(prepared.layout.regions).toBe(true);
    const dirtyMemory = new WebAssembly.Memory({ initial: 1 });
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 2 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes as Uint8Array<ArrayBuffer>), {
      'nuvola:region': { map: () => 0 },
      [SNAPSHOT_MODULE]: {
        [IMPORT_MEMORY]: memory,
        [IMPORT_DIRTY]: dirtyMemory,
        [IMPORT_INTERRUPT]: newInterrupt().memory,
        region: new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true }),
      },
    });
    const x = instance.exports as Record<string, (a: number) => void>;
    const dirty = new Uint8Array(dirtyMemory.buffer);
    const table = regionTableOffset(2);
    // Sentinel slot table and everything after it.
    dirty.fill(0x5a, table, 4096);
    const traps = (f: () => unknown): boolean => {
      try {
        f();
        return false;
      } catch (err) {
        if (!(err instanceof WebAssembly.RuntimeError)) throw err;
        return true;
      }
    };
    // Among them, addresses whose i32 sum with the offset wraps to 0x20000..0x2ffff: a mark
    // computed from the wrapped sum before the store would land on the slot table (block 32).
    const wild = [
      0, 4, 0x10, 0x1000, 0x1fff0, 0x20000, 0x20004, 0x20100, 0x7fffffff, 0x80000000, 0x80020000, 0x8002ff00, 0xfffffff0, 0xffffffff,
    ];
    for (const a of wild) {
      for (const name of ['s32_max', 's8_high', 'lane_far']) expect(traps(() => x[name]!(a | 0))).toBe(true);
    }
    expect(dirty.subarray(0, table).every((b) => b === 0)).toBe(true);
    // The last bytes of the memory: stored, and marked in the last block only.
    expect(traps(() => x.s64_edge!(0))).toBe(false);
    expect(traps(() => x.v128_edge!(0))).toBe(false);
    expect(traps(() => x.s64_edge!(1))).toBe(true);
    expect(traps(() => x.v128_edge!(1))).toBe(true);
    expect(dirty[table - 1]).toBe(1);
    expect(dirty.subarray(0, table - 1).every((b) => b === 0)).toBe(true);
    expect(dirty.subarray(table, 4096).every((b) => b === 0x5a)).toBe(true);
  });
});

describe('a region accessor reached other than by a direct call', () => {
  // The guest maps a key, then reaches get_u8 / set_u8 through call_indirect (a table), and through a
  // return_call: the rewrite replaces direct calls only, so each of these reaches the host's
  // import, which must trap.
  const wat = `(module ${MAP} ${GET_U8}
    (import "nuvola:region" "set_u8" (func $set_u8 (param i32 i32 i32)))
    (memory (export "memory") 1 1)
    (data (i32.const 16) "review-k")
    (type $get (func (param i32 i32) (result i32)))
    (type $set (func (param i32 i32 i32)))
    (table $t 2 funcref)
    (elem (table $t) (i32.const 0) func $get_u8 $set_u8)
    (export "acc" (func $get_u8))
    (func $tail (param i32 i32) (result i32) (return_call $get_u8 (local.get 0) (local.get 1)))
    (func (export "main") (result i32) (local $s i32) (local $mode i32)
      (local.set $s (call $map (i32.const 16) (i32.const 8) (i32.const 64)))
      (local.set $mode (i32.load8_u (i32.const 0)))
      (if (i32.eq (local.get $mode) (i32.const 1))
        (then (return (call_indirect $t (type $get) (local.get $s) (i32.const 100000) (i32.const 0)))))
      (if (i32.eq (local.get $mode) (i32.const 2))
        (then (call_indirect $t (type $set) (local.get $s) (i32.const 100000) (i32.const 9) (i32.const 1)) (return (i32.const 0))))
      (if (i32.eq (local.get $mode) (i32.const 3))
        (then (return (call $tail (local.get $s) (i32.const 100000)))))
      (i32.const 42)))`;

  let rt: Runtime | undefined;
  afterAll(() => rt?.close());
  it('traps as E_GUEST_TRAP and never touches the arena; the function keeps serving', async () => {
    rt = await createRuntime({ workers: 1, logger: () => {} });
    await rt.register('indirect', await parse(wat));
    for (const mode of [1, 2, 3]) {
      // The mode is the byte at 0 of the guest's memory: one registration per mode.
      const name = `indirect-${mode}`;
      await rt.register(name, await parse(wat.replace('(data (i32.const 16)', `(data (i32.const 0) "\\0${mode}") (data (i32.const 16)`)));
      const err = await failure(rt.invoke(name));
      expect(err.code).toBe('E_GUEST_TRAP');
      // The host half of the accessor refuses it: through a table, or past the key's end (this
      // guest's offsets are past it), never an access.
      expect(err.message).toMatch(/region accessors work only when called directly|past its end/);
    }
    expect((await rt.invoke('indirect')).returnCode).toBe(42);
    // Nothing was written past the key's 64 bytes, nor inside them.
    const view = await rt.state.read('review-k');
    expect(view!.byteLength).toBe(64);
    expect(view!.every((b) => b === 0)).toBe(true);
  });
});

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

describe.each([
  { tier: 'memory', global: () => new MemoryTier() },
  { tier: 'redis', global: () => new RedisTier(redis.url, () => {}) },
])('pull over a mapped key on the $tier tier', ({ tier, global }) => {
  const k = (name: string) => `${tier}-review-${name}`;

  it('a global value larger than the block is E_STATE_MAPPED; a smaller one shrinks the size guests read', async () => {
    const tierOf = global();
    if (tierOf instanceof RedisTier) expect(await tierOf.connected(5000)).toBe(true);
    const store = new StateStore(tierOf, { leaseMs: 1000 });
    try {
      const g = await store.mapRegion(k('m'), 64);
      const neighbour = await store.mapRegion(k('n'), 64);
      const state = new KeyState(g.handle);
      expect(state.addMap()).toBe(true);
      const arena = store.regionMemory().buffer;
      const size = () => new Int32Array(arena, g.sizeAddr, 1)[0];
      new Uint8Array(arena, g.base, 64).fill(0x11);
      new Uint8Array(arena, neighbour.base, 64).fill(0x22);

      await store.global.write(k('m'), [{ offset: 0, data: new Uint8Array(8192).fill(0x99) }], 8192);
      expect((await failure(store.pull(k('m'), undefined))).code).toBe('E_STATE_MAPPED');
      // Nothing moved and nothing spilled: the key, its size word and the next block are as they were.
      expect(state.retired).toBe(false);
      expect(size()).toBe(64);
      expect(new Uint8Array(arena, g.base, 64).every((b) => b === 0x11)).toBe(true);
      expect(new Uint8Array(arena, neighbour.base, 64).every((b) => b === 0x22)).toBe(true);

      await store.global.write(k('m'), [{ offset: 0, data: new Uint8Array(16).fill(0x33) }], 16);
      await store.pull(k('m'), undefined);
      expect(state.retired).toBe(false);
      expect(size()).toBe(16);
      expect(new Uint8Array(arena, g.base, 16).every((b) => b === 0x33)).toBe(true);

      // Unmapped, the large value moves the key out of its block.
      state.dropMap();
      await store.global.write(k('m'), [{ offset: 0, data: new Uint8Array(8192).fill(0x99) }], 8192);
      await store.pull(k('m'), undefined);
      expect(state.retired).toBe(true);
      expect(new Uint8Array(arena, neighbour.base, 64).every((b) => b === 0x22)).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('a mapped key shrunk or the arena filled, end to end', () => {
  /** A guest mapping `key` at `size` bytes and returning the byte at `offset` (a region accessor). */
  const guest = (key: string, size: number, offset: number) =>
    parse(`(module ${MAP} ${GET_U8} (memory (export "memory") 1 1) (data (i32.const 16) "${key}")
      (func (export "main") (result i32)
        (call $get_u8 (call $map (i32.const 16) (i32.const ${key.length}) (i32.const ${size})) (i32.const ${offset}))))`);

  let rt: Runtime | undefined;
  afterAll(() => rt?.close());

  it('a host write that shrinks the key makes a guest read past the new size trap', async () => {
    rt = await createRuntime({ workers: 1, logger: () => {} });
    await rt.state.write('review-s', new Uint8Array(64).fill(7));
    await rt.register('read20', await guest('review-s', 1, 20));
    expect((await rt.invoke('read20')).returnCode).toBe(7);
    await rt.state.write('review-s', new Uint8Array(16).fill(8));
    expect((await failure(rt.invoke('read20'))).code).toBe('E_GUEST_TRAP');
    await rt.register('read15', await guest('review-s', 1, 15));
    expect((await rt.invoke('read15')).returnCode).toBe(8);
    await rt.close();
    rt = undefined;
  });

  it('one function filling the arena gets a coded limit error; others keep serving', async () => {
    rt = await createRuntime({ workers: 1, logger: () => {}, regionBytes: 4 * 65536 });
    await rt.register('hog', await guest('review-hog', 3 * 65536, 0));
    expect((await rt.invoke('hog')).returnCode).toBe(0);
    await rt.register('hog2', await guest('review-hog2', 2 * 65536, 0));
    const full = await failure(rt.invoke('hog2'));
    expect(full.code).toBe('E_STATE_QUOTA');
    expect(full.message).toContain('regionBytes');
    await rt.register('small', await guest('review-small', 1000, 999));
    expect((await rt.invoke('small')).returnCode).toBe(0);
    await rt.state.delete('review-hog');
    expect((await rt.invoke('hog2')).returnCode).toBe(0);
  });
});
