// Atomic global counters (state.incrementGlobal / compareAndSwapGlobal, rt.state.*) against both
// global tiers: exact under concurrency from guests on several workers, from the host, and —
// on Redis — from two runtimes sharing one server, as two hosts would; i64 wrapping and
// carries across the 32-bit halves the Redis script computes in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRuntime, NuvolaError, type Runtime } from 'nuvola';
import { guestBytes, text } from './helpers.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

const tiers = [
  { tier: 'memory', options: () => ({}) },
  { tier: 'redis', options: () => ({ redis: redis.url }) },
];

describe.each(tiers)('atomic counters on the $tier tier', ({ tier, options }) => {
  let rt: Runtime;
  const k = (name: string) => `${tier}-atomic-${name}`;
  const inc = async (key: string, delta: bigint | number) => BigInt(text((await rt.invoke('atomic', `inc ${key} ${delta}`)).output));

  beforeAll(async () => {
    rt = await createRuntime({ workers: 2, logger: () => {}, ...options() });
    await rt.register('atomic', guestBytes('state_atomic'));
  });
  afterAll(() => rt.close());

  it('starts a missing key at 0 and returns each new value', async () => {
    expect(await inc(k('fresh'), 5)).toBe(5n);
    expect(await inc(k('fresh'), -7)).toBe(-2n);
    expect(await rt.state.incrementGlobal(k('fresh'), 2)).toBe(0n);
  });

  it('counts exactly under concurrent guests and host calls', async () => {
    const calls = [
      ...Array.from({ length: 150 }, () => rt.invoke('atomic', `inc ${k('shared')} 1`)),
      ...Array.from({ length: 50 }, () => rt.state.incrementGlobal(k('shared'), 2n)),
    ];
    await Promise.all(calls);
    expect(await rt.state.incrementGlobal(k('shared'), 0)).toBe(250n);
  });

  it('wraps like i64 and carries across the 32-bit halves', async () => {
    expect(await inc(k('carry'), 0xffff_ffffn)).toBe(0xffff_ffffn);
    expect(await inc(k('carry'), 1)).toBe(0x1_0000_0000n);
    expect(await inc(k('carry'), -1)).toBe(0xffff_ffffn);
    expect(await inc(k('carry'), -0x1_0000_0000n)).toBe(-1n);
    const max = 0x7fff_ffff_ffff_ffffn;
    expect(await rt.state.compareAndSwapGlobal(k('wrap'), 0, max)).toBe(true);
    expect(await inc(k('wrap'), 1)).toBe(-max - 1n);
    expect(await inc(k('wrap'), -1)).toBe(max);
  });

  it('compares and swaps only from the expected value', async () => {
    expect(text((await rt.invoke('atomic', `cas ${k('cas')} 1 9`)).output)).toBe('0');
    expect(text((await rt.invoke('atomic', `cas ${k('cas')} 0 9`)).output)).toBe('1');
    expect(text((await rt.invoke('atomic', `cas ${k('cas')} 0 10`)).output)).toBe('0');
    expect(await rt.state.compareAndSwapGlobal(k('cas'), 9, 11)).toBe(true);
    expect(await rt.state.incrementGlobal(k('cas'), 0)).toBe(11n);
  });

  it('refuses a value that is not an i64 with E_STATE_BOUNDS and leaves it as it was', async () => {
    await rt.state.write(k('bytes'), new Uint8Array([1, 2, 3]));
    await rt.state.push(k('bytes'));
    const err = await rt.invoke('atomic', `inc ${k('bytes')} 1`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NuvolaError);
    expect((err as NuvolaError).code).toBe('E_STATE_BOUNDS');
    const host = await rt.state.compareAndSwapGlobal(k('bytes'), 0, 1).catch((e: unknown) => e);
    expect((host as NuvolaError).code).toBe('E_STATE_BOUNDS');
    await rt.state.pull(k('bytes'));
    expect([...(await rt.state.read(k('bytes')))]).toEqual([1, 2, 3]);
    // The guest that trapped left the runtime serving.
    expect(await inc(k('after'), 1)).toBe(1n);
  });
});

describe('atomic counters across two runtimes sharing one Redis (two hosts)', () => {
  it('600 visits from two runtimes leave the counter at exactly 600', async () => {
    const a = await createRuntime({ workers: 1, logger: () => {}, redis: redis.url });
    const b = await createRuntime({ workers: 1, logger: () => {}, redis: redis.url });
    try {
      await a.register('atomic', guestBytes('state_atomic'));
      await b.register('atomic', guestBytes('state_atomic'));
      const visits = Array.from({ length: 300 }, () => [a.invoke('atomic', 'inc visits 1'), b.invoke('atomic', 'inc visits 1')]).flat();
      await Promise.all(visits);
      const raw = new Redis(redis.url);
      try {
        expect((await raw.getBuffer('nuvola:v:{visits}'))!.readBigInt64LE(0)).toBe(600n);
      } finally {
        raw.disconnect();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
