// Cluster mode with real processes on loopback: a real redis-server, cluster hosts as child
// processes (dist/cluster/host.js), and callers in this process. Faults: a host killed with
// calls in flight, Redis restarted mid-run, a host whose Redis connection is slowed down.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NuvolaError, type Runtime } from 'nuvola';
import { homeOf } from '../dist/cluster/cluster.js';
import { startHost, type HostProcess } from '../dist/cluster/spawn.js';
import { clusterUp } from '../dist/cluster/up.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';
import { closedAfterEach, guestBytes, text } from './helpers.js';

const runtime = closedAfterEach();
let redis: TestRedis;
let raw: Redis;
const hosts: HostProcess[] = [];
let clusterSeq = 0;

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.kill()));
});
afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

const FAST = { heartbeatMs: 100, hostTimeoutMs: 600 };
/** The cluster secret of the tests (at least 32 characters). */
const SECRET = 'test-cluster-secret-0123456789abcdef';

/** A fresh cluster name per test: tests share one Redis. */
function newCluster(): { name: string; secret: string | string[]; heartbeatMs: number; hostTimeoutMs: number } {
  return { name: `t${process.pid}-${++clusterSeq}`, secret: SECRET, ...FAST };
}

async function host(url: string, cluster: Record<string, unknown>): Promise<HostProcess> {
  const h = await startHost({ workers: 1, redis: url, cluster: cluster as { name: string; secret: string } });
  hosts.push(h);
  return h;
}

async function caller(url: string, cluster: Record<string, unknown>, capacity = 0): Promise<Runtime> {
  return (await runtime({ workers: 1, redis: url, cluster: { ...(cluster as { name: string; secret: string }), capacity } })).rt;
}

async function failure(p: Promise<unknown>): Promise<NuvolaError> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: NuvolaError) => e,
  );
}

/** Polls `rt.cluster()` until `ok` holds for the host `id` (heartbeats are every 100 ms). */
async function until(rt: Runtime, id: string, ok: (h: { inflight: number; remote: number }) => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const info = (await rt.cluster()).hosts.find((h) => h.id === id);
    if (info !== undefined && ok(info)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`host ${id} never got there`);
}

/** Entries of the work stream taken and not yet answered. */
async function unanswered(name: string): Promise<number> {
  const summary = (await raw.xpending(`nuvola:cl:{${name}}:work`, 'hosts')) as [number, ...unknown[]];
  return summary[0];
}

describe('a cluster of hosts', () => {
  it('hosts list each other; a function registered on one runs on another, its bytes stored once', async () => {
    const cluster = newCluster();
    const b = await host(redis.url, cluster);
    const c = await caller(redis.url, cluster);
    await c.register('echo', guestBytes('core_echo'));
    await c.register('echo-too', guestBytes('core_echo'));
    expect(await raw.keys(`nuvola:cl:{${cluster.name}}:mod:*`)).toHaveLength(1);
    const result = await c.invoke('echo', 'abc');
    expect(text(result.output)).toBe('cba');
    expect(result.returnCode).toBe(3);
    expect(result.host).toBe(b.id);
    expect(text((await c.invoke('echo-too', 'xy')).output)).toBe('yx');
    const view = await c.cluster();
    expect(view.name).toBe(cluster.name);
    expect(view.hosts.map((h) => h.id).sort()).toEqual([b.id, view.self].sort());
    expect(view.hosts.find((h) => h.id === view.self)!.capacity).toBe(0);
    // Other code under a name the cluster has: refused, and nothing is left registered.
    const d = await caller(redis.url, cluster);
    expect((await failure(d.register('echo', guestBytes('chain_say')))).code).toBe(ErrorCode.ALREADY_REGISTERED);
    expect(d.functions()).toEqual([]);
    expect((await failure(c.invoke('nowhere'))).code).toBe(ErrorCode.UNKNOWN_FUNCTION);
    // A guest error crosses hosts with its code.
    await c.register('trap', guestBytes('core_unreachable'));
    expect((await failure(c.invoke('trap'))).code).toBe(ErrorCode.GUEST_TRAP);
    // The bytes go with the last name that uses them (unregister tells the cluster in the background).
    const names = async (want: string[]): Promise<void> => {
      for (let i = 0; i < 40 && (await raw.hkeys(`nuvola:cl:{${cluster.name}}:fn`)).sort().join() !== want.join(); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    await c.unregister('echo');
    await names(['echo-too', 'trap']);
    expect(await raw.keys(`nuvola:cl:{${cluster.name}}:mod:*`)).toHaveLength(2); // echo-too's, trap's
    await c.unregister('echo-too');
    await names(['trap']);
    expect(await raw.hkeys(`nuvola:cl:{${cluster.name}}:fn`)).toEqual(['trap']);
    expect(await raw.keys(`nuvola:cl:{${cluster.name}}:mod:*`)).toHaveLength(1);
  });

  it('runs calls here while it has room and sends the rest through Redis', async () => {
    const cluster = newCluster();
    const b = await host(redis.url, cluster);
    const c = await caller(redis.url, cluster, 1);
    await c.register('sleep', guestBytes('core_sleep'));
    const results = await Promise.all(Array.from({ length: 4 }, () => c.invoke('sleep', '300')));
    const self = (await c.cluster()).self;
    expect(results.map((r) => text(r.output))).toEqual(Array(4).fill('slept 300'));
    expect(results.filter((r) => r.host === self)).toHaveLength(1);
    expect(results.filter((r) => r.host === b.id)).toHaveLength(3);
  });

  it('a chained call to a function this host lacks runs elsewhere in the cluster', async () => {
    const cluster = newCluster();
    const b = await host(redis.url, cluster);
    const publisher = await caller(redis.url, cluster);
    await publisher.register('say', guestBytes('chain_say'));
    // Room for one call: the parent; its two chained calls go to the host process.
    const c = await caller(redis.url, cluster, 1);
    await c.register('outputs', guestBytes('chain_outputs'));
    const result = await c.invoke('outputs');
    expect(text(result.output)).toBe('expected A|longer expected B');
    expect(result.returnCode).toBe(0);
    await until(c, b.id, (h) => h.remote >= 2);
  });

  it('an idempotency key that completed answers with its recorded result, without running again', async () => {
    const cluster = newCluster();
    await host(redis.url, cluster);
    const c = await caller(redis.url, cluster);
    await c.register('sleep', guestBytes('core_sleep'));
    const first = await c.invoke('sleep', '400', { idempotencyKey: 'order-1' });
    expect(text(first.output)).toBe('slept 400');
    // Run again, it would time out: it answers from the record instead.
    const again = await c.invoke('sleep', '400', { idempotencyKey: 'order-1', timeoutMs: 200 });
    expect(text(again.output)).toBe('slept 400');
    expect(text((await c.invoke('sleep', '5', { idempotencyKey: 'order-2' })).output)).toBe('slept 5');
    expect(await raw.exists(`nuvola:cl:{${cluster.name}}:done:sleep order-1`)).toBe(1);
  });

  it('calls naming a state key meet on its home host', async () => {
    const cluster = newCluster();
    const b = await host(redis.url, cluster);
    const c = await host(redis.url, cluster);
    const a = await caller(redis.url, cluster);
    await a.register('count', guestBytes('state_local_count'));
    const takers = (await a.cluster()).hosts.filter((h) => h.capacity > 0);
    expect(takers.map((h) => h.id).sort()).toEqual([b.id, c.id].sort());
    const homes = new Set<string>();
    for (let k = 0; k < 16; k++) {
      const key = `place-${k}`;
      const runs = [];
      // The count is kept in each host's local tier: exact only if every call meets on one host.
      for (let i = 0; i < 3; i++) runs.push(await a.invoke('count', key, { stateKey: key }));
      expect(runs.map((r) => r.returnCode)).toEqual([1, 2, 3]);
      expect(new Set(runs.map((r) => r.host))).toEqual(new Set([homeOf(key, takers)!.id]));
      homes.add(runs[0]!.host!);
    }
    expect([...homes].sort()).toEqual([b.id, c.id].sort());

    // A key goes home even from a host with room that holds a copy (one copy serves the key).
    const d = await caller(redis.url, cluster, 1);
    const self = (await d.cluster()).self;
    await until(d, self, () => true);
    const withD = (await d.cluster()).hosts.filter((h) => h.capacity > 0);
    const held = Array.from({ length: 64 }, (_, i) => `held-${i}`).find((k) => homeOf(k, withD)!.id !== self)!;
    const away = Array.from({ length: 64 }, (_, i) => `away-${i}`).find((k) => homeOf(k, withD)!.id !== self)!;
    expect((await d.invoke('count', held)).host).toBe(self); // no hint: it has room
    const again = await d.invoke('count', held, { stateKey: held });
    expect([again.host, again.returnCode]).toEqual([homeOf(held, withD)!.id, 2]); // the home pulls the pushed 1
    const sent = await d.invoke('count', away, { stateKey: away });
    expect(sent.host).toBe(homeOf(away, withD)!.id);
    // Hints are checked like other options, and change nothing on a single host.
    expect((await failure(d.invoke('count', 'x', { stateKey: '' }))).code).toBe(ErrorCode.INVALID_OPTION);
    const { rt: single } = await runtime({ workers: 1 });
    await single.register('count', guestBytes('state_local_count'));
    expect((await single.invoke('count', 'solo', { stateKey: 'solo' })).returnCode).toBe(1);
  });

  it('calls with one idempotency key at once on one host run it once', async () => {
    const cluster = newCluster();
    const c = await caller(redis.url, cluster, 4);
    await c.register('counter', guestBytes('state_counter'));
    const both = await Promise.all([0, 1].map(() => c.invoke('counter', `ctr-${cluster.name}`, { idempotencyKey: 'same' })));
    expect(both.map((r) => r.returnCode)).toEqual([1, 1]);
    expect((await c.invoke('counter', `ctr-${cluster.name}`)).returnCode).toBe(2);
    // A call joining a longer run still ends by its own deadline.
    await c.register('sleep', guestBytes('core_sleep'));
    const settled: string[] = [];
    const long = c.invoke('sleep', '1500', { idempotencyKey: 'joined', timeoutMs: 10_000 }).then((r) => (settled.push('long'), r));
    const short = failure(c.invoke('sleep', '1500', { idempotencyKey: 'joined', timeoutMs: 300 })).then((e) => (settled.push('short'), e));
    expect((await short).code).toBe(ErrorCode.TIMEOUT);
    expect(text((await long).output)).toBe('slept 1500');
    expect(settled).toEqual(['short', 'long']);
  });

  it('a keyed call whose code cannot be fetched records nothing and gives its lease back', async () => {
    const cluster = newCluster();
    await host(redis.url, cluster);
    const c = await caller(redis.url, cluster);
    await c.register('f', guestBytes('core_echo'));
    const prefix = `nuvola:cl:{${cluster.name}}:`;
    for (const k of await raw.keys(`${prefix}mod:*`)) await raw.del(k);
    expect((await failure(c.invoke('f', 'abc', { idempotencyKey: 'gone' }))).code).toBe(ErrorCode.UNKNOWN_FUNCTION);
    expect(await raw.exists(`${prefix}done:f gone`)).toBe(0);
    for (let i = 0; i < 40 && (await raw.exists(`${prefix}run:f gone`)) === 1; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await raw.exists(`${prefix}run:f gone`)).toBe(0);
    // Registered again, a retry with the key runs at once.
    await c.unregister('f');
    await c.register('f', guestBytes('core_echo'));
    expect(text((await c.invoke('f', 'abc', { idempotencyKey: 'gone' })).output)).toBe('cba');
  });

  it('a keyed call that reaches its host after its deadline records nothing: a retry runs it', async () => {
    const cluster = newCluster();
    const b = await host(redis.url, { ...cluster, capacity: 1 });
    const c = await caller(redis.url, cluster);
    await c.register('sleep', guestBytes('core_sleep'));
    const busy = c.invoke('sleep', '1000');
    await until(c, b.id, (h) => h.inflight === 1);
    expect((await failure(c.invoke('sleep', '5', { idempotencyKey: 'late', timeoutMs: 300 }))).code).toBe(ErrorCode.TIMEOUT);
    await busy;
    await until(c, b.id, (h) => h.inflight === 0 && h.remote === 2);
    expect(await raw.exists(`nuvola:cl:{${cluster.name}}:done:sleep late`)).toBe(0);
    expect(text((await c.invoke('sleep', '5', { idempotencyKey: 'late' })).output)).toBe('slept 5');
  });

  it("a call from a host that lacks the function gets the function's own timeout", async () => {
    const cluster = newCluster();
    await host(redis.url, cluster);
    const publisher = await caller(redis.url, cluster);
    await publisher.register('sleep', guestBytes('core_sleep'), { timeoutMs: 300 });
    const c = await caller(redis.url, cluster);
    expect((await failure(c.invoke('sleep', '1000'))).code).toBe(ErrorCode.TIMEOUT);
    expect(text((await c.invoke('sleep', '1000', { timeoutMs: 5000 })).output)).toBe('slept 1000');
  });

  it('a function registered again with other code runs the new code on hosts that fetched the old', async () => {
    const cluster = newCluster();
    const b = await host(redis.url, cluster);
    const c = await caller(redis.url, cluster);
    await c.register('f', guestBytes('core_echo'));
    expect(text((await c.invoke('f', 'abc')).output)).toBe('cba');
    await c.unregister('f');
    await c.register('f', guestBytes('chain_say'));
    const again = await c.invoke('f', 'abc');
    expect([text(again.output), again.host]).toEqual(['abc', b.id]);
  });

  it("a chained call runs on its parent's host when every host is full, instead of waiting forever", async () => {
    const cluster = newCluster();
    const b = await host(redis.url, { ...cluster, capacity: 1 });
    const c = await caller(redis.url, cluster);
    await c.register('say', guestBytes('chain_say'));
    await c.register('outputs', guestBytes('chain_outputs'));
    const result = await c.invoke('outputs', undefined, { timeoutMs: 10_000 });
    expect([text(result.output), result.host]).toEqual(['expected A|longer expected B', b.id]);
  });

  it('options: cluster needs redis, keys need cluster mode, a cluster of no takers says so', async () => {
    await expect(runtime({ cluster: { name: 'x', secret: SECRET } })).rejects.toMatchObject({
      code: ErrorCode.INVALID_OPTION,
      details: { path: 'options.redis' },
    });
    await expect(runtime({ redis: redis.url, cluster: { name: 'bad name', secret: SECRET } })).rejects.toMatchObject({
      code: ErrorCode.INVALID_OPTION,
    });
    const { rt } = await runtime({ workers: 1 });
    await rt.register('echo', guestBytes('core_echo'));
    expect((await failure(rt.invoke('echo', 'x', { idempotencyKey: 'k' }))).code).toBe(ErrorCode.INVALID_OPTION);
    expect((await failure(rt.cluster())).code).toBe(ErrorCode.INVALID_OPTION);
    const c = await caller(redis.url, newCluster());
    await c.register('echo', guestBytes('core_echo'));
    expect((await failure(c.invoke('echo', 'x'))).code).toBe(ErrorCode.CLUSTER_UNAVAILABLE);
  });

  it('a host that cannot reach Redis fails to start with E_CLUSTER_UNAVAILABLE', async () => {
    await expect(runtime({ workers: 1, redis: 'redis://127.0.0.1:1', cluster: { name: 'nobody', secret: SECRET } })).rejects.toMatchObject({
      code: ErrorCode.CLUSTER_UNAVAILABLE,
    });
  });
});

describe('messaging across hosts (invokeGroup with placement: hosts)', () => {
  it('collectives and ordered point-to-point messages between ranks on different hosts; a failing rank ends the group everywhere', async () => {
    const cluster = newCluster();
    const h1 = await host(redis.url, cluster);
    const h2 = await host(redis.url, cluster);
    const c = await caller(redis.url, cluster);
    await c.register('ops', guestBytes('comm_ops'), { timeoutMs: 10_000 });
    const group = async (size: number, mode: string): Promise<{ outputs: string[]; hosts: Set<string | undefined> }> => {
      const results = await c.invokeGroup('ops', size, mode, { placement: 'hosts' });
      return { outputs: results.map((r) => text(r.output)), hosts: new Set(results.map((r) => r.host)) };
    };
    const sum = await group(5, 'allreduce');
    expect(sum.outputs).toEqual(Array(5).fill('10,100,1000'));
    expect(sum.hosts).toEqual(new Set([h1.id, h2.id]));
    // Ranks 0 and 1 on different hosts: five round trips, in order.
    expect((await group(2, 'pingpong')).outputs[0]).toBe('2 4 6 8 10');
    expect((await group(4, 'scan')).outputs).toEqual(['1,0,0', '2,1,0', '3,3,0', '4,6,0']);
    expect((await group(5, 'mixed')).outputs).toEqual(Array.from({ length: 5 }, (_, r) => `b4 10,5,0 ${r === 1 ? 5 : 0}`));
    // State pushed before a barrier is seen by every rank after it, across hosts.
    expect((await group(4, 'barrier')).outputs).toEqual(Array(4).fill('saw 4 of 4'));
    const failed = await failure(c.invokeGroup('ops', 3, 'trapone', { placement: 'hosts' }));
    expect(failed.code).toBe(ErrorCode.GUEST_TRAP);
    expect(failed.details['rank']).toBe(1);
    // And the cluster serves the next group — also to a host that never registered the function.
    expect((await group(3, 'allreduce')).outputs).toEqual(Array(3).fill('3,30,300'));
    const other = await caller(redis.url, cluster);
    expect((await other.invokeGroup('ops', 2, 'allreduce', { placement: 'hosts' })).map((r) => text(r.output))).toEqual(
      Array(2).fill('1,10,100'),
    );
    expect((await failure(other.invokeGroup('nope', 2, 'x', { placement: 'hosts' }))).code).toBe(ErrorCode.UNKNOWN_FUNCTION);
    // Groups leave no message streams behind.
    await new Promise((r) => setTimeout(r, 100));
    expect(await raw.keys(`nuvola:cl:{${cluster.name}}:g:*`)).toEqual([]);
    const local = (await runtime({ workers: 1 })).rt;
    await local.register('ops', guestBytes('comm_ops'));
    expect((await failure(local.invokeGroup('ops', 2, 'allreduce', { placement: 'hosts' }))).code).toBe(ErrorCode.INVALID_OPTION);
    // Options of single calls are refused, not ignored.
    const keyed = await failure(c.invokeGroup('ops', 2, 'allreduce', { idempotencyKey: 'k' } as never));
    expect([keyed.code, keyed.details['path']]).toEqual([ErrorCode.INVALID_OPTION, 'options.idempotencyKey']);
  });

  it('ends a group whose rank on another host floods a rank here past maxQueuedMessageBytes', async () => {
    const cluster = newCluster();
    const limits = { workers: 1, redis: redis.url, cluster, maxQueuedMessageBytes: 256 * 1024 };
    hosts.push(await startHost(limits), await startHost(limits));
    const c = await caller(redis.url, cluster);
    await c.register('flood', guestBytes('comm_flood'), { timeoutMs: 10_000 });
    // Rank 1 never receives (it sleeps 5 s); 64 messages of 64 KiB from rank 0 on the other host.
    const err = await failure(c.invokeGroup('flood', 2, 'flood 64 64 5000', { placement: 'hosts' }));
    const cause = err.code === ErrorCode.COMM_ABORTED ? (err.details['cause'] as { code: string }).code : err.code;
    expect(cause).toBe('E_QUEUE_FULL');
    expect((await c.invokeGroup('flood', 2, 'acked 4 4 64', { placement: 'hosts' })).map((r) => text(r.output))).toEqual([
      '0',
      String(4 * 4 * 64 * 1024),
    ]);
  });

  it('two parts of one group on one host both get their messages', async () => {
    const cluster = newCluster();
    const a = await host(redis.url, { ...cluster, capacity: 4 });
    const b = await host(redis.url, { ...cluster, capacity: 1 });
    const c = await caller(redis.url, cluster);
    await c.register('ops', guestBytes('comm_ops'), { timeoutMs: 10_000 });
    await c.register('sleep', guestBytes('core_sleep'));
    // Keep b full (a call sent to it for a state key whose home it is): a takes both parts.
    const takers = (await c.cluster()).hosts.filter((h) => h.capacity > 0);
    const key = Array.from({ length: 64 }, (_, i) => `busy-${i}`).find((k) => homeOf(k, takers)!.id === b.id)!;
    const busy = c.invoke('sleep', '3000', { stateKey: key });
    await until(c, b.id, (h) => h.inflight === 1);
    const results = await c.invokeGroup('ops', 4, 'allreduce', { placement: 'hosts' });
    expect(results.map((r) => text(r.output))).toEqual(Array(4).fill('6,60,600'));
    expect(new Set(results.map((r) => r.host))).toEqual(new Set([a.id]));
    expect((await busy).host).toBe(b.id);
  });

  it('a host dying mid-group fails the group with E_WORKER_LOST rather than replaying its part', async () => {
    const cluster = newCluster();
    const h1 = await host(redis.url, { ...cluster, capacity: 4 });
    const h2 = await host(redis.url, { ...cluster, capacity: 4 });
    const c = await caller(redis.url, cluster);
    await c.register('ops', guestBytes('comm_ops'), { timeoutMs: 10_000 });
    expect((await c.invokeGroup('ops', 2, 'slowpong', { placement: 'hosts' }))[0]!.output).toEqual(
      new TextEncoder().encode('2 4 6 8 10 12 14 16 18 20'),
    );
    const group = failure(c.invokeGroup('ops', 2, 'slowpong', { placement: 'hosts' }));
    let victim: HostProcess | undefined;
    for (let i = 0; i < 200 && victim === undefined; i++) {
      const busy = (await c.cluster()).hosts.find((h) => h.inflight > 0);
      victim = [h1, h2].find((h) => h.id === busy?.id);
      if (victim === undefined) await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 400)); // a few rounds in
    await victim!.kill();
    const error = await group;
    expect(error.code).toBe(ErrorCode.WORKER_LOST);
    expect(error.message).toMatch(/died \(or restarted\) mid-run/);
  });
});

describe('nuvola cluster up', () => {
  it('starts hosts, spreads a burst over them, and survives killing one', async () => {
    const lines: string[] = [];
    await clusterUp(2, { redisUrl: redis.url, calls: 60 }, (line) => lines.push(line));
    expect(lines[1]).toMatch(/^started 2 host processes: /);
    expect(lines[3]).toMatch(/^60 calls of 'hello' in \d+ ms .*first answer "Hello call 0"; by host:$/);
    const killed = lines.findIndex((l) => l.startsWith('killed '));
    expect(killed).toBeGreaterThan(3);
    expect(lines[killed + 1]).toMatch(/^all 8 naps answered, once each; [1-8] finished after the kill \+ 1 s \(taken over by \S+\)/);
    expect(lines[killed + 2]).toMatch(/^retried with its idempotency key, nap 0 answers from the record/);
  });
});

describe('faults (real processes on loopback)', () => {
  it('a host killed with calls in flight: every call completes once for its caller, keyed retries do not run again', async () => {
    const cluster = newCluster();
    const victim = await host(redis.url, { ...cluster, capacity: 4 });
    const c = await caller(redis.url, cluster);
    await c.register('sleep', guestBytes('core_sleep'));
    const keyed = Array.from({ length: 4 }, (_, i) => c.invoke('sleep', '3000', { idempotencyKey: `kill-${i}`, timeoutMs: 15_000 }));
    await until(c, victim.id, (h) => h.inflight === 4);
    const plain = Array.from({ length: 2 }, () => c.invoke('sleep', '3000', { timeoutMs: 15_000 }));
    // Killed long before its 3 s sleeps end; the survivor starts after (however slow it is to
    // start, the calls wait in Redis for it).
    await victim.kill();
    const survivor = await host(redis.url, { ...cluster, capacity: 8 });
    const results = await Promise.all([...keyed, ...plain]);
    expect(results.map((r) => text(r.output))).toEqual(Array(6).fill('slept 3000'));
    // The killed host's calls were taken over; the survivor answered all of them.
    expect(results.every((r) => r.host === survivor.id)).toBe(true);
    expect(survivor.log.some((l) => l.includes(`took over 4 unanswered calls of dead host '${victim.id}'`))).toBe(true);
    // Retried with their keys, they answer from the record: same output, no second run (which
    // would time out).
    const retried = await Promise.all(
      Array.from({ length: 4 }, (_, i) => c.invoke('sleep', '3000', { idempotencyKey: `kill-${i}`, timeoutMs: 1000 })),
    );
    expect(retried.map((r) => text(r.output))).toEqual(Array(4).fill('slept 3000'));
    expect(await unanswered(cluster.name)).toBe(0);
  });

  it("a killed host's calls sent to it for their state key are taken over, the waiting ones too", async () => {
    const cluster = newCluster();
    const b = await host(redis.url, { ...cluster, capacity: 1 });
    const c = await host(redis.url, { ...cluster, capacity: 1 });
    const a = await caller(redis.url, cluster);
    await a.register('sleep', guestBytes('core_sleep'));
    await until(a, b.id, () => true);
    await until(a, c.id, () => true);
    const home = (await a.invoke('sleep', '1', { stateKey: 'cart' })).host!;
    const [victim, survivor] = home === b.id ? [b, c] : [c, b];
    // Let the caller's view of the home's load (from heartbeats) show it idle again.
    await until(a, victim.id, (h) => h.inflight === 0);
    await new Promise((r) => setTimeout(r, 3 * FAST.heartbeatMs));
    const queue = `nuvola:cl:{${cluster.name}}:work:${victim.id}`;
    // Sent at once, all three go to the home's own stream: it runs one, two wait there.
    const calls = Array.from({ length: 3 }, (_, i) =>
      a.invoke('sleep', '800', { stateKey: 'cart', idempotencyKey: `cart-${i}`, timeoutMs: 15_000 }),
    );
    await until(a, victim.id, (h) => h.inflight === 1);
    expect(await raw.xlen(queue)).toBe(3);
    await victim.kill();
    const results = await Promise.all(calls);
    expect(results.map((r) => text(r.output))).toEqual(Array(3).fill('slept 800'));
    expect(results.every((r) => r.host === survivor.id)).toBe(true);
    // The dead host's own stream is gone once emptied, and nothing is left unanswered.
    for (let i = 0; i < 100 && (await raw.exists(queue)) === 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await raw.exists(queue)).toBe(0);
    expect(await unanswered(cluster.name)).toBe(0);
    // The key's home is now the survivor.
    expect((await a.invoke('sleep', '1', { stateKey: 'cart' })).host).toBe(survivor.id);
  });

  it('a host restarted under its id runs the calls its previous life took, then new ones', async () => {
    const cluster = newCluster();
    const hostId = `fixed-${cluster.name}`;
    const first = await host(redis.url, { ...cluster, hostId });
    const c = await caller(redis.url, cluster);
    await c.register('sleep', guestBytes('core_sleep'));
    const owed = c.invoke('sleep', '1500', { timeoutMs: 20_000 });
    await until(c, first.id, (h) => h.inflight === 1);
    await first.kill();
    const second = await host(redis.url, { ...cluster, hostId });
    const result = await owed;
    expect([text(result.output), result.host]).toEqual(['slept 1500', hostId]);
    expect((await c.invoke('sleep', '1', { timeoutMs: 5000 })).host).toBe(second.id);
    expect(await unanswered(cluster.name)).toBe(0);
  });

  it('a Redis that stops answering (SIGSTOP): calls settle by their deadline with a coded error', async () => {
    const own = await startRedis();
    try {
      const cluster = newCluster();
      await host(own.url, cluster);
      const c = await caller(own.url, cluster, 1);
      await c.register('sleep', guestBytes('core_sleep'));
      await c.invoke('sleep', '1'); // here: it has room
      own.signal('SIGSTOP');
      const started = Date.now();
      const calls = [
        // Here (it has room): waits on Redis to start its key, and holds the one slot…
        failure(c.invoke('sleep', '1', { timeoutMs: 1000, idempotencyKey: 'stopped' })),
        // …so this one is sent through the work stream.
        failure(c.invoke('sleep', '1', { timeoutMs: 1000 })),
      ];
      const errors = await Promise.all(calls);
      for (const e of errors) expect([ErrorCode.TIMEOUT, ErrorCode.CLUSTER_UNAVAILABLE]).toContain(e.code);
      // Each settled by its deadline (1 s), or the command timeout (max(1 s, hostTimeoutMs)) — not when Redis came back.
      expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      own.signal('SIGCONT');
      await own.stop();
    }
  });

  it('Redis restarted without persistence: hosts publish their functions again for hosts that join later', async () => {
    const own = await startRedis();
    const check = new Redis(own.url);
    try {
      const cluster = newCluster();
      const b = await host(own.url, cluster);
      const c = await caller(own.url, cluster);
      await c.register('echo', guestBytes('core_echo'));
      expect((await c.invoke('echo', 'abc')).host).toBe(b.id);
      await own.stop();
      await own.start(); // same port, no data
      const fn = `nuvola:cl:{${cluster.name}}:fn`;
      for (let i = 0; i < 200 && (await check.hexists(fn, 'echo').catch(() => 0)) === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await check.hexists(fn, 'echo')).toBe(1);
      // A host that never loaded it can fetch it now.
      const d = await host(own.url, cluster);
      await b.kill();
      const result = await c.invoke('echo', 'xyz', { timeoutMs: 10_000 });
      expect([text(result.output), result.host]).toEqual(['zyx', d.id]);
    } finally {
      check.disconnect();
      await own.stop();
    }
  });

  it('when every host is gone, a call fails with a coded error instead of hanging', async () => {
    const cluster = newCluster();
    const only = await host(redis.url, cluster);
    const c = await caller(redis.url, cluster);
    await c.register('sleep', guestBytes('core_sleep'));
    const sent = c.invoke('sleep', '2000', { timeoutMs: 1500 });
    await until(c, only.id, (h) => h.inflight === 1);
    await only.kill();
    expect((await failure(sent)).code).toBe(ErrorCode.TIMEOUT);
    // Once its heartbeat has expired, new calls are refused at once.
    await new Promise((r) => setTimeout(r, FAST.hostTimeoutMs + 200));
    expect((await failure(c.invoke('sleep', '1', { timeoutMs: 5000 }))).code).toBe(ErrorCode.CLUSTER_UNAVAILABLE);
  });

  it('Redis restarted mid-run: hosts reconnect and carry on, nothing acknowledged is lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuvola-aof-'));
    const durable = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]);
    try {
      const cluster = { ...newCluster(), hostTimeoutMs: 3000 };
      await host(durable.url, cluster);
      const c = await caller(durable.url, cluster);
      await c.register('sleep', guestBytes('core_sleep'));
      const sent = Array.from({ length: 6 }, (_, i) => c.invoke('sleep', '700', { idempotencyKey: `restart-${i}`, timeoutMs: 20_000 }));
      await new Promise((r) => setTimeout(r, 200));
      await durable.stop();
      await new Promise((r) => setTimeout(r, 400));
      await durable.start();
      const results = await Promise.all(sent);
      expect(results.map((r) => text(r.output))).toEqual(Array(6).fill('slept 700'));
      // And it carries on, once its command connection is back too (until then calls fail at
      // once with E_CLUSTER_UNAVAILABLE, as documented; the replies above came on another).
      for (
        let i = 0;
        i < 100 &&
        !(await c.cluster().then(
          () => true,
          () => false,
        ));
        i++
      )
        await new Promise((r) => setTimeout(r, 50));
      expect(text((await c.invoke('sleep', '1')).output)).toBe('slept 1');
    } finally {
      await durable.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a host whose Redis connection turns slow: its keyed calls are taken over and recorded once', async () => {
    const cluster = newCluster();
    const proxy = await delayingProxy(redis.port);
    try {
      const slow = await host(`redis://127.0.0.1:${proxy.port}`, { ...cluster, capacity: 4 });
      const c = await caller(redis.url, cluster);
      await c.register('sleep', guestBytes('core_sleep'));
      const sent = Array.from({ length: 4 }, (_, i) => c.invoke('sleep', '2500', { idempotencyKey: `slow-${i}`, timeoutMs: 20_000 }));
      await until(c, slow.id, (h) => h.inflight === 4);
      const fast = await host(redis.url, { ...cluster, capacity: 8 });
      // Everything the slow host sends or receives now arrives 3 s late: past its host timeout.
      proxy.delayMs = 3000;
      const results = await Promise.all(sent);
      expect(results.map((r) => text(r.output))).toEqual(Array(4).fill('slept 2500'));
      // One record per key, and every answer is that record (whichever host ran it first).
      for (let i = 0; i < 4; i++) {
        const record = await raw.getBuffer(`nuvola:cl:{${cluster.name}}:done:sleep slow-${i}`);
        expect(record).not.toBeNull();
        expect(record!.toString()).toContain(`"host":"${results[i]!.host!}"`);
      }
      expect(results.some((r) => r.host === fast.id)).toBe(true);
      proxy.delayMs = 0;
      // The slow host's late answers change nothing: retries still get the recorded results.
      await new Promise((r) => setTimeout(r, 3500));
      const retried = await Promise.all(
        Array.from({ length: 4 }, (_, i) => c.invoke('sleep', '2500', { idempotencyKey: `slow-${i}`, timeoutMs: 1000 })),
      );
      expect(retried.map((r) => r.host)).toEqual(results.map((r) => r.host));
      expect(await unanswered(cluster.name)).toBe(0);
    } finally {
      proxy.close();
    }
  });
});

/** A TCP proxy to Redis that can hold every chunk back by `delayMs`, keeping order. */
async function delayingProxy(target: number): Promise<{ port: number; delayMs: number; close(): void }> {
  const sockets = new Set<Socket>();
  const state = { delayMs: 0 };
  const relay = (from: Socket, to: Socket): void => {
    let last = 0;
    from.on('data', (chunk) => {
      const at = Math.max(last, Date.now() + state.delayMs);
      last = at;
      setTimeout(() => to.destroyed || to.write(chunk), at - Date.now());
    });
    from.on('close', () => setTimeout(() => to.destroy(), Math.max(0, last - Date.now())));
  };
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    relay(client, upstream);
    relay(upstream, client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
