// Cluster mode at scale (issue 21), with a real redis-server and host processes on loopback:
// calls batched both ways (one XADD entry for a burst, replies and acknowledgements together),
// a batch split when its taker has less room, and work streams partitioned over several hash
// tags — spread, recovered after a host is killed, and read by hosts configured apart.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from 'nuvola';
import { packBatch } from '../dist/cluster/codec.js';
import { partitionTags, slotOf } from '../dist/cluster/keys.js';
import { startHost, type HostProcess } from '../dist/cluster/spawn.js';
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

const SECRET = 'test-cluster-secret-0123456789abcdef';

function newCluster(extra: Record<string, unknown> = {}): { name: string; secret: string } & Record<string, unknown> {
  return { name: `s${process.pid}-${++clusterSeq}`, secret: SECRET, heartbeatMs: 100, hostTimeoutMs: 600, ...extra };
}

async function host(cluster: Record<string, unknown>): Promise<HostProcess> {
  const h = await startHost({ workers: 1, redis: redis.url, cluster: cluster as { name: string; secret: string } });
  hosts.push(h);
  return h;
}

async function caller(cluster: Record<string, unknown>): Promise<Runtime> {
  return (await runtime({ workers: 1, redis: redis.url, cluster: { ...(cluster as { name: string; secret: string }), capacity: 0 } })).rt;
}

/** Commands of one kind Redis has run so far (INFO commandstats). */
async function commands(name: string): Promise<number> {
  const m = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(await raw.info('commandstats'));
  return Number(m?.[1] ?? 0);
}

/** Entries ever added to a stream (0 when it does not exist). */
async function added(stream: string): Promise<number> {
  const info = (await raw.xinfo('STREAM', stream).catch(() => null)) as unknown[] | null;
  if (info === null) return 0;
  return Number(info[info.indexOf('entries-added') + 1]);
}

/** Polls until `ok` holds (every 25 ms, at most 5 s). */
async function until(ok: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Until `rt` lists host `id`, and then a few heartbeats (its own view of the hosts, which sizes batches, is from them). */
async function sees(rt: Runtime, id: string): Promise<void> {
  await until(async () => (await rt.cluster()).hosts.some((h) => h.id === id), `host ${id} is seen`);
  await sleep(300);
}

describe('partition keys', () => {
  it('slots are Redis Cluster slots, and partitions land in separate slot ranges', () => {
    // CLUSTER KEYSLOT of these in Redis: the CRC16 check value and two known keys.
    expect(slotOf('123456789')).toBe(12739);
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('user1000')).toBe(3443);
    for (const n of [1, 3, 6, 12]) {
      const tags = partitionTags('prod', n);
      expect(tags[0]).toBe('prod');
      expect(new Set(tags.map((t) => Math.floor((slotOf(t) * n) / 16384))).size).toBe(n);
    }
  });
});

describe('batching', () => {
  it('a burst from one caller leaves in a few entries and is answered in a few; each call gets its own answer', async () => {
    const cluster = newCluster();
    const b = await host({ ...cluster, capacity: 64 });
    const c = await caller(cluster);
    await c.register('echo', guestBytes('core_echo'));
    await sees(c, b.id);
    // A lone call: its own entry, its own reply.
    const before = await commands('xadd');
    expect(text((await c.invoke('echo', 'lone')).output)).toBe('enol');
    expect((await commands('xadd')) - before).toBe(2);
    const burst = Array.from({ length: 300 }, (_, i) => `call-${i}`);
    const start = await commands('xadd');
    const results = await Promise.all(burst.map((input) => c.invoke('echo', input)));
    expect(results.map((r) => text(r.output))).toEqual(burst.map((s) => [...s].reverse().join('')));
    expect(results.every((r) => r.host === b.id)).toBe(true);
    // Calls and replies together: without batching, 600 XADDs.
    expect((await commands('xadd')) - start).toBeLessThan(60);
    // Every entry acknowledged and deleted.
    const work = `nuvola:cl:{${cluster.name}}:work`;
    await until(async () => (await raw.xlen(work)) === 0, 'the work stream is empty');
    expect(((await raw.xpending(work, 'hosts')) as [number])[0]).toBe(0);
  });

  it('a batch larger than its taker’s room is split: the rest goes back for a host with room', async () => {
    const cluster = newCluster();
    const small = await host({ ...cluster, capacity: 2 });
    const gone = await host({ ...cluster, capacity: 8 });
    const c = await caller(cluster);
    await c.register('sleep', guestBytes('core_sleep'));
    await sees(c, small.id);
    await sees(c, gone.id);
    // The caller still counts the killed host (until its heartbeat expires): a batch of 8 (the
    // roomiest host's capacity), and only the small host reads it.
    await gone.kill();
    const sent = Array.from({ length: 8 }, () => c.invoke('sleep', '3000', { timeoutMs: 30_000 }));
    const big = await host({ ...cluster, capacity: 8 });
    let most = 0;
    const results = Promise.all(sent);
    let done = false;
    void results.then(() => (done = true));
    while (!done) {
      const seen = (await c.cluster()).hosts.find((h) => h.id === small.id);
      most = Math.max(most, seen?.inflight ?? 0);
      await sleep(25);
    }
    expect((await results).map((r) => text(r.output))).toEqual(Array(8).fill('slept 3000'));
    // Never more than its capacity on the small host; the rest ran on the host that came.
    expect(most).toBe(2);
    expect((await results).filter((r) => r.host === big.id).length).toBeGreaterThanOrEqual(4);
  });
});

describe('keyed calls', () => {
  it('a burst of calls with idempotency keys: one begin script and one record script per batch, each key run once', async () => {
    const cluster = newCluster();
    const b = await host({ ...cluster, capacity: 64 });
    const c = await caller(cluster);
    await c.register('echo', guestBytes('core_echo'));
    await sees(c, b.id);
    const before = await commands('evalsha');
    const start = Date.now();
    const keys = Array.from({ length: 60 }, (_, i) => `k-${i}`);
    const first = await Promise.all(keys.map((k) => c.invoke('echo', k, { idempotencyKey: k })));
    expect(first.map((r) => text(r.output))).toEqual(keys.map((k) => [...k].reverse().join('')));
    // One begin and one record per key, without batching: 120 scripts. Heartbeats are scripts
    // too (one a beat from each of the two runtimes, every 100 ms): a loaded machine makes the
    // burst slower and adds more of them, so they are taken off (counting generously).
    const beats = 2 * (Math.ceil((Date.now() - start) / 100) + 1);
    expect((await commands('evalsha')) - before - beats).toBeLessThan(60);
    for (const k of keys) expect(await raw.exists(`nuvola:cl:{${cluster.name}}:done:echo ${k}`)).toBe(1);
    // Again: every one answers from its record (a different input would be a conflict).
    const again = await Promise.all(keys.map((k) => c.invoke('echo', k, { idempotencyKey: k })));
    expect(again.map((r) => r.host)).toEqual(first.map((r) => r.host));
    const conflict = await c.invoke('echo', 'other', { idempotencyKey: 'k-0' }).catch((e: { code: string }) => e.code);
    expect(conflict).toBe('E_IDEMPOTENCY_CONFLICT');
  });
});

describe('batches and the secret', () => {
  it('a batch entry without a valid MAC is dropped whole, never run, counted; the host keeps serving', async () => {
    const cluster = newCluster();
    const b = await host({ ...cluster, capacity: 8 });
    const c = await caller(cluster);
    await c.register('echo', guestBytes('core_echo'));
    await sees(c, b.id);
    const self = (await c.cluster()).self;
    const work = `nuvola:cl:{${cluster.name}}:work`;
    // Well-formed calls, as a host would batch them, under a MAC made without the secret.
    const calls = ['x1', 'x2'].map((id) => ['id', id, 'from', self, 'dl', String(Date.now() + 10_000), 'fn', 'echo', 'in', 'forged']);
    await raw.xadd(work, '*', 'b', packBatch(calls), 'm', Buffer.alloc(32, 1));
    await raw.xadd(work, '*', 'b', packBatch(calls)); // and with none
    await until(() => b.log.some((l) => l.includes('dropped batch entry') && l.includes('failed verification')), 'the host says so');
    await until(async () => (await raw.xlen(work)) === 0, 'both are acknowledged and deleted');
    await sleep(300); // a few heartbeats: the host's count of calls it took
    expect((await c.cluster()).hosts.find((h) => h.id === b.id)?.remote ?? -1).toBe(0);
    expect(text((await c.invoke('echo', 'real')).output)).toBe('laer');
  });
});

describe('partitions', () => {
  it('calls spread over every partition; a killed host’s calls are recovered from each; idempotency holds across them', async () => {
    const cluster = newCluster({ partitions: 3 });
    const victim = await host({ ...cluster, capacity: 9 });
    const c = await caller(cluster);
    await c.register('sleep', guestBytes('core_sleep'));
    await sees(c, victim.id);
    const parts = [0, 1, 2].map((p) =>
      p === 0 ? `nuvola:cl:{${cluster.name}}:work` : `nuvola:cl:{${partitionTags(cluster.name, 3)[p]}}:work`,
    );
    // Three turns: three batches, each to the next partition.
    const sent: Promise<{ output: Uint8Array; host?: string }>[] = [];
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 3; i++) sent.push(c.invoke('sleep', '2000', { idempotencyKey: `p-${t}-${i}`, timeoutMs: 20_000 }));
      await sleep(30);
    }
    for (const part of parts) await until(async () => (await added(part)) > 0, `an entry in ${part}`);
    await until(async () => (await c.cluster()).hosts.find((h) => h.id === victim.id)?.inflight === 9, 'the victim runs all 9');
    await victim.kill();
    const survivor = await host({ ...cluster, capacity: 9 });
    const results = await Promise.all(sent);
    expect(results.map((r) => text(r.output))).toEqual(Array(9).fill('slept 2000'));
    expect(results.every((r) => r.host === survivor.id)).toBe(true);
    const taken = survivor.log
      .map((l) => /took over (\d+) unanswered calls of dead host '([^']+)'/.exec(l))
      .filter((m) => m !== null && m[2] === victim.id)
      .reduce((n, m) => n + Number(m![1]), 0);
    expect(taken).toBe(9);
    for (const part of parts) expect(((await raw.xpending(part, 'hosts')) as [number])[0]).toBe(0);
    // The dead host is forgotten once nothing of it is left in any partition.
    await until(async () => (await raw.zscore(`nuvola:cl:{${cluster.name}}:alive`, victim.id)) === null, 'the victim is forgotten');
    // Retried with their keys (each now bound for another partition than before): the record answers.
    const again = await Promise.all(
      Array.from({ length: 3 }, (_, t) => c.invoke('sleep', '2000', { idempotencyKey: `p-${t}-0`, timeoutMs: 1000 })),
    );
    expect(again.map((r) => text(r.output))).toEqual(Array(3).fill('slept 2000'));
  });

  it('a cluster has one partition count: hosts configured otherwise take the first host’s', async () => {
    const cluster = newCluster();
    const b = await host({ ...cluster, partitions: 1 });
    const c = (await runtime({ workers: 1, redis: redis.url, cluster: { ...cluster, capacity: 0, partitions: 4 } })).rt;
    await c.register('echo', guestBytes('core_echo'));
    await sees(c, b.id);
    const view = await c.cluster();
    expect(view.hosts.find((h) => h.id === view.self)?.partitions).toBe(1);
    expect(await raw.get(`nuvola:cl:{${cluster.name}}:partitions`)).toBe('1');
    for (let t = 0; t < 4; t++) {
      expect(text((await c.invoke('echo', `t${t}`, { timeoutMs: 5000 })).output)).toBe(`${t}t`);
      await sleep(30);
    }
    for (const tag of partitionTags(cluster.name, 4).slice(1)) expect(await added(`nuvola:cl:{${tag}}:work`)).toBe(0);
  });
});
