// The state store through real guests, against both global tiers: the in-process default and
// a real redis-server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRuntime, type Runtime, type NuvolaError } from 'nuvola';
import { guestBytes, text } from './helpers.js';
import { crashWorker, until } from 'nuvola/testing';
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

async function failure(p: Promise<unknown>): Promise<NuvolaError> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: NuvolaError) => e,
  );
}

describe.each(tiers)('state on the $tier tier', ({ tier, options }) => {
  let rt: Runtime;
  const k = (name: string) => `${tier}-${name}`;

  beforeAll(async () => {
    rt = await createRuntime({ workers: 2, logger: () => {}, ...options() });
    await rt.register('roundtrip', guestBytes('state_roundtrip'));
    await rt.register('partial', guestBytes('state_partial'));
    await rt.register('size', guestBytes('state_size'));
    await rt.register('counter', guestBytes('state_counter'), { timeoutMs: 60_000 });
    await rt.register('ops', guestBytes('state_ops'));
    await rt.register('scoped', guestBytes('state_ops'), { stateKeys: [k('allowed'), k('prefix-*')] });
    await rt.register('lockedIncrement', guestBytes('state_locked_increment'));
  });
  afterAll(() => rt.close());

  it('reports which global tier it uses', () => {
    expect(rt.state.globalTier).toBe(tier);
  });

  it('writes {3,2,1,0}, reads it back, pushes, reads again; the global tier holds it', async () => {
    const r = await rt.invoke('roundtrip', k('rt'));
    expect([...r.output]).toEqual([3, 2, 1, 0, 3, 2, 1, 0]);
    if (tier === 'redis') {
      const raw = new Redis(redis.url);
      expect([...((await raw.getBuffer(`nuvola:v:{${k('rt')}}`)) ?? [])]).toEqual([3, 2, 1, 0]);
      raw.disconnect();
    }
    // Another view of the global tier: drop the local copy by pulling into the host.
    await rt.state.pull(k('rt'));
    expect([...(await rt.state.read(k('rt')))]).toEqual([3, 2, 1, 0]);
  });

  it('partial push and pull on a 7-byte key', async () => {
    const r = await rt.invoke('partial', k('seven'));
    expect([...r.output.subarray(0, 5)]).toEqual([5, 5, 6, 6, 4]);
    expect([...r.output.subarray(5)]).toEqual([5, 5, 6, 6, 4, 5, 6]);
  });

  it('an unknown key has size 0; after writing 4 bytes, size 4', async () => {
    expect(text((await rt.invoke('size', k('fresh'))).output)).toBe('0,4');
  });

  it('200 concurrent increments under the global write lock count exactly 200', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, () => rt.invoke('counter', k('counter'))));
    expect(results.map((r) => r.returnCode).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    await rt.state.pull(k('counter'));
    expect(new DataView((await rt.state.read(k('counter'))).buffer).getInt32(0, true)).toBe(200);
  });

  it('serialises read-modify-write across workers with the local write lock, suspending waiters', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => rt.invoke('lockedIncrement', k('local-counter'))));
    expect(results.map((r) => r.returnCode).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
    expect(new DataView((await rt.state.read(k('local-counter'))).buffer).getInt32(0, true)).toBe(6);
  });

  it('shares local state between workers without a push', async () => {
    await rt.invoke('ops', `write ${k('shared')} 32`);
    const reads = await Promise.all([0, 1, 2, 3].map(() => rt.invoke('ops', `read ${k('shared')}`)));
    for (const r of reads) expect(r.output.byteLength).toBe(32);
    expect(new Set(reads.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });

  it('handles a large binary value across chunks', async () => {
    const size = 3 * 65536 + 17;
    await rt.invoke('ops', `write ${k('big')} ${size}`);
    await rt.invoke('ops', `push ${k('big')}`);
    const value = await rt.state.read(k('big'));
    expect(value.byteLength).toBe(size);
    expect(value[size - 1]).toBe(((size - 1) * 7 + 1) & 0xff);
    const tail = await rt.invoke('ops', `readAt ${k('big')} ${size - 4}`);
    expect([...tail.output]).toEqual([...value.subarray(size - 4)]);
  });

  it('appends, reads the appended list and clears it', async () => {
    for (const v of [7, 8, 9]) await rt.invoke('ops', `append ${k('log')} ${v}`);
    expect([...(await rt.invoke('ops', `appended ${k('log')}`)).output]).toEqual([7, 8, 9]);
    await rt.invoke('ops', `clearAppended ${k('log')}`);
    expect((await rt.invoke('ops', `appended ${k('log')}`)).output.byteLength).toBe(0);
  });

  it('deletes a key locally and globally', async () => {
    await rt.invoke('ops', `write ${k('gone')} 8`);
    await rt.invoke('ops', `push ${k('gone')}`);
    await rt.invoke('ops', `delete ${k('gone')}`);
    expect(text((await rt.invoke('ops', `size ${k('gone')}`)).output)).toBe('0');
  });

  it('reads and writes past the end fail with E_STATE_BOUNDS', async () => {
    await rt.invoke('ops', `write ${k('short')} 6`);
    expect((await failure(rt.invoke('ops', `readAt ${k('short')} 4`))).code).toBe('E_STATE_BOUNDS');
    expect((await failure(rt.invoke('ops', `writeAt ${k('short')} 3`))).code).toBe('E_STATE_BOUNDS');
    expect((await failure(rt.invoke('ops', `writeAt ${k('never')} 0`))).code).toBe('E_STATE_BOUNDS');
  });

  it('rejects an empty key', async () => {
    expect((await failure(rt.invoke('ops', 'size'))).code).toBe('E_STATE_BAD_KEY');
  });

  it('unlocking a lock not held fails with E_STATE_LOCK', async () => {
    expect((await failure(rt.invoke('ops', `unlock ${k('free')}`))).code).toBe('E_STATE_LOCK');
  });

  it('releases the lock of a guest that traps while holding it', async () => {
    expect((await failure(rt.invoke('ops', `lockAndTrap ${k('trapped')}`))).code).toBe('E_GUEST_TRAP');
    await rt.invoke('ops', `lockThenWrite ${k('trapped')}`);
    expect([...(await rt.state.read(k('trapped')))]).toEqual([9, 9]);
  });

  it('releases a lock still held when the call returns', async () => {
    await rt.invoke('ops', `lockAndKeep ${k('kept')}`);
    await rt.invoke('ops', `lockThenWrite ${k('kept')}`);
    expect([...(await rt.state.read(k('kept')))]).toEqual([9, 9]);
  });

  it('a call that times out waiting for a local lock never takes it later', async () => {
    await rt.register('impatient', guestBytes('state_ops'), { timeoutMs: 150 });
    await rt.state.lockWrite(k('contended'));
    expect((await failure(rt.invoke('impatient', `lockThenWrite ${k('contended')}`))).code).toBe('E_TIMEOUT');
    await rt.state.unlockWrite(k('contended'));
    // Were the abandoned wait to win the lock now, both of these would hang.
    await rt.state.lockWrite(k('contended'));
    await rt.state.unlockWrite(k('contended'));
    await rt.invoke('ops', `lockThenWrite ${k('contended')}`);
    expect([...(await rt.state.read(k('contended')))]).toEqual([9, 9]);
  });

  it('a call holding a lock while another call on its worker pushes the key: both finish, the lock is released', async () => {
    const one = await createRuntime({ workers: 1, logger: () => {}, ...options() });
    try {
      await one.register('ops', guestBytes('state_ops'), { timeoutMs: 5000 });
      await one.invoke('ops', `write ${k('busy')} 4`);
      const [kept, pushed] = await Promise.all([one.invoke('ops', `lockAndKeep ${k('busy')}`), one.invoke('ops', `push ${k('busy')}`)]);
      expect([kept.returnCode, pushed.returnCode]).toEqual([0, 0]);
      await one.state.lockWrite(k('busy'));
      await one.state.unlockWrite(k('busy'));
    } finally {
      await one.close();
    }
  });

  it('a write that timed out waiting for the lock never lands later', async () => {
    await rt.register('late', guestBytes('state_ops'), { timeoutMs: 150 });
    await rt.state.write(k('late'), new Uint8Array([1, 2, 3, 4]));
    await rt.state.lockWrite(k('late'));
    expect((await failure(rt.invoke('late', `writeAt ${k('late')} 0`))).code).toBe('E_TIMEOUT');
    await rt.state.unlockWrite(k('late'));
    // Give an abandoned waiter every chance to run, then check the bytes are untouched.
    await rt.invoke('ops', `read ${k('late')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([...(await rt.state.read(k('late')))]).toEqual([1, 2, 3, 4]);
  });

  it('gives back the locks of a worker that died holding them', async () => {
    const seen: string[] = [];
    const one = await createRuntime({ workers: 1, logger: (e) => seen.push(e.message), ...options() });
    try {
      await one.register('ops', guestBytes('state_ops'), { timeoutMs: 60_000 });
      const holding = one.invoke('ops', `lockAndSleep ${k('orphan')} 30000`).catch((e: NuvolaError) => e.code);
      await until(() => seen.includes(`locked ${k('orphan')}`));
      crashWorker(one, 0);
      expect(await holding).toBe('E_WORKER_LOST');
      await one.state.lockWrite(k('orphan'));
      await one.state.unlockWrite(k('orphan'));
      await one.invoke('ops', `lockThenWrite ${k('orphan')}`);
    } finally {
      await one.close();
    }
  });

  it('releases the write lock after a pull grew the value under it', async () => {
    await rt.state.write(k('grow'), new Uint8Array(100).fill(3));
    await rt.state.push(k('grow'));
    await rt.state.write(k('grow'), new Uint8Array([1]));
    expect(text((await rt.invoke('ops', `lockPullUnlock ${k('grow')}`)).output)).toBe('100');
    await rt.state.lockWrite(k('grow'));
    await rt.state.unlockWrite(k('grow'));
    expect((await rt.state.read(k('grow'))).byteLength).toBe(100);
  });

  it('delete waits for a lock holder, and the key is usable afterwards', async () => {
    await rt.state.write(k('held'), new Uint8Array([5]));
    await rt.state.lockRead(k('held'));
    const deleting = rt.invoke('ops', `delete ${k('held')}`);
    expect([...(await rt.state.read(k('held')))]).toEqual([5]);
    await rt.state.unlockRead(k('held'));
    await deleting;
    expect(await rt.state.size(k('held'))).toBe(0);
    await rt.invoke('ops', `lockThenWrite ${k('held')}`);
    await rt.state.lockWrite(k('held'));
    await rt.state.unlockWrite(k('held'));
    expect([...(await rt.state.read(k('held')))]).toEqual([9, 9]);
  });

  it('enforces stateKeys: exact keys and prefixes pass, others fail with E_STATE_DENIED', async () => {
    await rt.invoke('scoped', `write ${k('allowed')} 2`);
    await rt.invoke('scoped', `write ${k('prefix-a')} 2`);
    const err = await failure(rt.invoke('scoped', `write ${k('secret')} 2`));
    expect(err.code).toBe('E_STATE_DENIED');
    expect(err.message).toContain(k('secret'));
    expect(await rt.state.size(k('secret'))).toBe(0);
  });

  it('holds a function to its stateQuota: a write, grow or new key over it fails with E_STATE_QUOTA and changes nothing', async () => {
    const KiB = 1024;
    await rt.register('quota', guestBytes('state_ops'), { stateQuota: { bytes: 256 * KiB, keys: 3 } });
    const use = () => rt.stats().byFunction['quota']!;
    await rt.invoke('quota', `write ${k('q1')} ${100 * KiB}`);
    expect(use()).toMatchObject({ stateBytes: 100 * KiB, stateKeys: 1, stateQuota: { bytes: 256 * KiB, keys: 3 } });
    const over = await failure(rt.invoke('quota', `write ${k('q2')} ${200 * KiB}`));
    expect(over.code).toBe('E_STATE_QUOTA');
    expect(over.details).toMatchObject({ function: 'quota', key: k('q2'), quota: { bytes: 256 * KiB, keys: 3 } });
    expect(over.message).toMatch(/stateQuota/);
    expect(await rt.state.size(k('q2'))).toBe(0);
    expect(use()).toMatchObject({ stateBytes: 100 * KiB, stateKeys: 1 });
    await rt.invoke('quota', `write ${k('q2')} ${100 * KiB}`);
    // Growing its own key: doubling the room would go over, so it gets just what it asked for.
    await rt.invoke('quota', `write ${k('q1')} ${150 * KiB}`);
    expect(use()).toMatchObject({ stateBytes: 250 * KiB, stateKeys: 2 });
    await rt.invoke('quota', `write ${k('q3')} 1`);
    expect((await failure(rt.invoke('quota', `write ${k('q4')} 1`))).code).toBe('E_STATE_QUOTA');
    expect(use()).toMatchObject({ stateBytes: 250 * KiB + 1, stateKeys: 3 });
    // Another function is not held to it; a key it grows is charged to it from then on.
    const opsBefore = rt.stats().byFunction['ops']!.stateBytes;
    await rt.invoke('ops', `write ${k('q2')} ${120 * KiB}`);
    expect(rt.stats().byFunction['ops']!.stateBytes).toBeGreaterThanOrEqual(opsBefore + 120 * KiB);
    expect(use()).toMatchObject({ stateBytes: 150 * KiB + 1, stateKeys: 2 });
    await rt.invoke('quota', `delete ${k('q1')}`);
    expect(use()).toMatchObject({ stateBytes: 1, stateKeys: 1 });
    await rt.invoke('quota', `write ${k('q4')} ${200 * KiB}`);
    // Appends count in bytes until the list is cleared.
    await rt.register('appender', guestBytes('state_ops'), { stateQuota: { bytes: 2, keys: 1 } });
    await rt.invoke('appender', `append ${k('qa')} 1`);
    await rt.invoke('appender', `append ${k('qa')} 2`);
    expect((await failure(rt.invoke('appender', `append ${k('qa')} 3`))).code).toBe('E_STATE_QUOTA');
    expect([...(await rt.invoke('ops', `appended ${k('qa')}`)).output]).toEqual([1, 2]);
    expect(rt.stats().byFunction['appender']).toMatchObject({ stateBytes: 2, stateKeys: 0 });
    await rt.invoke('appender', `clearAppended ${k('qa')}`);
    await rt.invoke('appender', `append ${k('qa')} 4`);
    expect(rt.stats().byFunction['appender']).toMatchObject({ stateBytes: 1 });
  });

  it('repeats at most 64 characters of a denied key, and refuses a key over 1024 bytes before reading it', async () => {
    const long = k('secret-') + 'x'.repeat(900);
    const denied = await failure(rt.invoke('scoped', `write ${long} 2`));
    expect(denied.code).toBe('E_STATE_DENIED');
    expect(denied.message).toContain(`'${long.slice(0, 64)}…'`);
    expect(denied.message.length).toBeLessThan(200);
    expect(denied.details).toMatchObject({ key: `${long.slice(0, 64)}…`, keyBytes: long.length });
    const huge = await failure(rt.invoke('scoped', `write ${k('secret-')}${'y'.repeat(100_000)} 2`));
    expect(huge.code).toBe('E_STATE_BAD_KEY');
    expect(huge.message.length).toBeLessThan(200);
  });

  it('keeps a leading byte-order mark as part of a key: it names another key than the one without', async () => {
    await rt.invoke('ops', `write \uFEFF${k('bom')} 3`);
    expect(await rt.state.size(`\uFEFF${k('bom')}`)).toBe(3);
    expect(await rt.state.size(k('bom'))).toBe(0);
  });

  it('host and guest see the same state', async () => {
    await rt.state.write(k('host'), new Uint8Array([1, 2, 3]));
    expect([...(await rt.invoke('ops', `read ${k('host')}`)).output]).toEqual([1, 2, 3]);
    await rt.state.writeAt(k('host'), 1, new Uint8Array([7]));
    expect([...(await rt.state.readAt(k('host'), 0, 3))]).toEqual([1, 7, 3]);
  });

  // Two runtimes share a global tier only through Redis; the in-process tier's fencing is
  // covered by test/global-tier.test.ts.
  if (tier === 'redis') {
    it('a runtime that only has a value globally pulls just the chunks it reads', async () => {
      const size = 4 * 65536;
      await rt.invoke('ops', `write ${k('lazy')} ${size}`);
      await rt.invoke('ops', `push ${k('lazy')}`);
      const other = await createRuntime({ workers: 1, logger: () => {}, ...options() });
      try {
        await other.register('ops', guestBytes('state_ops'));
        const tail = await other.invoke('ops', `readAt ${k('lazy')} ${size - 4}`);
        expect([...tail.output]).toEqual([0, 1, 2, 3].map((i) => ((size - 4 + i) * 7 + 1) & 0xff));
        // Only the last chunk came over: the first byte of the value is still missing locally,
        // so the host's view of it must pull again and still get it right.
        expect((await other.state.readAt(k('lazy'), 0, 1))[0]).toBe(1);
      } finally {
        await other.close();
      }
    });

    it('a guest’s first read of a key only Redis holds takes one Redis command (its size and first chunk together)', async () => {
      await rt.invoke('ops', `write ${k('once')} 1000`);
      await rt.invoke('ops', `push ${k('once')}`);
      await rt.invoke('ops', `write ${k('once-warm')} 8`);
      await rt.invoke('ops', `push ${k('once-warm')}`);
      const other = await createRuntime({ workers: 1, logger: () => {}, ...options() });
      const monitor = await new Redis(redis.url).monitor();
      try {
        await other.register('ops', guestBytes('state_ops'));
        // Another key first, so the lookup script is loaded whichever test ran before.
        await other.invoke('ops', `readAt ${k('once-warm')} 0`);
        const commands: string[] = [];
        // Commands a client sent, each one round trip (not those a script ran inside Redis).
        monitor.on('monitor', (_time: string, args: string[], source: string) => {
          if (source !== 'lua' && args.some((a) => a.includes(`{${k('once')}}`))) commands.push(args.join(' '));
        });
        const read = await other.invoke('ops', `readAt ${k('once')} 600`);
        expect([...read.output]).toEqual([0, 1, 2, 3].map((i) => ((600 + i) * 7 + 1) & 0xff));
        // MONITOR reports a command when it has run; give the last one a round trip to arrive.
        await new Redis(redis.url).ping().then(() => new Promise((r) => setTimeout(r, 50)));
        expect(commands, commands.join('\n')).toHaveLength(1);
      } finally {
        monitor.disconnect();
        await other.close();
      }
    });

    it("keeps a lost worker's locks until the requests it left running are done", async () => {
      const seen: string[] = [];
      const one = await createRuntime({ workers: 1, logger: (e) => seen.push(e.message), ...options() });
      const admin = new Redis(redis.url);
      try {
        await one.register('ops', guestBytes('state_ops'), { timeoutMs: 60_000 });
        await one.state.write(k('orphan-pull'), new Uint8Array([1, 1, 1]));
        await one.state.push(k('orphan-pull'));
        // Stall Redis so the guest's pull, made under its write lock, is still running when its worker dies.
        await admin.call('CLIENT', 'PAUSE', '600', 'ALL');
        const call = one.invoke('ops', `lockPullUnlock ${k('orphan-pull')}`).catch((e: NuvolaError) => e.code);
        await until(() => seen.includes(`pulling ${k('orphan-pull')}`));
        crashWorker(one, 0);
        expect(await call).toBe('E_WORKER_LOST');
        // The lock comes back only after the orphaned pull has landed, so this write is not overwritten.
        await one.state.lockWrite(k('orphan-pull'));
        await one.state.write(k('orphan-pull'), new Uint8Array([7, 7, 7]));
        // Past the end of the pause: an orphaned pull would have landed by now.
        await new Promise((resolve) => setTimeout(resolve, 800));
        expect([...(await one.state.read(k('orphan-pull')))]).toEqual([7, 7, 7]);
        await one.state.unlockWrite(k('orphan-pull'));
      } finally {
        admin.disconnect();
        await one.close();
      }
    });

    it('fences a holder whose global lease expired: its write is refused', async () => {
      const short = await createRuntime({ workers: 1, logger: () => {}, stateLeaseMs: 50, ...options() });
      try {
        await short.state.write(k('fenced'), new Uint8Array([1]));
        await short.state.lockGlobalWrite(k('fenced'));
        await new Promise((resolve) => setTimeout(resolve, 120));
        // Someone else takes the now-free lock and writes.
        await rt.state.lockGlobalWrite(k('fenced'));
        await rt.state.write(k('fenced'), new Uint8Array([2]));
        await rt.state.push(k('fenced'));
        await rt.state.unlockGlobalWrite(k('fenced'));
        const err = await failure(short.state.push(k('fenced')));
        expect(err.code).toBe('E_STATE_LEASE');
        await rt.state.pull(k('fenced'));
        expect([...(await rt.state.read(k('fenced')))]).toEqual([2]);
      } finally {
        await short.close();
      }
    });
  }
});
