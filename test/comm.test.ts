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

  it('replaces a worker whose rank spins past its timeout, even right after other ranks resumed in the same turn', async () => {
    const { rt } = await track({ workers: 1 });
    await rt.register('busy', guestBytes('comm_busy'), { timeoutMs: 1000 });
    const err = (await rt.invokeGroup('busy', 3, 'hang:1').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_TIMEOUT');
    expect(err.message).toMatch(/worker was replaced/);
    await until(() => rt.stats().workerRestarts === 1);
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
