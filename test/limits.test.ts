// Timeouts, memory limits, JSPI interleaving, lost workers and close().
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, NuvolaError, TimeoutError, WorkerLostError, type Runtime, type LogEntry } from 'nuvola';
import { crashWorker, until, whenRegistering } from 'nuvola/testing';
import { guestBytes, guestPath, runScript, runtimeWithLogs, text, uninstrumentedLoop } from './helpers.js';

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
  it('interrupts a guest stuck in a loop at its deadline: only that call fails, its worker goes on', async () => {
    const rt = await start(1);
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 300 });
    await rt.register('hello', guestBytes('core_hello'));
    // Queued behind the loop on the one worker: they run once the loop is interrupted.
    const stuck = settle(rt.invoke('loop', 'loop'));
    const others = [settle(rt.invoke('hello', 'a')), settle(rt.invoke('hello', 'b'))];
    const stuckResult = await stuck;
    expect(stuckResult.ok ? 'ok' : stuckResult.error.code).toBe('E_TIMEOUT');
    if (!stuckResult.ok) expect(stuckResult.error.message).toMatch(/timeoutMs=300 \(interrupted on its worker/);
    const results = await Promise.all(others);
    expect(results.map((r) => (r.ok ? text(r.value.output) : r.error.code))).toEqual(['Hello a', 'Hello b']);
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1, timeoutTerminations: 0 });
    // The same instance pool serves the function again.
    expect((await rt.invoke('loop', 'no')).returnCode).toBe(0);
  });

  it('stops a guest stuck in code it could not instrument with its worker, fails only it, and re-dispatches calls that had not started', async () => {
    const rt = await start(2);
    await rt.register('loop', await uninstrumentedLoop(), { timeoutMs: 300 });
    await rt.register('hello', guestBytes('core_hello'));
    // Same turn: 'loop' goes to worker 0, then one call per worker; worker 0's call queues behind the loop.
    const stuck = settle(rt.invoke('loop'));
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
    expect(rt.stats()).toMatchObject({ workerRestarts: 1, timeoutTerminations: 1, interrupts: 0 });
    // The replacement worker has every function registered and serves again.
    const after = await Promise.all([0, 1, 2, 3].map(() => rt.invoke('hello', 'x')));
    expect(after.every((r) => r.returnCode === 0)).toBe(true);
    expect(new Set(after.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });

  it('fails register when init() never returns, interrupts it and serves on', async () => {
    const rt = await start(2);
    await rt.register('hello', guestBytes('core_hello'));
    const err = await rt.register('spin', guestBytes('core_init_loop'), { timeoutMs: 300 }).catch((e: NuvolaError) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as NuvolaError).message).toMatch(/init\(\) may loop/);
    expect(rt.functions()).toEqual(['hello']);
    // init() runs once, on one worker (the snapshot is taken there); it traps at a check there.
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1, timeoutTerminations: 0 });
    const results = await Promise.all([0, 1, 2, 3].map((i) => rt.invoke('hello', String(i))));
    expect(results.map((r) => text(r.output))).toEqual(['Hello 0', 'Hello 1', 'Hello 2', 'Hello 3']);
  });

  it('times out a suspended guest without stopping its worker, and never resumes it', async () => {
    const rt = await start(1);
    await rt.register('sleeploop', guestBytes('core_sleep_loop'), { timeoutMs: 100 });
    await rt.register('sleep', guestBytes('core_sleep'));
    const result = await settle(rt.invoke('sleeploop', '300'));
    expect(result.ok ? 'ok' : result.error.code).toBe('E_TIMEOUT');
    // This call outlives the cancelled one's sleep: had that guest resumed, it would spin
    // forever on this worker and this call could not finish.
    const later = await rt.invoke('sleep', '500');
    expect(text(later.output)).toBe('slept 500');
    expect(logs.some((l) => l.function === 'sleeploop' && l.message === 'resumed')).toBe(false);
    expect(rt.stats().workerRestarts).toBe(0);
  });

  it('does not time out a quick call whose batch-mate is slow, nor kill the busy worker', async () => {
    const rt = await start(1);
    await rt.register('hello', guestBytes('core_hello'), { timeoutMs: 200 });
    await rt.register('busy', guestBytes('core_busy'));
    const [hello, busy] = await Promise.all([settle(rt.invoke('hello', 'quick')), settle(rt.invoke('busy', '400'))]);
    expect(hello.ok ? text(hello.value.output) : hello.error.code).toBe('Hello quick');
    expect(busy.ok ? busy.value.returnCode : busy.error.code).toBe(0);
    expect(rt.stats().workerRestarts).toBe(0);
  });

  it('drops a call that timed out while queued: it never runs', async () => {
    const rt = await start(1);
    await rt.register('busy', guestBytes('core_busy'));
    await rt.register('log', guestBytes('core_log'), { timeoutMs: 50 });
    const [busy, queued] = await Promise.all([settle(rt.invoke('busy', '400')), settle(rt.invoke('log', 'late'))]);
    expect(busy.ok).toBe(true);
    expect(queued.ok ? 'ran' : queued.error.code).toBe('E_TIMEOUT');
    await rt.invoke('busy', '0');
    expect(logs.filter((l) => l.function === 'log')).toEqual([]);
  });

  it("starts register's clock only when the worker gets to it, not while it is busy", async () => {
    const rt = await start(1);
    await rt.register('busy', guestBytes('core_busy'));
    const busy = settle(rt.invoke('busy', '400'));
    await rt.register('hello', guestBytes('core_hello'), { timeoutMs: 100 });
    expect((await busy).ok).toBe(true);
    expect(text((await rt.invoke('hello', 'x')).output)).toBe('Hello x');
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
    const calls = [0, 1, 2, 3].map(() => rt.invoke('sleep', '1500'));
    const settled = calls.map(settle);
    // Every call has begun (each suspends in sleep) before the crash.
    await until(() => logs.filter((l) => l.message === 'before 1500').length === 4);
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

  it('answers calls that finished before their worker was stopped with their outcomes, not E_WORKER_LOST', async () => {
    const rt = await start(1);
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 300 });
    await rt.register('spin', await uninstrumentedLoop(), { timeoutMs: 300 });
    await rt.register('echo', guestBytes('core_echo'));
    await rt.register('abort', guestBytes('core_abort'));
    // One batch on the one worker: quick calls (one fails, one has an output too large for the
    // outcome log, posted at once), then one that loops until its worker is stopped.
    const quick = [
      settle(rt.invoke('echo', 'z'.repeat(100_000))),
      settle(rt.invoke('echo', 'z'.repeat(10_000))),
      settle(rt.invoke('abort', 'not fine')),
      settle(rt.invoke('loop', 'x')),
      settle(rt.invoke('echo', 'abc')),
      settle(rt.invoke('echo', 'xyz')),
    ];
    // Code without interruption checks: its worker is stopped.
    const stuck = settle(rt.invoke('spin'));
    const stuckResult = await stuck;
    expect(stuckResult.ok ? 'ok' : stuckResult.error.code).toBe('E_TIMEOUT');
    const outcomes = await Promise.all(quick);
    expect(outcomes.map((o) => (o.ok ? `${o.value.returnCode} ${text(o.value.output).slice(0, 5)}` : o.error.code))).toEqual([
      '100000 zzzzz',
      '10000 zzzzz',
      'E_GUEST_ABORT',
      '0 ',
      '3 cba',
      '3 zyx',
    ]);
    await until(() => rt.stats().workerRestarts === 1);
    await expect(rt.invoke('echo', 'again')).resolves.toMatchObject({ returnCode: 5 });
  });

  it('completes a register during which a worker is lost, with the function on the replacement', async () => {
    const rt = await start(2);
    const registering = rt.register('slow', guestBytes('core_init_slow'));
    await whenRegistering(rt, 0);
    crashWorker(rt, 0);
    await registering;
    expect(rt.stats().workerRestarts).toBe(1);
    const results = await Promise.all(Array.from({ length: 8 }, () => rt.invoke('slow')));
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });

  it('instantiates lazily on a replacement worker, so functions survive the crash', async () => {
    const rt = await start(1);
    await rt.register('hello', guestBytes('core_hello'));
    crashWorker(rt, 0);
    await until(() => rt.stats().workerRestarts === 1);
    const first = await rt.invoke('hello', 'again');
    expect(text(first.output)).toBe('Hello again');
    expect(first.cold).toBe(true);
  });

  it('keeps the pool whole when a register times out on a worker that is still starting', async () => {
    const rt = await start(1);
    await rt.register('hello', guestBytes('core_hello'));
    crashWorker(rt, 0);
    await rt.register('spin', guestBytes('core_init_loop'), { timeoutMs: 1 }).catch(() => undefined);
    await expect(rt.invoke('hello', 'still here')).resolves.toMatchObject({ returnCode: 0 });
  });
});

describe('close', () => {
  it('lets an awaited close() during register() finish the process normally', async () => {
    const script = `
      import { createRuntime } from 'nuvola';
      import { readFileSync } from 'node:fs';
      const rt = await createRuntime({ workers: 1 });
      const registering = rt.register('slow', readFileSync(${JSON.stringify(guestPath('core_init_slow'))})).catch((e) => e.code);
      await new Promise((r) => setTimeout(r, 1));
      await rt.close();
      console.log('closed', await registering);
    `;
    const { stdout, code } = await runScript(script);
    expect(stdout.trim()).toBe('closed E_CLOSED');
    expect(code).toBe(0);
  });

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

describe('maxConcurrency', () => {
  it('keeps a recursive fan-out of one function from starving another of instances', async () => {
    ({ rt, logs } = await runtimeWithLogs({ workers: 2, maxInstances: 24 }));
    const r = rt;
    await r.register('recurse', guestBytes('chain_recurse'), { timeoutMs: 3000, maxConcurrency: 6 });
    await r.register('hello', guestBytes('core_hello'));
    // 63 calls whose leaves sleep far past the timeout: without a quota they take every instance.
    const fanOut = settle(r.invoke('recurse', 'recurse 5 20000'));
    await until(() => {
      const s = r.stats();
      return (s.byFunction?.['recurse']?.waiting ?? 0) > 0 || s.instances >= 24;
    });
    const hello = await settle(r.invoke('hello', 'world'));
    expect(hello.ok ? text(hello.value.output) : hello.error.code).toBe('Hello world');
    const during = r.stats().byFunction['recurse']!;
    expect(during).toMatchObject({ running: 6, maxConcurrency: 6 });
    expect(during.waiting).toBeGreaterThan(0);
    // The fan-out waits on itself and times out (the root itself, or first its calls, which
    // it then reports as failed); every slot and waiting call is given back.
    const outcome = await fanOut;
    expect(['E_TIMEOUT', 'failed']).toContain(outcome.ok ? text(outcome.value.output) : outcome.error.code);
    await until(() => {
      const s = r.stats().byFunction['recurse']!;
      return s.running === 0 && s.waiting === 0;
    });
    expect(text((await r.invoke('recurse', 'recurse 2 1')).output)).toBe('ok');
  });

  it('runs calls over the quota later, in order, instead of failing them', async () => {
    const rt = await start(2);
    await rt.register('sleep', guestBytes('core_sleep'), { maxConcurrency: 2 });
    const calls = [0, 1, 2, 3, 4].map((i) => rt.invoke('sleep', String(20 + i)));
    await until(() => rt.stats().byFunction['sleep']!.waiting === 3);
    expect(rt.stats().byFunction['sleep']!.running).toBe(2);
    expect((await Promise.all(calls)).map((c) => text(c.output))).toEqual(['slept 20', 'slept 21', 'slept 22', 'slept 23', 'slept 24']);
    expect(rt.stats().byFunction['sleep']).toMatchObject({ running: 0, waiting: 0, maxConcurrency: 2 });
  });

  it('fails calls still waiting for a slot with E_CLOSED at close(), and none reaches a worker', async () => {
    const rt = await start(2);
    await rt.register('sleep', guestBytes('core_sleep'), { maxConcurrency: 1 });
    const calls = [0, 1, 2].map(() => settle(rt.invoke('sleep', '5000')));
    const started = () => logs.filter((l) => l.function === 'sleep' && l.message.startsWith('before')).length;
    await until(() => rt.stats().byFunction['sleep']!.waiting === 2 && started() === 1);
    await rt.close();
    expect((await Promise.all(calls)).map((c) => (c.ok ? 'ok' : c.error.code))).toEqual(['E_CLOSED', 'E_CLOSED', 'E_CLOSED']);
    expect(started()).toBe(1);
  });

  it('admits a group only when all its ranks fit, and refuses one larger than the quota', async () => {
    const rt = await start(2);
    await rt.register('ops', guestBytes('comm_ops'), { maxConcurrency: 4 });
    const groups = [0, 1, 2].map(() => rt.invokeGroup('ops', 3, 'allreduce'));
    expect((await Promise.all(groups)).map((g) => g.map((r) => text(r.output)))).toEqual(Array(3).fill(Array(3).fill('3,30,300')));
    await expect(rt.invokeGroup('ops', 5, 'allreduce')).rejects.toMatchObject({ code: 'E_INSTANCE_LIMIT' });
    await expect(rt.register('bad', guestBytes('core_hello'), { maxConcurrency: 0 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { path: 'options.maxConcurrency' },
    });
  });
});
