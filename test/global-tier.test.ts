// One suite for every global tier implementation: the in-process tier and Redis (real server).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GlobalTier } from '../state/global-tier.js';
import { MemoryTier } from '../state/memory-tier.js';
import { RedisTier } from '../state/redis-tier.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';

let redis: TestRedis;
const tiers: Record<string, GlobalTier> = {};
beforeAll(async () => {
  redis = await startRedis();
  const tier = new RedisTier(redis.url, () => {});
  await tier.connected(5000);
  tiers['redis'] = tier;
  tiers['memory'] = new MemoryTier();
});
afterAll(async () => {
  for (const t of Object.values(tiers)) await t.close();
  await redis?.stop();
});

const bytes = (...v: number[]) => new Uint8Array(v);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(['memory', 'redis'])('global tier: %s', (name) => {
  const tier = () => tiers[name]!;

  it('stores, ranges, extends with pieces and replaces values', async () => {
    expect(await tier().size('v')).toBe(0);
    expect(await tier().get('v')).toBeUndefined();
    await tier().write('v', [{ offset: 0, data: bytes(1, 2, 3, 4) }], 4);
    expect(await tier().size('v')).toBe(4);
    expect([...(await tier().getRange('v', 1, 2))]).toEqual([2, 3]);
    expect([...(await tier().getRange('v', 3, 10))]).toEqual([4]);
    // The size and a prefix together: shorter than asked at the value's end, empty for a missing key.
    expect(await tier().head('v', 2)).toMatchObject({ size: 4 });
    expect([...(await tier().head('v', 2)).bytes]).toEqual([1, 2]);
    expect((await tier().head('v', 10)).size).toBe(4);
    expect([...(await tier().head('v', 10)).bytes]).toEqual([1, 2, 3, 4]);
    expect((await tier().head('none', 10)).size).toBe(0);
    expect((await tier().head('none', 10)).bytes.byteLength).toBe(0);
    await tier().write(
      'v',
      [
        { offset: 1, data: bytes(9) },
        { offset: 5, data: bytes(7) },
      ],
      undefined,
    );
    expect([...((await tier().get('v')) ?? [])]).toEqual([1, 9, 3, 4, 0, 7]);
    await tier().write('v', [{ offset: 0, data: bytes(5) }], 1);
    expect([...((await tier().get('v')) ?? [])]).toEqual([5]);
    await tier().delete('v');
    expect(await tier().size('v')).toBe(0);
  });

  it('keeps appended lists apart from values', async () => {
    await tier().append('l', bytes(1));
    await tier().append('l', bytes(2, 3));
    expect((await tier().readAppended('l')).map((e) => [...e])).toEqual([[1], [2, 3]]);
    expect(await tier().size('l')).toBe(0);
    await tier().clearAppended('l');
    expect(await tier().readAppended('l')).toEqual([]);
  });

  it('write locks exclude everyone; read locks share but exclude writers', async () => {
    const w = await tier().tryLock('x', 'write', 10_000);
    expect(w).toBeDefined();
    expect(await tier().tryLock('x', 'write', 10_000)).toBeUndefined();
    expect(await tier().tryLock('x', 'read', 10_000)).toBeUndefined();
    expect(await tier().unlock(w!)).toBe(true);
    const r1 = await tier().tryLock('x', 'read', 10_000);
    const r2 = await tier().tryLock('x', 'read', 10_000);
    expect(r1 && r2).toBeDefined();
    expect(await tier().tryLock('x', 'write', 10_000)).toBeUndefined();
    await tier().unlock(r1!);
    await tier().unlock(r2!);
    const w2 = await tier().tryLock('x', 'write', 10_000);
    expect(w2!.fence).toBeGreaterThan(w!.fence);
    await tier().unlock(w2!);
  });

  it('expires leases, and fences a writer whose lease expired', async () => {
    const old = await tier().tryLock('f', 'write', 50);
    await tier().write('f', [{ offset: 0, data: bytes(1) }], 1, old);
    await sleep(120);
    const fresh = await tier().tryLock('f', 'write', 10_000);
    expect(fresh).toBeDefined();
    await expect(tier().write('f', [{ offset: 0, data: bytes(9) }], 1, old)).rejects.toMatchObject({ code: 'E_STATE_LEASE' });
    await tier().write('f', [{ offset: 0, data: bytes(2) }], 1, fresh);
    expect([...((await tier().get('f')) ?? [])]).toEqual([2]);
    expect(await tier().unlock(old!)).toBe(false);
    expect(await tier().unlock(fresh!)).toBe(true);
    // Even with nobody holding the lock now, the stale lease cannot write.
    await expect(tier().write('f', [{ offset: 0, data: bytes(9) }], 1, old)).rejects.toMatchObject({ code: 'E_STATE_LEASE' });
  });
});
