// Against a real Redis Cluster (three masters on loopback, made with redis-cli --cluster
// create): the global state tier and cluster mode, with hosts as child processes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { startHost, type HostProcess } from '../dist/cluster/spawn.js';
import { startRedisCluster, type TestRedisCluster } from '../state/redis-server.js';
import { closedAfterEach, guestBytes, text } from './helpers.js';

const runtime = closedAfterEach();
const SECRET = 'redis-cluster-test-secret-0123456789';
let redis: TestRedisCluster;
const hosts: HostProcess[] = [];

beforeAll(async () => {
  redis = await startRedisCluster(3);
});
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.kill()));
});
afterAll(async () => {
  await redis?.stop();
});

describe('on a Redis Cluster', () => {
  it('atomic counters are exact from two runtimes, over keys in many slots', async () => {
    const target = { cluster: redis.urls };
    const a = (await runtime({ workers: 1, redis: target })).rt;
    const b = (await runtime({ workers: 1, redis: target })).rt;
    const keys = Array.from({ length: 12 }, (_, i) => `rc-counter-${i}`);
    await Promise.all(keys.flatMap((key) => Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).state.incrementGlobal(key, 3))));
    for (const key of keys) expect(await b.state.incrementGlobal(key, 0)).toBe(30n);
    expect(await a.state.compareAndSwapGlobal(keys[0]!, 30, -1)).toBe(true);
    expect(await b.state.incrementGlobal(keys[0]!, 1)).toBe(0n);
  });

  it('the global tier spreads keys over the slots and reads them back from another runtime', async () => {
    const target = { cluster: redis.urls };
    const a = (await runtime({ workers: 1, redis: target })).rt;
    const b = (await runtime({ workers: 1, redis: target })).rt;
    const keys = Array.from({ length: 24 }, (_, i) => `rc-key-${i}`);
    for (const [i, key] of keys.entries()) {
      await a.state.write(key, new Uint8Array([i, i + 1, i + 2]));
      await a.state.push(key);
    }
    for (const [i, key] of keys.entries()) {
      await b.state.pull(key);
      expect([...(await b.state.read(key))]).toEqual([i, i + 1, i + 2]);
    }
    // The keys really are spread over the three masters.
    const probe = new Cluster(redis.urls.map((u) => ({ host: '127.0.0.1', port: Number(new URL(u).port) })));
    try {
      await new Promise((resolve) => probe.once('ready', resolve));
      const owners = new Set<number>();
      for (const node of probe.nodes('master')) {
        const found = await node.keys('nuvola:v:{rc-key-*');
        if (found.length > 0) owners.add(node.options.port!);
      }
      expect(owners.size).toBe(3);
    } finally {
      probe.disconnect();
    }
  });

  it("a state key beginning with '}' (an empty hash tag) works: write, push under the global lock, pull, append", async () => {
    const target = { cluster: redis.urls };
    const a = (await runtime({ workers: 1, redis: target })).rt;
    const b = (await runtime({ workers: 1, redis: target })).rt;
    for (const key of ['}lead', '}', '}{x}', '{}odd']) {
      await a.state.lockGlobalWrite(key);
      await a.state.write(key, `v:${key}`);
      await a.state.push(key);
      await a.state.unlockGlobalWrite(key);
      await a.state.append(key, new TextEncoder().encode('one'));
      await b.state.pull(key);
      expect(text(await b.state.read(key))).toBe(`v:${key}`);
      expect((await b.state.readAppended(key)).map(text)).toEqual(['one']);
    }
  });

  it('cluster mode: two host processes increment one counter under the global write lock, exactly', async () => {
    const target = { cluster: redis.urls };
    const cluster = { name: 'rc', secret: SECRET, heartbeatMs: 100, hostTimeoutMs: 1000 };
    hosts.push(await startHost({ workers: 1, redis: target, cluster: { ...cluster, capacity: 4 } }));
    hosts.push(await startHost({ workers: 1, redis: target, cluster: { ...cluster, capacity: 4 } }));
    const c = (await runtime({ workers: 1, redis: target, cluster: { ...cluster, capacity: 0 } })).rt;
    await c.register('counter', guestBytes('state_counter'), { timeoutMs: 60_000 });
    const results = await Promise.all(Array.from({ length: 40 }, () => c.invoke('counter', 'rc-counter')));
    expect(results.map((r) => r.returnCode).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.host))).toEqual(new Set(hosts.map((h) => h.id)));
    await c.state.pull('rc-counter');
    expect(new DataView((await c.state.read('rc-counter')).buffer).getInt32(0, true)).toBe(40);
    const echo = await c.register('echo', guestBytes('core_echo')).then(() => c.invoke('echo', 'slot'));
    expect(text(echo.output)).toBe('tols');
  });

  it('fault: a host killed with keyed calls in flight; the survivor takes them over, each answered once', async () => {
    const target = { cluster: redis.urls };
    const cluster = { name: 'rc-kill', secret: SECRET, heartbeatMs: 100, hostTimeoutMs: 600 };
    const victim = await startHost({ workers: 1, redis: target, cluster: { ...cluster, capacity: 4 } });
    hosts.push(victim);
    const c = (await runtime({ workers: 1, redis: target, cluster: { ...cluster, capacity: 0 } })).rt;
    await c.register('sleep', guestBytes('core_sleep'));
    const sent = Array.from({ length: 4 }, (_, i) => c.invoke('sleep', '3000', { idempotencyKey: `rc-kill-${i}`, timeoutMs: 15_000 }));
    for (let i = 0; i < 200; i++) {
      if ((await c.cluster()).hosts.find((h) => h.id === victim.id)?.inflight === 4) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    // Killed long before its 3 s sleeps end; the survivor starts after (however slow it is to
    // start, the calls wait in Redis for it).
    await victim.kill();
    const survivor = await startHost({ workers: 1, redis: target, cluster: { ...cluster, capacity: 8 } });
    hosts.push(survivor);
    const results = await Promise.all(sent);
    expect(results.map((r) => text(r.output))).toEqual(Array(4).fill('slept 3000'));
    expect(results.every((r) => r.host === survivor.id)).toBe(true);
    const retried = await Promise.all(
      Array.from({ length: 4 }, (_, i) => c.invoke('sleep', '3000', { idempotencyKey: `rc-kill-${i}`, timeoutMs: 1000 })),
    );
    expect(retried.map((r) => text(r.output))).toEqual(Array(4).fill('slept 3000'));
  });
});
