// Cluster mode against a Redis client without the cluster's secret: a real redis-server, hosts
// and callers as runtimes in this process (so their `rejected` counts can be read), and a raw
// ioredis client playing whoever else can write to that Redis.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NuvolaError, type Runtime } from 'nuvola';
import { encode, moduleHash } from '../dist/cluster/cluster.js';
import { startRedis, type TestRedis } from '../bench/redis-server.js';
import { closedAfterEach, guestBytes, text } from './helpers.js';

const runtime = closedAfterEach();
let redis: TestRedis;
let raw: Redis;
let seq = 0;
const SECRET = 'trust-test-secret-0123456789abcdef';
const OTHER = 'another-secret-entirely-0123456789';

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});
afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

interface Cl {
  name: string;
  secret: string | string[];
  heartbeatMs: number;
  hostTimeoutMs: number;
}

const newCluster = (): Cl => ({ name: `trust${process.pid}-${++seq}`, secret: SECRET, heartbeatMs: 100, hostTimeoutMs: 600 });
const prefix = (c: Cl): string => `nuvola:cl:{${c.name}}:`;

async function member(cluster: Cl, capacity: number, extra: Record<string, unknown> = {}): Promise<Runtime> {
  return (await runtime({ workers: 1, redis: redis.url, cluster: { ...cluster, capacity, ...extra } })).rt;
}

async function failure(p: Promise<unknown>): Promise<NuvolaError> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: NuvolaError) => e,
  );
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

/** Waits until `caller` sees `count` hosts that take calls (heartbeats every 100 ms). */
async function takers(caller: Runtime, count: number): Promise<void> {
  await eventually(async () => (await caller.cluster()).hosts.filter((h) => h.capacity > 0).length === count, `${count} hosts`);
}

/** The fields of the first entry of `stream` calling `fn`, as name → value. */
async function entryOf(stream: string, fn: string): Promise<Map<string, Buffer> | undefined> {
  const entries = (await raw.xrangeBuffer(stream, '-', '+')) as [Buffer, Buffer[]][];
  for (const [, fields] of entries) {
    const map = new Map<string, Buffer>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString(), fields[i + 1]!);
    if (map.get('fn')?.toString() === fn) return map;
  }
  return undefined;
}

describe('the cluster secret', () => {
  it('is required, at least 32 characters, and never repeated in the error', async () => {
    await expect(runtime({ redis: redis.url, cluster: { name: 'x' } as never })).rejects.toMatchObject({
      code: ErrorCode.INVALID_OPTION,
      details: { path: 'options.cluster.secret' },
    });
    const short = 'short-secret-value-xyz';
    const err = await failure(runtime({ redis: redis.url, cluster: { name: 'x', secret: short } }));
    expect([err.code, err.details['path']]).toEqual([ErrorCode.INVALID_OPTION, 'options.cluster.secret']);
    expect(err.message).not.toContain(short);
    await expect(runtime({ redis: redis.url, cluster: { name: 'x', secret: [SECRET, short] } })).rejects.toMatchObject({
      details: { path: 'options.cluster.secret' },
    });
    await expect(runtime({ redis: redis.url, cluster: { name: 'x', secret: [] } })).rejects.toMatchObject({
      details: { path: 'options.cluster.secret' },
    });
  });

  it('a host with another secret is not seen and takes nothing; rotation keeps hosts one step apart talking', async () => {
    const cluster = newCluster();
    const stranger = await member({ ...cluster, secret: OTHER }, 4);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await eventually(async () => (await c.cluster()).rejected.hosts > 0, "the stranger's heartbeat dropped");
    expect((await c.cluster()).hosts.map((h) => h.id)).toEqual([(await c.cluster()).self]);
    expect((await failure(c.invoke('echo', 'abc'))).code).toBe(ErrorCode.CLUSTER_UNAVAILABLE);
    await stranger.close();

    // Rotation, hosts one step apart: step 1 [old, new] and step 2 [new, old] talk; then step 2
    // and step 3 [new] do.
    const NEW = 'the-new-secret-of-the-rotation-0123';
    const rotating = newCluster();
    const step1 = await member({ ...rotating, secret: [SECRET, NEW] }, 4);
    const step2 = await member({ ...rotating, secret: [NEW, SECRET] }, 0);
    await step2.register('echo', guestBytes('core_echo'));
    await takers(step2, 1);
    expect(text((await step2.invoke('echo', 'abc')).output)).toBe('cba');
    await step1.close();
    const step3 = await member({ ...rotating, secret: NEW }, 4);
    await takers(step2, 1);
    expect(text((await step2.invoke('echo', 'xy')).output)).toBe('yx');
    expect((await step3.cluster()).rejected).toMatchObject({ calls: 0, hosts: 0, functions: 0 });
    expect((await step2.cluster()).rejected).toMatchObject({ replies: 0 });
  });
});

describe('a Redis client without the secret', () => {
  it('cannot register a function: a forged registry entry is never run, and a host registering the name replaces it', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 4);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await takers(c, 1);
    const hash = moduleHash(guestBytes('core_echo'));
    const grant = { wasi: { dirs: [{ host: '/', writable: true }] } };
    // The form a registry entry had before (no MAC), and one with a MAC made up.
    await raw.hset(`${prefix(cluster)}fn`, 'evil', JSON.stringify({ hash, options: grant }));
    await raw.hset(`${prefix(cluster)}fn`, 'evil2', JSON.stringify({ hash, o: JSON.stringify(grant), mac: '00'.repeat(32) }));
    for (const name of ['evil', 'evil2']) {
      const err = await failure(c.invoke(name, 'abc'));
      expect([err.code, err.details['function']]).toEqual([ErrorCode.CLUSTER_INTEGRITY, name]);
    }
    expect(h.functions()).not.toContain('evil');
    expect((await h.cluster()).rejected.functions).toBeGreaterThanOrEqual(2);
    // A forged entry does not take a name away from the cluster's hosts.
    await raw.hset(`${prefix(cluster)}fn`, 'taken', JSON.stringify({ hash: 'f'.repeat(64), o: '{}', mac: '00' }));
    await c.register('taken', guestBytes('core_echo'));
    expect(text((await c.invoke('taken', 'abc')).output)).toBe('cba');
  });

  it('cannot inject a call or alter one in the work stream: it is dropped, never run, never answered', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 1);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await c.register('sleep', guestBytes('core_sleep'));
    await takers(c, 1);
    const work = `${prefix(cluster)}work`;
    // Injected: a call with a reply route of the injector's choosing.
    await raw.xadd(work, '*', 'id', 'injected', 'from', 'attacker', 'dl', String(Date.now() + 60_000), 'fn', 'echo', 'in', 'abc');
    await eventually(async () => (await h.cluster()).rejected.calls === 1, 'the injected call dropped');
    expect(await raw.exists(`${prefix(cluster)}reply:attacker`)).toBe(0);
    const view = await h.cluster();
    expect(view.hosts.find((x) => x.id === view.self)!.remote).toBe(0);

    // Altered: a genuine call copied with other input (its MAC kept) while the host is busy.
    const busy = c.invoke('sleep', '1000');
    await eventually(async () => (await c.cluster()).hosts.some((x) => x.capacity > 0 && x.inflight === 1), 'the host busy');
    const call = c.invoke('echo', 'abc');
    let genuine: Map<string, Buffer> | undefined;
    await eventually(async () => (genuine = await entryOf(work, 'echo')) !== undefined, 'the call in the stream');
    const altered = [...genuine!].flatMap(([k, v]) => [k, k === 'in' ? Buffer.from('evil input') : k === 'id' ? Buffer.from('x') : v]);
    await raw.xadd(work, '*', ...altered);
    expect(text((await call).output)).toBe('cba');
    await busy;
    await eventually(async () => (await h.cluster()).rejected.calls === 2, 'the altered call dropped');
    await eventually(async () => (await raw.xlen(work)) === 0, 'the stream emptied');
  });

  it('cannot forge a reply: the caller drops it and takes the real one', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 1);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await c.register('sleep', guestBytes('core_sleep'));
    await takers(c, 1);
    const busy = h.invoke('sleep', '1000');
    await eventually(async () => (await c.cluster()).hosts.some((x) => x.capacity > 0 && x.inflight === 1), 'the host busy');
    const call = c.invoke('echo', 'abc');
    let entry: Map<string, Buffer> | undefined;
    await eventually(async () => (entry = await entryOf(`${prefix(cluster)}work`, 'echo')) !== undefined, 'the call in the stream');
    const id = entry!.get('id')!.toString();
    const reply = `${prefix(cluster)}reply:${entry!.get('from')!.toString()}`;
    const forged = encode({ output: new TextEncoder().encode('forged'), returnCode: 0 });
    await raw.xadd(reply, '*', 'id', id, 'r', forged);
    await raw.xadd(reply, '*', 'id', id, 'r', forged, 'm', Buffer.alloc(32));
    await eventually(async () => (await c.cluster()).rejected.replies === 2, 'the forged replies dropped');
    expect(text((await call).output)).toBe('cba');
    await busy;
  });

  it('cannot swap the stored bytes of a function: the host checks them against their hash', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 4);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await takers(c, 1);
    await raw.set(`${prefix(cluster)}mod:${moduleHash(guestBytes('core_echo'))}`, Buffer.from(guestBytes('chain_say')));
    const err = await failure(c.invoke('echo', 'abc'));
    expect([err.code, err.details['function']]).toEqual([ErrorCode.CLUSTER_INTEGRITY, 'echo']);
    expect(h.functions()).not.toContain('echo');
    expect((await h.cluster()).rejected.modules).toBe(1);
    // Registered again, the real bytes are stored again (over the planted ones).
    await c.unregister('echo');
    await c.register('echo', guestBytes('core_echo'));
    expect(text((await c.invoke('echo', 'abc')).output)).toBe('cba');
  });

  it('cannot plant an idempotency record: the call runs, and its real result is recorded', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 4);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await takers(c, 1);
    const done = `${prefix(cluster)}done:echo planted`;
    await raw.set(done, encode({ output: new TextEncoder().encode('forged'), returnCode: 7 }));
    const result = await c.invoke('echo', 'abc', { idempotencyKey: 'planted' });
    expect([text(result.output), result.returnCode]).toEqual(['cba', 3]);
    expect((await h.cluster()).rejected.records).toBe(1);
    expect((await raw.getBuffer(done))!.toString()).not.toContain('forged');
    expect(text((await c.invoke('echo', 'abc', { idempotencyKey: 'planted' })).output)).toBe('cba');
  });
});

describe('groups over hosts', () => {
  it('a message or a failure injected into a running group is dropped: the group completes as if alone', async () => {
    const cluster = newCluster();
    const hosts = [await member(cluster, 4), await member(cluster, 4)];
    const c = await member(cluster, 0);
    await c.register('ops', guestBytes('comm_ops'), { timeoutMs: 20_000 });
    await takers(c, 2);
    // Ten rounds of 150 ms: rank 1 doubles what rank 0 sends.
    const group = c.invokeGroup('ops', 2, 'slowpong', { placement: 'hosts' });
    let part: Map<string, Buffer> | undefined;
    await eventually(async () => (part = await entryOf(`${prefix(cluster)}work`, 'ops')) !== undefined, 'a part in the stream');
    const gid = part!.get('gid')!.toString();
    const error = JSON.stringify({ code: ErrorCode.GUEST_TRAP, message: 'forged failure', details: {} });
    await raw.xadd(`${prefix(cluster)}g:${gid}:1`, '*', 'f', '0', 's', '1000', 'd', '999', 'm', Buffer.alloc(32));
    await raw.xadd(`${prefix(cluster)}g:${gid}:1`, '*', 'f', '0', 'd', '999');
    await raw.xadd(`${prefix(cluster)}g:${gid}:ctl`, '*', 'e', error);
    const results = await group;
    expect(text(results[0]!.output)).toBe('2 4 6 8 10 12 14 16 18 20');
    const dropped = await Promise.all(hosts.map(async (h) => (await h.cluster()).rejected.messages));
    expect(dropped.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
  });
});

describe('grants', () => {
  it("a fetched function gets only the directories and environment the host's cluster.grants gives", async () => {
    const base = mkdtempSync(join(tmpdir(), 'nuvola-grants-'));
    try {
      const data = join(base, 'data');
      const elsewhere = mkdtempSync(join(tmpdir(), 'nuvola-elsewhere-'));
      mkdirSync(data);
      symlinkSync(elsewhere, join(data, 'link'));
      // One cluster per host, so that each call goes to the host under test.
      const cases: [Record<string, unknown>, Record<string, unknown> | undefined, string | undefined][] = [
        [{ dirs: [{ host: data }] }, undefined, 'directory'],
        [{ dirs: [{ host: data }] }, { dirs: [{ host: base }] }, undefined],
        [{ dirs: [{ host: data, writable: true }] }, { dirs: [{ host: base }] }, 'writable'],
        [{ dirs: [{ host: data, writable: true }] }, { dirs: [{ host: data, writable: true }] }, undefined],
        [{ dirs: [{ host: join(data, 'link') }] }, { dirs: [{ host: data }] }, 'link'],
        [{ env: { TOKEN: 'x' } }, undefined, 'TOKEN'],
        [{ env: { TOKEN: 'x' } }, { env: ['TOKEN'] }, undefined],
        [{ args: ['--any'] }, undefined, undefined],
      ];
      for (const [wasi, grants, refused] of cases) {
        const cluster = newCluster();
        const h = await member(cluster, 4, grants === undefined ? {} : { grants });
        const c = await member(cluster, 0);
        await c.register('echo', guestBytes('core_echo'), { wasi });
        await takers(c, 1);
        if (refused === undefined) {
          expect(text((await c.invoke('echo', 'abc')).output)).toBe('cba');
        } else {
          const err = await failure(c.invoke('echo', 'abc'));
          expect(err.code).toBe(ErrorCode.CLUSTER_GRANT);
          expect(err.message).toContain(refused);
        }
        await c.close();
        await h.close();
      }
      rmSync(elsewhere, { recursive: true, force: true });
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('grants are checked like other options', async () => {
    await expect(
      runtime({ redis: redis.url, cluster: { name: 'g', secret: SECRET, grants: { dirs: [{ host: '/nonexistent/dir' }] } } }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTION, details: { path: 'options.cluster.grants.dirs[0].host' } });
    await expect(runtime({ redis: redis.url, cluster: { name: 'g', secret: SECRET, grants: { env: ['A=B'] } } })).rejects.toMatchObject({
      code: ErrorCode.INVALID_OPTION,
      details: { path: 'options.cluster.grants.env' },
    });
  });
});

describe('idempotency keys', () => {
  it('name one call of one function with one input: another function has its own, another input is refused', async () => {
    const cluster = newCluster();
    await member(cluster, 4);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await c.register('say', guestBytes('chain_say'));
    await takers(c, 1);
    expect(text((await c.invoke('echo', 'abc', { idempotencyKey: 'k' })).output)).toBe('cba');
    // Another function with the key: its own result, not echo's.
    expect(text((await c.invoke('say', 'abc', { idempotencyKey: 'k' })).output)).toBe('abc');
    // The same function with another input: refused, nothing of the first call's leaks.
    const err = await failure(c.invoke('echo', 'secret input', { idempotencyKey: 'k' }));
    expect([err.code, err.details['idempotencyKey'], err.details['function']]).toEqual([ErrorCode.IDEMPOTENCY_CONFLICT, 'k', 'echo']);
    expect(err.message).not.toContain('cba');
    expect(text((await c.invoke('echo', 'abc', { idempotencyKey: 'k' })).output)).toBe('cba');

    // On one host at once: a call with another input does not join the running one.
    const local = await member(newCluster(), 4);
    await local.register('sleep', guestBytes('core_sleep'));
    const both = await Promise.allSettled([
      local.invoke('sleep', '300', { idempotencyKey: 'j' }),
      local.invoke('sleep', '5', { idempotencyKey: 'j' }),
    ]);
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(both.flatMap((r) => (r.status === 'rejected' ? [(r.reason as NuvolaError).code] : []))).toEqual([
      ErrorCode.IDEMPOTENCY_CONFLICT,
    ]);
  });
});
