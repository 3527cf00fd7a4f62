// Cluster mode against a Redis client without the cluster's secret: a real redis-server, hosts
// and callers as runtimes in this process (so their `rejected` counts can be read), and a raw
// ioredis client playing whoever else can write to that Redis.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NuvolaError, type Runtime } from 'nuvola';
import { encode, moduleHash } from '../dist/cluster/cluster.js';
import { Entries } from '../dist/cluster/entries.js';
import { Seal } from '../dist/cluster/seal.js';
import { startHost } from '../dist/cluster/spawn.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';
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

describe('group messages (review)', () => {
  const fieldMap = (fields: (string | Buffer)[]): Map<string, Buffer> => {
    const map = new Map<string, Buffer>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set(String(fields[i]), Buffer.from(fields[i + 1]!));
    return map;
  };

  it('a removed message stops the receiver, and a second run of a sender on another host is not heard', () => {
    const seal = new Seal([SECRET], 'review');
    const dropped: string[] = [];
    const entries = (host: string): Entries => new Entries(seal, host, (_kind, what) => dropped.push(what));
    const b = entries('host-b');
    const c = entries('host-c');
    const [m1, m2, m3] = ['one', 'two', 'three'].map((d) => fieldMap(b.message('g', 0, 1, Buffer.from(d))));
    // Message 2 deleted from the inbox by a Redis writer: message 3 is authentic, yet cannot be taken.
    const rx = entries('host-r');
    expect(rx.verifiedGroupEntry('g', 1, m1!, 'm1')).toBe('ok');
    expect(rx.verifiedGroupEntry('g', 1, m3!, 'm3')).toBe('lost');
    // The call entry of rank 0's part copied and run again on host c: its messages are not taken,
    // those of the first run are; a copied message is not taken twice.
    const rx2 = entries('host-r2');
    const again = ['one', 'two', 'other'].map((d) => fieldMap(c.message('g', 0, 1, Buffer.from(d))));
    expect(rx2.verifiedGroupEntry('g', 1, m1!, 'm1')).toBe('ok');
    expect(rx2.verifiedGroupEntry('g', 1, again[1]!, 'c2')).toBe('dropped');
    expect(rx2.verifiedGroupEntry('g', 1, m2!, 'm2')).toBe('ok');
    expect(rx2.verifiedGroupEntry('g', 1, again[2]!, 'c3')).toBe('dropped');
    expect(rx2.verifiedGroupEntry('g', 1, m2!, 'm2 again')).toBe('dropped');
    expect(rx2.verifiedGroupEntry('g', 1, m3!, 'm3')).toBe('ok');
    // The sending host is under the MAC: a message relabelled as another host's does not verify.
    const relabelled = new Map(again[0]!);
    relabelled.set('o', Buffer.from('host-b'));
    expect(entries('host-r3').verifiedGroupEntry('g', 1, relabelled, 'relabelled')).toBe('dropped');
    expect(dropped.length).toBe(5);
  });

  it('a group part copied onto the host that runs it is not run a second time there', async () => {
    const cluster = newCluster();
    const hosts = [await member(cluster, 4), await member(cluster, 4)];
    const c = await member(cluster, 0);
    await c.register('ops', guestBytes('comm_ops'), { timeoutMs: 20_000 });
    await takers(c, 2);
    const group = c.invokeGroup('ops', 2, 'slowpong', { placement: 'hosts' });
    const work = `${prefix(cluster)}work`;
    let taker: string | undefined;
    let copy: Buffer[] | undefined;
    await eventually(async () => {
      const entries = (await raw.xrangeBuffer(work, '-', '+')) as [Buffer, Buffer[]][];
      const pending = (await raw.xpending(work, 'hosts', '-', '+', 10)) as [string, string, number, number][];
      for (const [id, fields] of entries) {
        const took = pending.find((p) => p[0] === id.toString());
        if (took !== undefined && fields.some((f) => f.toString() === 'gid')) {
          [taker, copy] = [took[1], fields];
          return true;
        }
      }
      return false;
    }, 'a part taken');
    await raw.xadd(`${prefix(cluster)}work:${taker!}`, '*', ...copy!);
    const results = await group;
    expect(results.map((r) => text(r.output))).toEqual(['2 4 6 8 10 12 14 16 18 20', expect.any(String)]);
    const views = await Promise.all(hosts.map((h) => h.cluster()));
    const view = views.find((v) => v.self === taker)!;
    expect(view.rejected.calls).toBe(1);
  });
});

describe('availability (review)', () => {
  it('a reply stream made unwritable does not hold the answering host: the slot comes back after the deadline', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 1);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await takers(c, 1);
    const [self, host] = [(await c.cluster()).self, (await h.cluster()).self];
    // A key of another type where the caller's reply stream goes: no answer can be written.
    await raw.set(`${prefix(cluster)}reply:${self}`, 'not a stream');
    expect((await failure(c.invoke('echo', 'abc', { timeoutMs: 300 }))).code).toBe(ErrorCode.TIMEOUT);
    await eventually(async () => (await c.cluster()).hosts.find((x) => x.id === host)?.inflight === 0, 'the slot given back');
    await raw.del(`${prefix(cluster)}reply:${self}`);
    expect(text((await c.invoke('echo', 'xyz', { timeoutMs: 10_000 })).output)).toBe('zyx');
  });
});

describe('secret handling (review)', () => {
  it.skipIf(process.platform !== 'linux')(
    'a host process shows neither the secret nor the Redis password on its command line',
    async () => {
      const cluster = newCluster();
      const password = 'the-redis-password-ps-must-not-show';
      const h = await startHost({ workers: 1, redis: { url: redis.url, password }, cluster: { ...cluster, capacity: 1 } });
      try {
        const cmdline = readFileSync(`/proc/${h.child.pid}/cmdline`, 'utf8');
        expect(cmdline).toContain('host.js');
        expect(cmdline).not.toContain(password);
        expect(cmdline).not.toContain(SECRET);
      } finally {
        await h.stop();
      }
    },
  );
});

describe('heartbeats (review)', () => {
  it('a heartbeat put back does not keep a host that left listed', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 4);
    const c = await member(cluster, 0);
    await takers(c, 1);
    const id = (await h.cluster()).self;
    const beat = (await raw.hget(`${prefix(cluster)}hosts`, id))!;
    await h.close();
    // Put back again and again, with a live score, as a writer would.
    const putBack = (): Promise<unknown> =>
      raw
        .multi()
        .zadd(`${prefix(cluster)}alive`, Date.now() + 60_000, id)
        .hset(`${prefix(cluster)}hosts`, id, beat)
        .exec();
    await putBack();
    const timer = setInterval(() => void putBack(), 50);
    try {
      await eventually(async () => !(await c.cluster()).hosts.some((x) => x.id === id), 'the host unlisted');
    } finally {
      clearInterval(timer);
    }
  });
});

describe('malformed entries (review)', () => {
  it('are dropped and counted wherever they are put; the hosts keep serving', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 2);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await takers(c, 1);
    const p = prefix(cluster);
    const bad = Buffer.from([0xff, 0xfe, 0x00, 0xc3]);
    const later = String(Date.now() + 60_000);
    // Calls: no fields that matter, non-UTF-8 names and values, a MAC of every wrong length, a large field.
    await raw.xadd(`${p}work`, '*', 'x', 'y');
    await raw.xadd(`${p}work`, '*', bad, bad, 'm', bad);
    await raw.xadd(`${p}work`, '*', 'id', 'i', 'from', 'a', 'dl', later, 'fn', 'echo', 'm', Buffer.alloc(31));
    await raw.xadd(`${p}work`, '*', 'id', 'i', 'from', 'a', 'dl', 'soon', 'fn', bad, 'gid', 'g', 'ranks', '{', 'm', Buffer.alloc(33));
    await raw.xadd(`${p}work:${(await h.cluster()).self}`, '*', 'fn', 'echo', 'in', Buffer.alloc(4 << 20, 1), 'm', Buffer.alloc(32));
    // Heartbeats, registry entries, records and replies of every wrong form.
    for (const [i, value] of ['', 'zz', 'f'.repeat(64) + '{', bad.toString('latin1'), 'a'.repeat(200_000)].entries()) {
      await raw.hset(`${p}hosts`, `ghost${i}`, value);
      await raw.zadd(`${p}alive`, Date.now() + 60_000, `ghost${i}`);
    }
    for (const [i, value] of ['null', '[]', '{"hash":1}', '{"hash":"h","o":"{","mac":"zz"}', bad].entries()) {
      await raw.hset(`${p}fn`, `bad${i}`, value);
      expect((await failure(c.invoke(`bad${i}`, 'x'))).code).toBe(ErrorCode.CLUSTER_INTEGRITY);
    }
    await raw.set(`${p}done:echo k`, bad);
    expect(text((await c.invoke('echo', 'abc', { idempotencyKey: 'k' })).output)).toBe('cba');
    await raw.xadd(`${p}reply:${(await c.cluster()).self}`, '*', 'id', bad, 'r', bad);
    await eventually(async () => (await h.cluster()).rejected.calls === 5, 'five calls dropped');
    expect(text((await c.invoke('echo', 'still here')).output)).toBe('ereh llits');
    const rejected = (await c.cluster()).rejected;
    expect(rejected.hosts).toBeGreaterThanOrEqual(5);
    expect(rejected.functions).toBeGreaterThanOrEqual(5);
    expect((await c.cluster()).hosts.map((x) => x.id).sort()).toEqual([(await c.cluster()).self, (await h.cluster()).self].sort());
    expect((await h.cluster()).rejected.records).toBe(1);
  });
});

describe('the MAC (review)', () => {
  it('is HMAC-SHA256 under the cluster key, byte for byte, for secrets of every length', () => {
    const frame = (kind: string, fields: (string | Buffer)[]): Buffer =>
      Buffer.concat([
        Buffer.from(kind),
        ...fields.flatMap((f) => {
          const b = Buffer.from(f);
          const n = Buffer.alloc(4);
          n.writeUInt32BE(b.byteLength);
          return [n, b];
        }),
      ]);
    for (const length of [32, 55, 63, 64, 65, 100, 128, 129, 1000]) {
      for (const secret of ['s'.repeat(length), 'é'.repeat(length)]) {
        const key = createHmac('sha256', secret).update('nuvola cluster\0c1').digest();
        const fields = ['name', Buffer.from([0, 1, 2, 255]), '', 'ünï'];
        const want = createHmac('sha256', key).update(frame('fn', fields)).digest();
        const seal = new Seal([secret], 'c1');
        expect(seal.sign('fn', fields).equals(want)).toBe(true);
        expect(seal.verify('fn', fields, want)).toBe(true);
        // Bytes moved from one field to the next, another kind, another cluster: no.
        expect(seal.verify('fn', ['nam', Buffer.from('e\x00\x01\x02\xff', 'latin1'), '', 'ünï'], want)).toBe(false);
        expect(seal.verify('fn', ['name', Buffer.from([0, 1, 2, 255]), 'ünï'], want)).toBe(false);
        expect(seal.verify('call', fields, want)).toBe(false);
        expect(new Seal([secret], 'c2').verify('fn', fields, want)).toBe(false);
        expect(seal.verify('fn', fields, want.subarray(0, 31))).toBe(false);
        // Rotation: a host with [other, secret] verifies it; one with [other] does not.
        expect(new Seal([OTHER, secret], 'c1').verify('fn', fields, want)).toBe(true);
        expect(new Seal([OTHER], 'c1').verify('fn', fields, want)).toBe(false);
      }
    }
  });
});

describe('grants', () => {
  it("a fetched function gets only the directories and environment the host's cluster.grants gives", async () => {
    const base = mkdtempSync(join(tmpdir(), 'nuvola-grants-'));
    try {
      const data = join(base, 'data');
      const elsewhere = mkdtempSync(join(tmpdir(), 'nuvola-elsewhere-'));
      mkdirSync(data);
      mkdirSync(join(data, 'sub'));
      mkdirSync(`${data}-evil`);
      symlinkSync(elsewhere, join(data, 'link'));
      // One cluster per host, so that each call goes to the host under test.
      const cases: [Record<string, unknown>, Record<string, unknown> | undefined, string | undefined][] = [
        [{ dirs: [{ host: data }] }, undefined, 'directory'],
        [{ dirs: [{ host: data }] }, { dirs: [{ host: base }] }, undefined],
        [{ dirs: [{ host: data, writable: true }] }, { dirs: [{ host: base }] }, 'writable'],
        [{ dirs: [{ host: data, writable: true }] }, { dirs: [{ host: data, writable: true }] }, undefined],
        [{ dirs: [{ host: join(data, 'link') }] }, { dirs: [{ host: data }] }, 'link'],
        // A sibling sharing the granted path's prefix, the parent through '..': not under it.
        [{ dirs: [{ host: `${data}-evil` }] }, { dirs: [{ host: data }] }, 'data-evil'],
        [{ dirs: [{ host: `${data}/sub/../..` }] }, { dirs: [{ host: data }] }, 'directory'],
        [{ dirs: [{ host: join(data, 'sub') + '/' }] }, { dirs: [{ host: data + '/' }] }, undefined],
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
  it("a call of a name with a space cannot reach another function's record or lease (review)", async () => {
    const cluster = newCluster();
    const h = await member(cluster, 4);
    const c = await member(cluster, 0);
    await c.register('a', guestBytes('core_echo'));
    await takers(c, 1);
    expect(text((await c.invoke('a', 'abc', { idempotencyKey: 'b c' })).output)).toBe('cba');
    // 'a b' with key 'c' names the same Redis key as 'a' with key 'b c'.
    expect((await failure(c.invoke('a b', 'zzz', { idempotencyKey: 'c' }))).code).toBe(ErrorCode.UNKNOWN_FUNCTION);
    expect(await raw.exists(`${prefix(cluster)}done:a b c`)).toBe(1);
    expect((await h.cluster()).rejected.records).toBe(0);
  });

  it('a planted lease neither fakes a conflict nor blocks the key; a lease put back without expiry is taken over (review)', async () => {
    const cluster = newCluster();
    const h = await member(cluster, 4);
    const c = await member(cluster, 0);
    await c.register('echo', guestBytes('core_echo'));
    await c.register('sleep', guestBytes('core_sleep'));
    await takers(c, 1);
    const lease = (fn: string, key: string): string => `${prefix(cluster)}run:${fn} ${key}`;
    // Another input's lease as a host once wrote it (no MAC then): no false E_IDEMPOTENCY_CONFLICT.
    await raw.set(lease('echo', 'a'), `ghost ${'0'.repeat(64)}`, 'PX', 60_000);
    expect(text((await c.invoke('echo', 'abc', { idempotencyKey: 'a', timeoutMs: 5000 })).output)).toBe('cba');
    // This input's lease, never lapsing: the call does not wait for a host that never answers.
    const input = createHash('sha256').update('abc').digest('hex');
    await raw.set(lease('echo', 'b'), `ghost ${input}`, 'PX', 60_000);
    expect(text((await c.invoke('echo', 'abc', { idempotencyKey: 'b', timeoutMs: 5000 })).output)).toBe('cba');
    expect((await h.cluster()).rejected.records).toBeGreaterThanOrEqual(2);
    // A real lease, copied while its call ran, put back without expiry after its record was
    // deleted, for the next host to see (its host is gone).
    const running = c.invoke('sleep', '300', { idempotencyKey: 'c' });
    let value: string | null = null;
    await eventually(async () => (value = await raw.get(lease('sleep', 'c'))) !== null, 'the lease');
    await running;
    await h.close();
    await member(cluster, 4); // the next host
    await takers(c, 1);
    await raw.del(`${prefix(cluster)}done:sleep c`);
    await raw.set(lease('sleep', 'c'), value!);
    await expect(c.invoke('sleep', '300', { idempotencyKey: 'c', timeoutMs: 5000 })).resolves.toBeDefined();
  });

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
