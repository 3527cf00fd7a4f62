// The state layer of shared memory regions (issue 18): the region arena, keys living in it,
// map counts and the rules while a key is mapped — the store directly (it is a library), with
// real worker threads that import the arena memory and count maps as guests' workers do, and
// the host view through a real runtime. Against both global tiers: in-process and a real Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { createRuntime, type NuvolaError, type Runtime } from 'nuvola';
import { StateStore } from '../dist/state/store.js';
import { MemoryTier } from '../dist/state/memory-tier.js';
import { RedisTier } from '../dist/state/redis-tier.js';
import { KeyState } from '../dist/state/key-state.js';
import { StateClient } from '../dist/state/client.js';
import { RegionArena, BLOCK_ALIGN, PAGE_BYTES } from '../dist/state/region-arena.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

const tiers = [
  { tier: 'memory', global: () => new MemoryTier(), options: () => ({}) },
  { tier: 'redis', global: () => new RedisTier(redis.url, () => {}), options: () => ({ redis: redis.url }) },
];

async function failure(p: Promise<unknown>): Promise<NuvolaError> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: NuvolaError) => e,
  );
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

const KEY_STATE = new URL('../dist/state/key-state.js', import.meta.url).href;

/**
 * A worker thread that maps keys as a guest's worker does: it imports the arena memory (as
 * instances will), counts maps on the handle under its own holder number, and loads and
 * stores at `base + off` of the arena, reading the live size at `sizeAddr`.
 */
class Mapper {
  private readonly worker: Worker;
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(memory: WebAssembly.Memory, holder: number) {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.keyState).then(({ KeyState, setLockHolder }) => {
        setLockHolder(workerData.holder);
        const memory = workerData.memory;
        const states = [];
        let hammer;
        parentPort.on('message', ({ id, op, a }) => {
          let value;
          try {
            const u8 = new Uint8Array(memory.buffer);
            if (op === 'map') {
              const s = new KeyState(a.handle);
              value = { ok: s.addMap(), index: states.push(s) - 1 };
            } else if (op === 'drop') states[a.index].dropMap();
            else if (op === 'maps') value = states[a.index].maps();
            else if (op === 'size') value = Atomics.load(new Int32Array(memory.buffer, a.sizeAddr, 1), 0);
            else if (op === 'load') value = Array.from(u8.subarray(a.base + a.off, a.base + a.off + a.len));
            else if (op === 'store') u8.set(a.data, a.base + a.off);
            else if (op === 'add') value = Atomics.add(new Int32Array(memory.buffer, a.base, 1), 0, a.v);
            else if (op === 'hammer') {
              // Maps and drops the key over and over, checking the bytes while a map is counted.
              hammer = { state: new KeyState(a.handle), base: a.base, len: a.len, expect: a.expect, maps: 0, violations: 0, stop: false };
              const tick = () => {
                if (hammer.stop) return;
                const bytes = new Uint8Array(memory.buffer);
                for (let i = 0; i < 100; i++) {
                  const { state, base } = hammer;
                  if (!state.addMap()) continue;
                  hammer.maps++;
                  for (let j = 0; j < hammer.len; j += 61) if (bytes[base + j] !== hammer.expect) hammer.violations++;
                  // A counted map pins the block: it is never retired under it.
                  if (state.retired) hammer.violations++;
                  state.dropMap();
                }
                setImmediate(tick);
              };
              tick();
            } else if (op === 'rehammer') {
              hammer.state = new KeyState(a.handle);
              hammer.base = a.base;
            } else if (op === 'unhammer') {
              hammer.stop = true;
              value = { maps: hammer.maps, violations: hammer.violations };
            }
            parentPort.postMessage({ id, value });
          } catch (e) {
            parentPort.postMessage({ id, error: String(e) });
          }
        });
        parentPort.postMessage({ id: -1 });
      });`;
    this.worker = new Worker(code, { eval: true, workerData: { keyState: KEY_STATE, holder, memory } });
    this.worker.on('message', (m: { id: number; value?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.value);
    });
  }

  ready(): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiting.set(-1, { resolve, reject }));
  }

  ask<T>(op: string, a: object): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, a });
    });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

async function mapper(store: StateStore, holder: number): Promise<Mapper> {
  const m = new Mapper(store.regionMemory(), holder);
  await m.ready();
  return m;
}

describe('the region arena', () => {
  it('places 64-byte aligned blocks above its first line, grows its memory, reuses freed blocks zeroed', () => {
    const arena = new RegionArena(4 * PAGE_BYTES);
    expect(arena.memory.buffer.byteLength).toBe(PAGE_BYTES);
    const a = arena.place(100)!;
    expect(a.base % BLOCK_ALIGN).toBe(0);
    expect(a.sizeAddr).toBeGreaterThanOrEqual(BLOCK_ALIGN);
    expect(a.base - a.sizeAddr).toBe(BLOCK_ALIGN);
    expect(a.capacity).toBe(128);
    const big = arena.place(2 * PAGE_BYTES)!;
    expect(big.base).toBeGreaterThanOrEqual(a.base + a.capacity);
    expect(arena.memory.buffer.byteLength).toBeGreaterThanOrEqual(big.base + big.capacity);
    new Uint8Array(arena.buffer, a.sizeAddr, a.capacity + BLOCK_ALIGN).fill(0xee);
    arena.release(a);
    const again = arena.place(64)!;
    expect(again.sizeAddr).toBe(a.sizeAddr);
    expect([...new Uint8Array(arena.buffer, again.sizeAddr, again.capacity + BLOCK_ALIGN)].every((b) => b === 0)).toBe(true);
    // The first line is never given out and stays zero (an empty slot reads its size there).
    expect([...new Uint8Array(arena.buffer, 0, BLOCK_ALIGN)].every((b) => b === 0)).toBe(true);
  });

  it('says undefined when full, and takes freed neighbours back as one run', () => {
    const arena = new RegionArena(2 * PAGE_BYTES);
    const blocks = [
      arena.place(PAGE_BYTES / 2 - BLOCK_ALIGN)!,
      arena.place(PAGE_BYTES / 2 - BLOCK_ALIGN)!,
      arena.place(PAGE_BYTES / 2 - BLOCK_ALIGN)!,
    ];
    expect(arena.place(PAGE_BYTES)).toBeUndefined();
    arena.release(blocks[0]!);
    arena.release(blocks[1]!);
    // Two freed neighbours hold one block of both their sizes.
    const merged = arena.place(PAGE_BYTES - 2 * BLOCK_ALIGN);
    expect(merged?.sizeAddr).toBe(blocks[0]!.sizeAddr);
    expect(arena.used).toBe(PAGE_BYTES / 2 + PAGE_BYTES - BLOCK_ALIGN);
  });

  it('refuses a maximum under one page or over 4 GiB − 64 KiB', () => {
    expect(() => new RegionArena(1000)).toThrow(/region arena must be/);
    expect(() => new RegionArena(4 * 1024 ** 3)).toThrow(/region arena must be/);
  });
});

describe.each(tiers)('regions in the store on the $tier tier', ({ tier, global }) => {
  let store: StateStore;
  const k = (name: string) => `${tier}-region-${name}`;
  const mappers: Mapper[] = [];

  beforeAll(async () => {
    const tierOf = global();
    if (tierOf instanceof RedisTier) expect(await tierOf.connected(5000)).toBe(true);
    store = new StateStore(tierOf, { leaseMs: 1000 });
  });
  afterAll(async () => {
    await Promise.all(mappers.map((m) => m.stop()));
    await store.close();
  });

  async function worker(holder: number): Promise<Mapper> {
    const m = await mapper(store, holder);
    mappers.push(m);
    return m;
  }

  it('creates an absent key zero-filled in the arena, its live size at sizeAddr', async () => {
    const g = await store.mapRegion(k('fresh'), 1000);
    expect(g.size).toBe(1000);
    expect(g.capacity).toBeGreaterThanOrEqual(1000);
    const arena = store.regionMemory().buffer;
    expect(new Int32Array(arena, g.sizeAddr, 1)[0]).toBe(1000);
    expect([...new Uint8Array(arena, g.base, 1000)].every((b) => b === 0)).toBe(true);
    const state = new KeyState(g.handle);
    expect(state.inArena).toBe(true);
    // The key's local bytes are the arena's.
    state.bytes[5] = 42;
    expect(new Uint8Array(arena)[g.base + 5]).toBe(42);
    expect([...(await readAll(store, k('fresh')))].slice(0, 6)).toEqual([0, 0, 0, 0, 0, 42]);
  });

  it('moves a local key in with its bytes; the old allocation is retired', async () => {
    const value = bytes(3000, 7);
    await writeWhole(store, k('moved'), value);
    const old = new KeyState((await store.lookup(k('moved')))!);
    expect(old.inArena).toBe(false);
    const g = await store.mapRegion(k('moved'), 10);
    expect(old.retired).toBe(true);
    expect(g.size).toBe(3000);
    expect([...new Uint8Array(store.regionMemory().buffer, g.base, 3000)]).toEqual([...value]);
  });

  it('moves a key only the global tier has in, every chunk pulled', async () => {
    const value = bytes(200 * 1024, 3);
    await store.global.write(k('global'), [{ offset: 0, data: value }], value.byteLength);
    expect(store.holds(k('global'))).toBe(false);
    const g = await store.mapRegion(k('global'), 16);
    expect(g.size).toBe(value.byteLength);
    const state = new KeyState(g.handle);
    expect(state.isPresent({ offset: 0, length: g.size })).toBe(true);
    expect(Buffer.compare(Buffer.from(store.regionMemory().buffer, g.base, g.size), Buffer.from(value))).toBe(0);
  });

  it('a worker importing the arena sees the main thread’s writes and the main thread its stores', async () => {
    const g = await store.mapRegion(k('shared'), 64);
    const w = await worker(2);
    const m = await w.ask<{ ok: boolean; index: number }>('map', { handle: g.handle });
    expect(m.ok).toBe(true);
    const state = new KeyState(g.handle);
    expect(state.maps()).toBe(1);
    await writeAt(store, k('shared'), 8, Uint8Array.of(1, 2, 3));
    expect(await w.ask('load', { base: g.base, off: 8, len: 3 })).toEqual([1, 2, 3]);
    await w.ask('store', { base: g.base, off: 20, data: Uint8Array.of(9, 8) });
    expect([...(await readAll(store, k('shared')))].slice(20, 22)).toEqual([9, 8]);
    // Atomics from both threads on the same word count exactly.
    await Promise.all(Array.from({ length: 100 }, () => w.ask('add', { base: g.base, v: 1 })));
    for (let i = 0; i < 100; i++) Atomics.add(new Int32Array(store.regionMemory().buffer, g.base, 1), 0, 1);
    expect(new DataView(store.regionMemory().buffer).getInt32(g.base, true)).toBe(200);
    await w.ask('drop', { index: m.index });
    expect(state.maps()).toBe(0);
  });

  it('grows in place while another holder maps, and the worker sees the new size; refuses to relocate then', async () => {
    const g = await store.mapRegion(k('grow'), 100);
    const w = await worker(3);
    const m = await w.ask<{ ok: boolean; index: number }>('map', { handle: g.handle });
    expect(m.ok).toBe(true);
    const inPlace = await store.mapRegion(k('grow'), g.capacity, undefined, 0);
    expect(inPlace.base).toBe(g.base);
    expect(await w.ask('size', { sizeAddr: g.sizeAddr })).toBe(g.capacity);
    const refused = await failure(store.mapRegion(k('grow'), g.capacity + 1, undefined, 0));
    expect(refused.code).toBe('E_STATE_MAPPED');
    expect(refused.message).toContain('mapped in place by 1 call');
    // A plain write that does not fit is refused too; one that fits lands in place.
    expect((await failure(writeWhole(store, k('grow'), bytes(g.capacity + 1, 0)))).code).toBe('E_STATE_MAPPED');
    await writeWhole(store, k('grow'), bytes(50, 1));
    expect(await w.ask('size', { sizeAddr: g.sizeAddr })).toBe(50);
    expect(await w.ask('load', { base: g.base, off: 0, len: 4 })).toEqual([...bytes(4, 1)]);
    await w.ask('drop', { index: m.index });
    const moved = await store.mapRegion(k('grow'), g.capacity + 1, undefined, 0);
    expect(moved.base).not.toBe(g.base);
    expect([...new Uint8Array(store.regionMemory().buffer, moved.base, 4)]).toEqual([...bytes(4, 1)]);
  });

  it('relocates when the only maps are the caller’s own, and carries them to the new allocation', async () => {
    const g = await store.mapRegion(k('own'), 64);
    const mine = new KeyState(g.handle);
    expect(mine.addMap()).toBe(true);
    expect(mine.addMap()).toBe(true);
    expect((await failure(store.mapRegion(k('own'), 10_000, undefined, 1))).code).toBe('E_STATE_MAPPED');
    const moved = await store.mapRegion(k('own'), 10_000, undefined, 2);
    expect(mine.retired).toBe(true);
    // The old allocation takes no new map.
    expect(mine.addMap()).toBe(false);
    const now = new KeyState(moved.handle);
    expect(now.maps()).toBe(2);
    expect(now.ownMaps()).toBe(2);
    now.dropMap();
    now.dropMap();
    now.dropMap(); // none left: nothing happens
    expect(now.maps()).toBe(0);
  });

  it('never lets a mapping thread see another key’s bytes while the key is relocated and its old block reused', async () => {
    const len = 4096;
    await writeWhole(store, k('race'), new Uint8Array(len).fill(0xaa));
    let g = await store.mapRegion(k('race'), len);
    const w = await worker(7);
    await w.ask('hammer', { handle: g.handle, base: g.base, len, expect: 0xaa });
    let moved = 0;
    let refused = 0;
    for (let i = 1; i <= 300; i++) {
      const old = g;
      try {
        g = await store.mapRegion(k('race'), old.capacity + 1, undefined, 0);
      } catch (e) {
        expect((e as NuvolaError).code).toBe('E_STATE_MAPPED');
        refused++;
        continue;
      }
      moved++;
      // The old block is free: another key may take it and fill it with other bytes at once.
      new Uint8Array(store.regionMemory().buffer, old.base, old.capacity).fill(0x55);
      await w.ask('rehammer', { handle: g.handle, base: g.base });
      // And one does.
      const filler = await store.mapRegion(k(`filler-${i}`), old.capacity);
      new Uint8Array(store.regionMemory().buffer, filler.base, filler.capacity).fill(0x55);
      await store.delete(k(`filler-${i}`), undefined);
    }
    const result = await w.ask<{ maps: number; violations: number }>('unhammer', {});
    expect(result.violations).toBe(0);
    expect(result.maps).toBeGreaterThan(0);
    expect(moved).toBeGreaterThan(0);
    expect(moved + refused).toBe(300);
  });

  it('refuses delete while mapped and allows it after dropMap; the block is reused', async () => {
    const g = await store.mapRegion(k('del'), 256);
    const w = await worker(4);
    const m = await w.ask<{ ok: boolean; index: number }>('map', { handle: g.handle });
    await store.push(k('del'), false, undefined);
    const refused = await failure(store.delete(k('del'), undefined));
    // Refused before anything was deleted: the global tier keeps the value too.
    expect((await store.global.head(k('del'), 0)).size).toBe(256);
    expect(refused.code).toBe('E_STATE_MAPPED');
    expect(refused.message).toContain(`'${k('del')}'`);
    expect(refused.message).toContain('retry when they end');
    expect(store.holds(k('del'))).toBe(true);
    await w.ask('drop', { index: m.index });
    await store.delete(k('del'), undefined);
    expect(store.holds(k('del'))).toBe(false);
    expect(new KeyState(g.handle).retired).toBe(true);
    const reuse = await store.mapRegion(k('del-next'), 256);
    expect(reuse.base).toBe(g.base);
    expect([...new Uint8Array(store.regionMemory().buffer, reuse.base, 256)].every((b) => b === 0)).toBe(true);
  });

  it('gives back the maps of a worker that died holding them', async () => {
    const g = await store.mapRegion(k('dead'), 64);
    const w = new Mapper(store.regionMemory(), 5);
    await w.ready();
    await w.ask('map', { handle: g.handle });
    await w.ask('map', { handle: g.handle });
    await w.stop();
    const state = new KeyState(g.handle);
    expect(state.maps()).toBe(2);
    expect((await failure(store.delete(k('dead'), undefined))).code).toBe('E_STATE_MAPPED');
    store.releaseHolder(5);
    expect(state.maps()).toBe(0);
    await store.delete(k('dead'), undefined);
    expect(store.holds(k('dead'))).toBe(false);
  });

  it('pulls in place while mapped when the global value fits, refuses one that does not', async () => {
    const g = await store.mapRegion(k('pull'), 4096);
    const mine = new KeyState(g.handle);
    mine.addMap();
    await store.global.write(k('pull'), [{ offset: 0, data: bytes(4000, 9) }], 4000);
    await store.pull(k('pull'), undefined);
    expect(mine.retired).toBe(false);
    expect(new Int32Array(store.regionMemory().buffer, g.sizeAddr, 1)[0]).toBe(4000);
    expect([...new Uint8Array(store.regionMemory().buffer, g.base, 8)]).toEqual([...bytes(8, 9)]);
    await store.global.write(k('pull'), [{ offset: 0, data: bytes(g.capacity + 1, 2) }], g.capacity + 1);
    expect((await failure(store.pull(k('pull'), undefined))).code).toBe('E_STATE_MAPPED');
    mine.dropMap();
    await store.pull(k('pull'), undefined);
    expect(mine.retired).toBe(true);
  });

  it('keeps a mapped key dirty: pushPartial after stores made through the arena reaches the global tier every time', async () => {
    const g = await store.mapRegion(k('push'), 3 * 64 * 1024);
    const w = await worker(6);
    const m = await w.ask<{ ok: boolean; index: number }>('map', { handle: g.handle });
    await w.ask('store', { base: g.base, off: 10, data: Uint8Array.of(1, 2, 3) });
    await store.push(k('push'), true, undefined);
    expect([...(await store.global.getRange(k('push'), 10, 3))]).toEqual([1, 2, 3]);
    // More stores with no host call in between: still sent, as the key stays mapped.
    await w.ask('store', { base: g.base, off: 2 * 64 * 1024 + 5, data: Uint8Array.of(7, 7) });
    await store.push(k('push'), true, undefined);
    expect([...(await store.global.getRange(k('push'), 2 * 64 * 1024 + 5, 2))]).toEqual([7, 7]);
    await w.ask('drop', { index: m.index });
    if (tier === 'redis') {
      const raw = new Redis(redis.url);
      const value = (await raw.getBuffer(`nuvola:v:{${k('push')}}`))!;
      raw.disconnect();
      expect([...value.subarray(10, 13)]).toEqual([1, 2, 3]);
      expect(value.byteLength).toBe(3 * 64 * 1024);
    }
  });

  it('refuses bad sizes with E_STATE_BOUNDS that says the limit', async () => {
    for (const size of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      const e = await failure(store.mapRegion(k('bad'), size));
      expect(e.code).toBe('E_STATE_BOUNDS');
      expect(e.message).toContain(`1 to ${store.maxRegionBytes}`);
    }
    expect(store.holds(k('bad'))).toBe(false);
  });
});

describe('region limits of the store', () => {
  it('a full arena is E_STATE_QUOTA; the quota of the owner is charged the block', async () => {
    const store = new StateStore(new MemoryTier(), {
      leaseMs: 1000,
      regionBytes: 2 * PAGE_BYTES,
      quota: (owner) => (owner === 'small' ? { bytes: 1024, keys: 4 } : undefined),
    });
    try {
      expect(store.maxRegionBytes).toBe(2 * PAGE_BYTES - 2 * BLOCK_ALIGN);
      expect((await failure(store.mapRegion('over', 2 * PAGE_BYTES))).code).toBe('E_STATE_BOUNDS');
      await store.mapRegion('a', PAGE_BYTES, 'big');
      const full = await failure(store.mapRegion('b', PAGE_BYTES, 'big'));
      expect(full.code).toBe('E_STATE_QUOTA');
      expect(full.message).toContain('regionBytes');
      expect(store.usage().get('big')).toEqual({ bytes: PAGE_BYTES, keys: 1 });
      expect((await failure(store.mapRegion('c', 2000, 'small'))).code).toBe('E_STATE_QUOTA');
      await store.mapRegion('c', 1000, 'small');
      expect(store.usage().get('small')).toEqual({ bytes: 1024, keys: 1 });
    } finally {
      await store.close();
    }
  });
});

describe.each(tiers)('rt.state.view on the $tier tier', ({ tier, options }) => {
  let rt: Runtime;
  const k = (name: string) => `${tier}-view-${name}`;

  beforeAll(async () => {
    rt = await createRuntime({ workers: 1, logger: () => {}, ...options() });
  });
  afterAll(() => rt.close());

  it('views the bytes in place: writes through it are what read and push see', async () => {
    await rt.state.write(k('v'), bytes(100, 4));
    const view = await rt.state.view(k('v'));
    expect(view.size).toBe(100);
    expect([...view.bytes]).toEqual([...bytes(100, 4)]);
    view.bytes[0] = 250;
    expect((await rt.state.read(k('v')))[0]).toBe(250);
    await rt.state.writeAt(k('v'), 1, Uint8Array.of(251));
    expect(view.bytes[1]).toBe(251);
    await rt.state.pushPartial(k('v'));
    view.bytes[2] = 252;
    await rt.state.pushPartial(k('v'));
    await rt.state.write(k('other'), Uint8Array.of(0));
    if (tier === 'redis') {
      const raw = new Redis(redis.url);
      expect([...((await raw.getBuffer(`nuvola:v:{${k('v')}}`)) ?? [])].slice(0, 3)).toEqual([250, 251, 252]);
      raw.disconnect();
    }
    // A write that fits lands in place and the view follows the new size.
    await rt.state.write(k('v'), bytes(10, 1));
    expect(view.size).toBe(10);
    expect([...view.bytes]).toEqual([...bytes(10, 1)]);
    view.release();
  });

  it('holds the key while viewed: delete and a grow past the block are E_STATE_MAPPED; release lets go once', async () => {
    const a = await rt.state.view(k('held'), 64);
    const b = await rt.state.view(k('held'));
    expect((await failure(rt.state.delete(k('held')))).code).toBe('E_STATE_MAPPED');
    expect((await failure(rt.state.write(k('held'), new Uint8Array(1 << 20)))).code).toBe('E_STATE_MAPPED');
    a.release();
    a.release(); // a second release must not drop b's map
    expect(a.size).toBe(0);
    expect(a.bytes.byteLength).toBe(0);
    expect((await failure(rt.state.delete(k('held')))).code).toBe('E_STATE_MAPPED');
    b.release();
    await rt.state.delete(k('held'));
    expect(await rt.state.size(k('held'))).toBe(0);
  });

  it('refuses a view of an empty key without a size, and one while holding the key’s lock', async () => {
    expect((await failure(rt.state.view(k('none')))).code).toBe('E_STATE_BOUNDS');
    await rt.state.lockWrite(k('locked'));
    expect((await failure(rt.state.view(k('locked'), 8))).code).toBe('E_STATE_LOCK');
    await rt.state.unlockWrite(k('locked'));
    const v = await rt.state.view(k('locked'), 8);
    expect(v.size).toBe(8);
    v.release();
  });
});

describe('the regionBytes option', () => {
  it('is checked, and bounds a region', async () => {
    expect((await failure(createRuntime({ workers: 1, logger: () => {}, regionBytes: 1000 }))).code).toBe('E_INVALID_OPTION');
    const rt = await createRuntime({ workers: 1, logger: () => {}, regionBytes: 2 * PAGE_BYTES });
    try {
      const e = await failure(rt.state.view('too-big', 3 * PAGE_BYTES));
      expect(e.code).toBe('E_STATE_BOUNDS');
      expect(e.message).toContain(`1 to ${2 * PAGE_BYTES - 2 * BLOCK_ALIGN}`);
    } finally {
      await rt.close();
    }
  });
});

// The store's local reads and writes go through a StateClient on its own thread, as rt.state does.
function client(store: StateStore): StateClient {
  return new StateClient({
    lookup: (key) => store.lookup(key),
    ensure: (key, size, held) => store.ensure(key, size, held),
    pullRanges: (key, ranges, held) => store.pullRanges(key, ranges, held),
    mapRegion: (key, size, ownMaps) => store.mapRegion(key, size, undefined, ownMaps),
  });
}

async function readAll(store: StateStore, key: string): Promise<Uint8Array> {
  return client(store).readAll(key, undefined);
}

async function writeWhole(store: StateStore, key: string, data: Uint8Array): Promise<void> {
  await client(store).write(key, () => data, data.byteLength, undefined);
}

async function writeAt(store: StateStore, key: string, offset: number, data: Uint8Array): Promise<void> {
  await client(store).writeAt(key, offset, () => data, data.byteLength, undefined);
}
