// nuvola:sys: the monotonic clock and the random source a guest reaches through the SDK.
import { describe, expect, it } from 'vitest';
import { closedAfterEach, guestPath } from './helpers.js';

const runtime = closedAfterEach();
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const u64 = (bytes: Uint8Array): bigint => new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);

describe('nuvola:sys', () => {
  it('the clock never goes back, within a call and across calls on different workers', async () => {
    const { rt } = await runtime({ workers: 2 });
    await rt.register('sys_ops', guestPath('sys_ops'));
    let last = 0n;
    for (let round = 0; round < 5; round++) {
      // Concurrent calls spread over both workers; each round is read after the previous one.
      const results = await Promise.all(Array.from({ length: 4 }, () => rt.invoke('sys_ops', enc('clock'))));
      const times = results.map((r) => {
        expect(r.returnCode).toBe(0);
        return u64(r.output);
      });
      for (const t of times) expect(t).toBeGreaterThan(last);
      last = times.reduce((a, b) => (a > b ? a : b));
    }
  });

  it('random bytes and words differ between calls and within one', async () => {
    const { rt } = await runtime();
    await rt.register('sys_ops', guestPath('sys_ops'));
    const a = (await rt.invoke('sys_ops', enc('bytes:64'))).output;
    const b = (await rt.invoke('sys_ops', enc('bytes:64'))).output;
    expect(a.byteLength).toBe(64);
    expect(b.byteLength).toBe(64);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    // 64 random bytes are not all one value.
    expect(new Set(a).size).toBeGreaterThan(8);
    const words = await Promise.all(Array.from({ length: 8 }, () => rt.invoke('sys_ops', enc('u64'))));
    expect(new Set(words.map((w) => u64(w.output))).size).toBe(8);
    // A large request is filled whole (not just its first 64 KiB).
    const big = (await rt.invoke('sys_ops', enc('bytes:200000'))).output;
    expect(big.byteLength).toBe(200000);
    expect(new Set(big.subarray(190000)).size).toBeGreaterThan(200);
  });

  it('bytes the host wrote into guest memory are undone by the reset, like the guest’s own writes', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('sys_ops', guestPath('sys_ops'));
    for (let i = 0; i < 3; i++) {
      const { output } = await rt.invoke('sys_ops', enc('kept'));
      expect([...output]).toEqual(new Array(32).fill(0));
    }
  });

  it.each(['past-end', 'huge-pointer', 'negative-length'])(
    'random_bytes with a range outside memory (%s) traps with E_GUEST_POINTER',
    async (mode) => {
      const { rt } = await runtime({ workers: 1 });
      await rt.register('sys_ops', guestPath('sys_ops'));
      await expect(rt.invoke('sys_ops', enc(mode))).rejects.toMatchObject({
        code: 'E_GUEST_POINTER',
        details: { import: 'random_bytes' },
      });
      // The worker goes on.
      expect((await rt.invoke('sys_ops', enc('u64'))).output.byteLength).toBe(8);
    },
  );
});
