// Shared memory regions with real guests on real workers: state keys mapped into instances,
// read and written in place (guest/sdk/nuvola/region.ts), one truth with rt.state, isolation by
// grants whatever offset a guest passes, growth, delete while mapped, and the global tier.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, NuvolaError, type Runtime } from 'nuvola';
import { guestBytes, text } from './helpers.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';

let redis: TestRedis;
let rt: Runtime;
beforeAll(async () => {
  redis = await startRedis();
  rt = await createRuntime({ workers: 2, redis: redis.url, logger: () => {} });
  await rt.register('ops', guestBytes('region_ops'), { stateKeys: ['r:*'], timeoutMs: 10_000 });
  await rt.register('scoped', guestBytes('region_ops'), { stateKeys: ['mine:*'], timeoutMs: 10_000 });
  await rt.register('spinner', guestBytes('region_ops'), { stateKeys: ['r:*'], timeoutMs: 5_000 });
});
afterAll(async () => {
  await rt?.close();
  await redis?.stop();
});

const call = async (fn: string, input: string): Promise<string> => text((await rt.invoke(fn, input)).output);
const failure = async (fn: string, input: string): Promise<NuvolaError> => {
  const err = await rt.invoke(fn, input).catch((e: unknown) => e);
  expect(err, `${fn} ${input}`).toBeInstanceOf(NuvolaError);
  return err as NuvolaError;
};
const i32At = (bytes: Uint8Array, off: number): number => new DataView(bytes.buffer, bytes.byteOffset).getInt32(off, true);

/** Resolves once the key's i32 at 0 reads `value` from the host (the guest's signal). */
async function signalled(key: string, value: number): Promise<void> {
  for (;;) {
    const bytes = await rt.state.read(key).catch(() => new Uint8Array(0));
    if (bytes.byteLength >= 4 && i32At(bytes, 0) === value) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('regions', () => {
  it('creates a key zero-filled at the mapped size, and the host reads what the guest stored', async () => {
    expect(await call('ops', 'size r:fresh 1000')).toBe('1000');
    expect(await call('ops', 'sum r:fresh 1000')).toBe('0');
    expect(await call('ops', 'fill r:fresh 1000 7')).toBe('1000');
    const bytes = await rt.state.read('r:fresh');
    expect(bytes.byteLength).toBe(1000);
    expect(bytes.every((b) => b === 7)).toBe(true);
    await rt.state.writeAt('r:fresh', 10, new Uint8Array([1, 0, 0, 0]));
    expect(await call('ops', 'get r:fresh 1000 10')).toBe('1');
    expect(await call('ops', 'setF32 r:fresh 1000 20 3')).toBe('3.0');
    expect(await call('ops', 'copy r:fresh 1000 100 900')).toBe('900');
    expect(await call('ops', 'getU8 r:fresh 1000 101')).toBe(String((1 * 13 + 5) & 0xff));
  });

  it('empties a call’s slots when it ends: the warm instance’s next call cannot use them', async () => {
    expect(await call('ops', 'fill r:stale 64 1')).toBe('64');
    for (let i = 0; i < 4; i++) expect((await failure('ops', 'stale - 0')).code).toBe('E_GUEST_TRAP');
    expect(rt.stats().coldStarts + rt.stats().warmStarts).toBeGreaterThan(0);
  });

  it('maps a key that already had a value, keeping its bytes', async () => {
    await rt.state.write('r:existing', new Uint8Array(300).fill(3));
    expect(await call('ops', 'sum r:existing 300')).toBe('900');
    expect(await call('ops', 'size r:existing 100')).toBe('300');
  });

  it('shares one key between instances on two workers: a spinning guest sees another worker’s store', async () => {
    await rt.state.delete('r:spin').catch(() => undefined);
    // The spinner never suspends, so it holds its worker: the setter runs on the other one.
    const spinning = call('spinner', 'spin r:spin 64');
    await signalled('r:spin', 1);
    await call('ops', 'set r:spin 64 0 2');
    expect(await spinning).toBe('64');
  });

  it('counts exactly with atomics: 8 instances on 2 workers adding to one counter', async () => {
    // Each call suspends between its bursts, so the 8 calls overlap: 8 instances, 4 per worker.
    const adds = Array.from({ length: 8 }, () => rt.invoke('ops', 'add r:counter2 64 20000 20'));
    await Promise.all(adds);
    expect(rt.stats().instances).toBeGreaterThanOrEqual(8);
    expect(i32At(await rt.state.read('r:counter2'), 0)).toBe(8 * 20000);
    expect(await call('ops', 'cas r:counter2 64 1 5')).toBe(String(8 * 20000));
    expect(await call('ops', `cas r:counter2 64 ${8 * 20000} 5`)).toBe(String(8 * 20000));
    expect(i32At(await rt.state.read('r:counter2'), 0)).toBe(5);
  });

  it('traps on an unaligned atomic and on any offset past the end, and serves on', async () => {
    for (const input of [
      'addAt r:bounds 64 2',
      'addAt r:bounds 64 64',
      'get r:bounds 64 61',
      'get r:bounds 64 -1',
      'get r:bounds 64 2147483647',
      'readInto r:bounds 64 1 64',
      'getF64 r:bounds 64 57',
    ]) {
      expect((await failure('ops', input)).code, input).toBe('E_GUEST_TRAP');
    }
    expect(await call('ops', 'get r:bounds 64 60')).toBe('0');
    // The error says which region, where and how big, not just "unreachable".
    const past = await failure('ops', 'getF64 r:bounds 64 57');
    expect(past.message).toContain("accessed 8 bytes at offset 57 of region 'r:bounds', which is 64 bytes: past its end");
    expect(past.details).toMatchObject({ key: 'r:bounds', offset: 57, bytes: 8, size: 64 });
    const wild = await failure('ops', 'get r:bounds 64 -1');
    expect(wild.details).toMatchObject({ offset: 2 ** 32 - 1, bytes: 4, size: 64 });
    const copy = await failure('ops', 'readInto r:bounds 64 1 64');
    expect(copy.details).toMatchObject({ offset: 1, bytes: 64, size: 64 });
  });

  it('isolates keys by grant: mapping another key is denied, and a guest reading all it can reach finds only its own bytes', async () => {
    await rt.state.write('r:secret', new Uint8Array(4096).fill(0x5a));
    expect(await call('ops', 'sum r:secret 4096')).toBe(String(4096 * 0x5a));
    expect((await failure('scoped', 'sum r:secret 4096')).code).toBe('E_STATE_DENIED');
    expect(await call('scoped', 'fill mine:a 100 1')).toBe('100');
    // Every offset the scoped guest can read sums to its own bytes; one past traps, as do wild ones.
    expect(await call('scoped', 'sum mine:a 100')).toBe('100');
    for (const off of [100, 101, 4096, 65536, 1 << 30, -1, -4096, -(1 << 30)]) {
      expect((await failure('scoped', `getU8 mine:a 100 ${off}`)).code, `offset ${off}`).toBe('E_GUEST_TRAP');
    }
    expect((await rt.state.read('r:secret')).every((b) => b === 0x5a)).toBe(true);
  });

  it('grows a mapped key; other instances see the new size', async () => {
    expect(await call('ops', 'grow r:grow 100 5000')).toBe('5000');
    expect(await call('ops', 'size r:grow 10')).toBe('5000');
    expect(await call('ops', 'remap r:grow 100 9000')).toBe('9000');
    expect((await rt.state.read('r:grow')).byteLength).toBe(9000);
    // A spinning instance maps the key; another grows it in place (its block has room) while it
    // is mapped, and the spinner sees the new size. Growing past the block would move the key
    // under the spinner's feet: refused while it is mapped.
    const spinning = call('spinner', 'spin r:grow 9000');
    await signalled('r:grow', 1);
    expect(await call('ops', 'grow r:grow 9000 9020')).toBe('9020');
    expect((await failure('ops', 'grow r:grow 9000 100000')).code).toBe('E_STATE_MAPPED');
    await call('ops', 'set r:grow 9000 0 2');
    expect(await spinning).toBe('9020');
    expect(await call('ops', 'get r:grow 10 9016')).toBe('0');
    // Unmapped by others, it may move: the grow succeeds.
    expect(await call('ops', 'grow r:grow 9000 100000')).toBe('100000');
  });

  it('refuses to delete a key while a call maps it (E_STATE_MAPPED), and deletes it after', async () => {
    const holding = call('ops', 'hold r:held 64');
    await signalled('r:held', 1);
    const err = await rt.state.delete('r:held').catch((e: unknown) => e);
    expect((err as NuvolaError).code).toBe('E_STATE_MAPPED');
    await rt.state.writeAt('r:held', 0, new Uint8Array([2, 0, 0, 0]));
    expect(await holding).toBe('released');
    await rt.state.delete('r:held');
    expect(await call('ops', 'sum r:held 8')).toBe('0');
  });

  it('drops the maps of a call that timed out while it held them', async () => {
    await rt.register('impatient', guestBytes('region_ops'), { stateKeys: ['r:*'], timeoutMs: 300 });
    expect((await failure('impatient', 'hold r:abandoned 64')).code).toBe('E_TIMEOUT');
    await rt.state.delete('r:abandoned');
    expect(await call('ops', 'get r:abandoned 64 0')).toBe('0');
  });

  it('pushes what guests stored in a region to the global tier', async () => {
    expect(await call('ops', 'fill r:pushed 200000 9')).toBe('200000');
    await rt.state.push('r:pushed');
    const other = await createRuntime({ workers: 1, redis: redis.url, logger: () => {} });
    try {
      await other.state.pull('r:pushed');
      const bytes = await other.state.read('r:pushed');
      expect(bytes.byteLength).toBe(200000);
      expect(bytes.every((b) => b === 9)).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('gives WASI guests regions too: a C command maps a key and reads and writes it in place', async () => {
    await rt.register('wasi-region', guestBytes('wasi_region_c'), { stateKeys: ['r:w*'] });
    expect(await call('wasi-region', 'fill r:wasi 1000 1.5')).toBe('8000\n');
    expect(await call('wasi-region', 'sum r:wasi 1000')).toBe('1500.0\n');
    const bytes = await rt.state.read('r:wasi');
    expect(new Float64Array(bytes.slice().buffer)[999]).toBe(1.5);
    expect((await failure('wasi-region', 'get r:wasi 1000 7993')).code).toBe('E_GUEST_TRAP');
    expect((await failure('wasi-region', 'sum r:other 10')).code).toBe('E_STATE_DENIED');
  });

  it('refuses at register a module importing nuvola:region whose code the rewrite cannot follow', async () => {
    const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const wasm = await parse(`(module
      (import "nuvola:region" "get_i32" (func $get (param i32 i32) (result i32)))
      (memory (export "memory") 1 1)
      (func (export "main") (result i32) (i32.add (call $get (i32.const 0) (i32.const 0)) (i32.atomic.load (i32.const 0)))))`);
    const err = await rt.register('untrackable', wasm).catch((e: unknown) => e);
    expect((err as NuvolaError).code).toBe('E_INVALID_MODULE');
    expect((err as NuvolaError).message).toMatch(/nuvola:region.*cannot follow/);
    expect(await call('ops', 'size r:after-refusal 8')).toBe('8');
  });

  it('refuses bad input with coded errors and serves on', async () => {
    expect((await failure('ops', 'size r:zero 0')).code).toBe('E_STATE_BOUNDS');
    expect((await failure('ops', 'size r:negative -5')).code).toBe('E_STATE_BOUNDS');
    expect((await failure('ops', `size r:huge ${0x7fffffff}`)).code).toMatch(/E_STATE_BOUNDS|E_STATE_QUOTA/);
    // 'many' maps its key, then a further one per count: 16 in all fit, 17 do not.
    expect(await call('ops', 'many r:many- 16 15')).toBe('15');
    const tooMany = await failure('ops', 'many r:many- 16 16');
    expect(tooMany.code).toBe('E_INSTANCE_LIMIT');
    expect(tooMany.message).toMatch(/16 regions/);
    // Nothing stayed mapped: every key can be deleted.
    for (const key of ['r:many-', ...Array.from({ length: 16 }, (_, i) => `r:many-${i}`)]) await rt.state.delete(key);
    expect(await call('ops', 'size r:after 8')).toBe('8');
  });
});
