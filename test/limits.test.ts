// Timeouts, memory limits, JSPI interleaving, lost workers and close().
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, NuvolaError, TimeoutError, WorkerLostError, type Runtime, type LogEntry } from 'nuvola';
import { crashWorker } from 'nuvola/testing';
import { guestBytes, runtimeWithLogs, text } from './helpers.js';

let rt: Runtime | undefined;
let logs: LogEntry[] = [];
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

async function start(workers: number): Promise<Runtime> {
  ({ rt, logs } = await runtimeWithLogs({ workers }));
  return rt;
}

function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: NuvolaError }> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: NuvolaError) => ({ ok: false as const, error }),
  );
}

describe('timeouts', () => {
  it('stops a guest stuck in a loop, fails only it, and re-dispatches calls that had not started', async () => {
    const rt = await start(2);
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 300 });
    await rt.register('hello', guestBytes('core_hello'));
    // Same turn: 'loop' goes to worker 0, then one call per worker; worker 0's call queues behind the loop.
    const stuck = settle(rt.invoke('loop', 'loop'));
    const others = [settle(rt.invoke('hello', 'a')), settle(rt.invoke('hello', 'b')), settle(rt.invoke('hello', 'c'))];
    const stuckResult = await stuck;
    expect(stuckResult.ok).toBe(false);
    if (!stuckResult.ok) {
      expect(stuckResult.error).toBeInstanceOf(TimeoutError);
      expect(stuckResult.error.code).toBe('E_TIMEOUT');
      expect(stuckResult.error.message).toMatch(/timeoutMs=300/);
    }
    const results = await Promise.all(others);
    expect(results.map((r) => (r.ok ? text(r.value.output) : r.error.code))).toEqual(['Hello a', 'Hello b', 'Hello c']);
    expect(rt.stats().workerRestarts).toBe(1);
    // The replacement worker has every function registered and serves again.
    const after = await Promise.all([0, 1, 2, 3].map(() => rt.invoke('loop', 'no')));
    expect(after.every((r) => r.returnCode === 0)).toBe(true);
    expect(new Set(after.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });

  it('fails register when init() never returns, replaces the stuck workers and serves on', async () => {
    const rt = await start(2);
    await rt.register('hello', guestBytes('core_hello'));
    const err = await rt.register('spin', guestBytes('core_init_loop'), { timeoutMs: 300 }).catch((e: NuvolaError) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as NuvolaError).message).toMatch(/init\(\) may loop/);
    expect(rt.functions()).toEqual(['hello']);
    expect(rt.stats().workerRestarts).toBe(2);
    const results = await Promise.all([0, 1, 2, 3].map((i) => rt.invoke('hello', String(i))));
    expect(results.map((r) => text(r.output))).toEqual(['Hello 0', 'Hello 1', 'Hello 2', 'Hello 3']);
  });

  it('times out a suspended guest without stopping its worker', async () => {
    const rt = await start(1);
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 100 });
    const result = await settle(rt.invoke('sleep', '5000'));
    expect(result.ok ? 'ok' : result.error.code).toBe('E_TIMEOUT');
    const quick = await rt.invoke('sleep', '1');
    expect(text(quick.output)).toBe('slept 1');
    expect(rt.stats().workerRestarts).toBe(0);
  });

  it('lets invoke() override the function timeout', async () => {
    const rt = await start(1);
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 50 });
    const result = await rt.invoke('sleep', '120', { timeoutMs: 5000 });
    expect(text(result.output)).toBe('slept 120');
  });
});

describe('memory limit', () => {
  it('fails a guest that grows past memoryLimitPages, and keeps serving', async () => {
    const rt = await start(1);
    await rt.register('hog', guestBytes('core_memory_hog'), { memoryLimitPages: 64 });
    const result = await settle(rt.invoke('hog'));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('E_MEMORY_LIMIT');
      expect(result.error.details).toMatchObject({ memoryLimitPages: 64 });
    }
    await rt.register('hello', guestBytes('core_hello'));
    expect(text((await rt.invoke('hello', 'again')).output)).toBe('Hello again');
  });
});

describe('JSPI', () => {
  it('interleaves suspended instances on one worker instead of blocking it', async () => {
    const rt = await start(1);
    await rt.register('sleep', guestBytes('core_sleep'));
    const results = await Promise.all([60, 40, 20].map((ms) => rt.invoke('sleep', String(ms))));
    expect(results.map((r) => text(r.output))).toEqual(['slept 60', 'slept 40', 'slept 20']);
    const order = logs.filter((l) => l.function === 'sleep').map((l) => l.message);
    // All three began before any finished; the shortest sleep finished first.
    expect(order.slice(0, 3).sort()).toEqual(['before 20', 'before 40', 'before 60']);
    expect(order.slice(3)).toEqual(['after 20', 'after 40', 'after 60']);
  });
});

describe('lost workers', () => {
  it('fails the calls that were running on a crashed worker, replaces it and serves on', async () => {
    const rt = await start(2);
    await rt.register('sleep', guestBytes('core_sleep'));
    const calls = [0, 1, 2, 3].map(() => rt.invoke('sleep', '400'));
    const settled = calls.map(settle);
    // Let every call begin (each suspends in sleep) before the crash.
    await new Promise((resolve) => setTimeout(resolve, 100));
    crashWorker(rt, 0);
    const outcomes = await Promise.all(settled);
    const lost = outcomes.filter((o) => !o.ok);
    const done = outcomes.filter((o) => o.ok);
    expect(lost).toHaveLength(2);
    expect(done).toHaveLength(2);
    for (const o of lost) if (!o.ok) expect(o.error).toBeInstanceOf(WorkerLostError);
    for (const o of done) if (o.ok) expect(o.value.worker).toBe(1);
    expect(rt.stats().workerRestarts).toBe(1);
    const again = await Promise.all([0, 1].map(() => rt.invoke('sleep', '1')));
    expect(new Set(again.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });

  it('completes a register during which a worker is lost, with the function on the replacement', async () => {
    const rt = await start(2);
    const registering = rt.register('hello', guestBytes('core_hello'));
    crashWorker(rt, 0);
    await registering;
    expect(rt.stats().workerRestarts).toBe(1);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => rt.invoke('hello', String(i))));
    expect(results.map((r) => text(r.output))).toEqual(Array.from({ length: 20 }, (_, i) => `Hello ${i}`));
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });
});

describe('close', () => {
  it('rejects calls still running and every later call with E_CLOSED', async () => {
    const rt = await createRuntime({ workers: 1, logger: () => {} });
    await rt.register('sleep', guestBytes('core_sleep'));
    const running = settle(rt.invoke('sleep', '2000'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await rt.close();
    const r = await running;
    expect(r.ok ? 'ok' : r.error.code).toBe('E_CLOSED');
    await expect(rt.invoke('sleep', '1')).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(rt.register('other', guestBytes('core_hello'))).rejects.toMatchObject({ code: 'E_CLOSED' });
    await rt.close();
  });
});
