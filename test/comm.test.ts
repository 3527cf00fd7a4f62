import { describe, expect, it } from 'vitest';
import type { NuvolaError, Runtime } from 'nuvola';
import { crashWorker, until } from 'nuvola/testing';
import { closedAfterEach, guestBytes, text } from './helpers.js';

const track = closedAfterEach();

async function start(options: Parameters<typeof track>[0] = {}): Promise<Runtime> {
  const { rt } = await track({ workers: 2, ...options });
  await rt.register('ops', guestBytes('comm_ops'), { timeoutMs: 5000 });
  return rt;
}

const outputs = async (rt: Runtime, size: number, mode: string): Promise<string[]> =>
  (await rt.invokeGroup('ops', size, mode)).map((r) => text(r.output));

describe('groups: acceptance cases (world size 5)', () => {
  it('allreduce SUM of [r, 10r, 100r] gives [10, 100, 1000] on every rank', async () => {
    const rt = await start();
    expect(await outputs(rt, 5, 'allreduce')).toEqual(Array(5).fill('10,100,1000'));
  });

  it('broadcasts [0, 1, 2, 3] from root 2', async () => {
    const rt = await start();
    expect(await outputs(rt, 5, 'broadcast')).toEqual(Array(5).fill('0,1,2,3'));
  });

  it('after a barrier, every rank sees the state every other rank pushed before it', async () => {
    const rt = await start();
    expect(await outputs(rt, 5, 'barrier')).toEqual(Array(5).fill('saw 5 of 5'));
  });
});

describe('groups: more collectives', () => {
  it('allreduce MIN and MAX', async () => {
    const rt = await start();
    expect(await outputs(rt, 4, 'minmax')).toEqual(Array(4).fill('0,-3,7|3,0,7'));
  });

  it('gather, scatter, scan and ordered point-to-point messages', async () => {
    const rt = await start();
    expect((await outputs(rt, 3, 'gather'))[0]).toBe('r0r1r2');
    expect(await outputs(rt, 3, 'scatter')).toEqual(['part0', 'part1', 'part2']);
    expect(await outputs(rt, 4, 'scan')).toEqual(['1,0,0', '2,1,0', '3,3,0', '4,6,0']);
    expect((await outputs(rt, 2, 'pingpong'))[0]).toBe('2 4 6 8 10');
  });

  it('runs groups larger than the pool (16 ranks on 2 workers) and of size 1', async () => {
    const rt = await start();
    expect(await outputs(rt, 16, 'allreduce')).toEqual(Array(16).fill('120,1200,12000'));
    expect(await outputs(rt, 1, 'solo')).toEqual(['0/1']);
    expect(text((await rt.invoke('ops', 'solo')).output)).toBe('0/1');
  });
});

describe('groups: collectives in a row, again and again', () => {
  it('never waits on a rank queued behind one whose message was already there (1 and 2 workers, sizes 3 to 8, twice)', async () => {
    for (const workers of [1, 2]) {
      const rt = await start({ workers });
      for (let round = 0; round < 2; round++) {
        for (const size of [3, 4, 5, 8]) {
          const sum = (size * (size - 1)) / 2;
          const expected = Array.from({ length: size }, (_, r) => `b${size - 1} ${sum},${size},0 ${r === 1 ? size : 0}`);
          expect(await outputs(rt, size, 'mixed')).toEqual(expected);
        }
        expect(await outputs(rt, 5, 'barrier')).toEqual(Array(5).fill('saw 5 of 5'));
      }
    }
  });
});

describe('groups: transport', () => {
  it('delivers between ranks on one worker without leaving it, and between workers over their direct channel', async () => {
    const one = await start({ workers: 1 });
    expect(await outputs(one, 6, 'allreduce')).toEqual(Array(6).fill('15,150,1500'));
    expect((await outputs(one, 2, 'pingpong'))[0]).toBe('2 4 6 8 10');
    const two = await start({ workers: 2 });
    const results = await two.invokeGroup('ops', 4, 'allreduce');
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
    expect(results.map((r) => text(r.output))).toEqual(Array(4).fill('6,60,600'));
  });

  it("with placement 'pack', runs every rank on one worker; a bad placement is an option error", async () => {
    const rt = await start({ workers: 2 });
    const results = await rt.invokeGroup('ops', 5, 'allreduce', { placement: 'pack' });
    expect(new Set(results.map((r) => r.worker)).size).toBe(1);
    expect(results.map((r) => text(r.output))).toEqual(Array(5).fill('10,100,1000'));
    await expect(rt.invokeGroup('ops', 2, 'solo', { placement: 'near' as 'pack' })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
  });

  it('keeps working after a worker is replaced (its direct channels are set up again)', async () => {
    const rt = await start({ workers: 2 });
    expect(await outputs(rt, 4, 'allreduce')).toEqual(Array(4).fill('6,60,600'));
    crashWorker(rt, 1);
    await until(() => rt.stats().workerRestarts === 1);
    const results = await rt.invokeGroup('ops', 4, 'allreduce');
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
    expect(results.map((r) => text(r.output))).toEqual(Array(4).fill('6,60,600'));
  });
});

describe('groups: faults', () => {
  const failure = async (rt: Runtime, size: number, mode: string): Promise<NuvolaError> =>
    (await rt.invokeGroup('ops', size, mode).then(
      () => undefined,
      (e: unknown) => e,
    )) as NuvolaError;

  it('traps a send to a rank that does not exist and a receive from itself (E_COMM_RANK)', async () => {
    const rt = await start();
    const missing = await failure(rt, 3, 'sendmissing');
    expect(missing.code).toBe('E_COMM_RANK');
    expect(missing.message).toMatch(/rank 6 does not exist/);
    const self = await failure(rt, 3, 'recvself');
    expect(self.code).toBe('E_COMM_RANK');
    expect(self.message).toMatch(/cannot message itself/);
  });

  it('fails the waiting ranks promptly when one rank traps, and serves on', async () => {
    const rt = await start();
    const started = performance.now();
    const err = await failure(rt, 4, 'trapone');
    expect(err.code).toBe('E_GUEST_TRAP');
    expect(err.details['rank']).toBe(1);
    // Far below the 5 s timeout: the others were told, not timed out.
    expect(performance.now() - started).toBeLessThan(2500);
    expect(await outputs(rt, 3, 'allreduce')).toEqual(Array(3).fill('3,30,300'));
  });

  it('does not wait for ranks busy elsewhere when one fails: they are stopped with E_COMM_ABORTED', async () => {
    const rt = await start();
    const started = performance.now();
    const err = await failure(rt, 3, 'trapslow');
    expect(err.code).toBe('E_GUEST_TRAP');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await outputs(rt, 3, 'allreduce')).toEqual(Array(3).fill('3,30,300'));
  });

  it('interrupts a rank that spins past its timeout, even right after other ranks resumed in the same turn; the worker goes on', async () => {
    const { rt } = await track({ workers: 1 });
    await rt.register('busy', guestBytes('comm_busy'), { timeoutMs: 1000 });
    const err = (await rt.invokeGroup('busy', 3, 'hang:1').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_TIMEOUT');
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, timeoutTerminations: 0 });
    expect(rt.stats().interrupts).toBeGreaterThanOrEqual(1);
    await rt.register('ops', guestBytes('comm_ops'));
    expect(text((await rt.invoke('ops', 'solo')).output)).toBe('0/1');
  });

  it('leaves a rank that is busy on the CPU when another fails to fail at its next receive, harming no other call', async () => {
    const rt = await start();
    await rt.register('busy', guestBytes('comm_busy'), { timeoutMs: 10_000 });
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 10_000 });
    const others = [0, 1].map(() => rt.invoke('sleep', '1500'));
    const err = (await rt.invokeGroup('busy', 2, 'busy:1000').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_GUEST_TRAP');
    expect((await Promise.all(others)).map((r) => text(r.output))).toEqual(['slept 1500', 'slept 1500']);
    expect(rt.stats().workerRestarts).toBe(0);
  });

  it('stops a rank that was on the CPU when another failed once it suspends (in a sleep, not a receive)', async () => {
    const rt = await start();
    await rt.register('busy', guestBytes('comm_busy'), { timeoutMs: 10_000 });
    const started = performance.now();
    const err = (await rt.invokeGroup('busy', 3, 'spinsleep:150').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_GUEST_TRAP');
    // Not the 3 s sleep: the spinning ranks were stopped when they suspended.
    expect(performance.now() - started).toBeLessThan(2500);
    expect(await outputs(rt, 3, 'allreduce')).toEqual(Array(3).fill('3,30,300'));
  });

  it('refuses a message over maxMessageBytes (E_MESSAGE_TOO_LARGE)', async () => {
    const rt = await start({ maxMessageBytes: 1024 });
    const err = await failure(rt, 2, 'big');
    expect(err.code).toBe('E_MESSAGE_TOO_LARGE');
  });

  it('refuses a group larger than maxInstances before starting anything', async () => {
    const rt = await start({ maxInstances: 8 });
    await expect(rt.invokeGroup('ops', 9, 'allreduce')).rejects.toMatchObject({ code: 'E_INSTANCE_LIMIT' });
  });
});

describe('groups: queued messages are capped (maxQueuedMessageBytes)', () => {
  const KiB = 1024;

  it.each(['pack', 'spread'] as const)(
    "fails a send to a rank that has not received its earlier ones (E_QUEUE_FULL), with placement '%s'",
    async (placement) => {
      const { rt } = await track({ workers: 2, maxQueuedMessageBytes: 256 * KiB });
      await rt.register('flood', guestBytes('comm_flood'), { timeoutMs: 5000 });
      // 64 messages of 64 KiB (4 MiB) to a rank that never receives: the fifth would queue 320 KiB.
      const err = (await rt.invokeGroup('flood', 2, 'flood 64 64', { placement }).catch((e: unknown) => e)) as NuvolaError;
      expect(err.code).toBe('E_QUEUE_FULL');
      expect(err.details).toMatchObject({ rank: 0, peer: 1, queuedBytes: 256 * KiB, maxQueuedMessageBytes: 256 * KiB });
      expect(err.message).toMatch(/maxQueuedMessageBytes/);
      // Nothing of the group stays counted, and the runtime serves on.
      expect(rt.stats().queuedMessageBytes).toBe(0);
      expect(rt.stats().limits.maxQueuedMessageBytes).toBe(256 * KiB);
      await rt.register('ops', guestBytes('comm_ops'), { timeoutMs: 5000 });
      expect(await outputs(rt, 3, 'allreduce')).toEqual(Array(3).fill('3,30,300'));
    },
  );

  it.each(['pack', 'spread'] as const)(
    "lets a sender go on once the receiver has taken its messages (placement '%s'): 4 MiB through a 256 KiB queue",
    async (placement) => {
      const { rt } = await track({ workers: 2, maxQueuedMessageBytes: 256 * KiB });
      await rt.register('flood', guestBytes('comm_flood'), { timeoutMs: 10_000 });
      const results = await rt.invokeGroup('flood', 2, 'acked 16 4 64', { placement });
      expect(results.map((r) => text(r.output))).toEqual(['0', String(16 * 4 * 64 * KiB)]);
    },
  );

  it('takes one message larger than the cap when nothing is queued for the rank', async () => {
    const { rt } = await track({ workers: 2, maxQueuedMessageBytes: 16 * KiB });
    await rt.register('flood', guestBytes('comm_flood'), { timeoutMs: 5000 });
    const results = await rt.invokeGroup('flood', 2, 'flood 1 64');
    expect(results.map((r) => text(r.output))).toEqual(['sent 1', 'sent 1']);
    const err = (await rt.invokeGroup('flood', 2, 'flood 2 64').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_QUEUE_FULL');
  });
});
