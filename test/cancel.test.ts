// Cancelling a call with an AbortSignal (`invoke(…, { signal })`) in each state it can be in, and
// a guest asking how long it has left (`deadline.remainingMs()`).
import { describe, expect, it } from 'vitest';
import type { NuvolaError } from 'nuvola';
import { until } from 'nuvola/testing';
import { closedAfterEach, guestBytes, text } from './helpers.js';

const runtime = closedAfterEach();
const code = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: NuvolaError) => e.code,
  );

describe('cancelling a call', () => {
  it('stops a call suspended in a host call; its worker and other calls go on', async () => {
    const { rt, logs } = await runtime({ workers: 1 });
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 30_000 });
    const other = rt.invoke('sleep', '300');
    const controller = new AbortController();
    const call = rt.invoke('sleep', '20000', { signal: controller.signal });
    await until(() => logs.some((l) => l.message === 'before 20000'));
    controller.abort(new Error('the user went away'));
    const err = (await call.catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_CANCELLED');
    expect(err.details['reason']).toBe('the user went away');
    expect(text((await other).output)).toBe('slept 300');
    expect(logs.some((l) => l.message === 'after 20000')).toBe(false);
    expect(rt.stats().workerRestarts).toBe(0);
  });

  it('interrupts a call looping on the CPU, long before its deadline', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 60_000 });
    const controller = new AbortController();
    const call = code(rt.invoke('loop', 'loop', { signal: controller.signal }));
    await until(() => rt.stats().inflight === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    expect(await call).toBe('E_CANCELLED');
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1 });
    expect((await rt.invoke('loop', 'no')).returnCode).toBe(0);
  });

  it('drops a call still queued behind another: it never runs', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('busy', guestBytes('core_busy'), { timeoutMs: 60_000 });
    await rt.register('ops', guestBytes('state_ops'));
    // Same turn: both reach the worker in one batch; the write waits behind the busy call, which
    // finishes on its own (no trap), so the worker goes straight on to the next call.
    // Sized to run about two seconds on this machine, so the abort lands while it runs and the
    // cancel waits longer than the pool waits for an answer to a cancel (1.1 s): a worker busy
    // with a call still waited for is not taken for a stuck one.
    const t = performance.now();
    await rt.invoke('busy', '20');
    const millions = Math.max(20, Math.ceil((20 * 2000) / Math.max(1, performance.now() - t)));
    const busy = rt.invoke('busy', String(millions));
    const controller = new AbortController();
    const write = code(rt.invoke('ops', 'write cancelled-key 3', { signal: controller.signal }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    controller.abort();
    expect(await write).toBe('E_CANCELLED');
    expect((await busy).returnCode).toBe(0);
    await rt.invoke('ops', 'size other-key');
    expect(await rt.state.size('cancelled-key')).toBe(0);
  });

  it('times an unanswered cancel from when its worker was first seen free: a pause of this thread does not stop the worker', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('spin', guestBytes('cancel_spin'), { timeoutMs: 60_000 });
    await rt.register('echo', guestBytes('core_echo'));
    // 300 ms by the clock: it ends well inside this thread's pause below.
    const busy = rt.invoke('spin', '300');
    const first = new AbortController();
    const second = new AbortController();
    const queued = code(rt.invoke('echo', 'x', { signal: first.signal }));
    const later = code(rt.invoke('echo', 'y', { signal: second.signal }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The cancel goes out now; the worker reads it only after the spinning call.
    first.abort();
    // This thread pauses past the cancel's grace (1.1 s) while the worker finishes the spinning
    // call, answers the cancel and (unless slowed) runs the second queued call. The second
    // abort then sweeps the worker's calls before those answers are read here: it finds the
    // worker free, but only just — not stuck.
    const end = performance.now() + 2000;
    while (performance.now() < end);
    second.abort();
    expect(await queued).toBe('E_CANCELLED');
    // Its result, when already on the way, answers it; else the cancel does.
    expect(['ok', 'E_CANCELLED']).toContain(await later);
    expect((await busy).returnCode).toBe(0);
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, timeoutTerminations: 0 });
  });

  it('refuses at once with an already aborted signal, and answers a call that finished before the abort', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('echo', guestBytes('core_echo'));
    const early = (await rt.invoke('echo', 'ab', { signal: AbortSignal.abort('no') }).catch((e: unknown) => e)) as NuvolaError;
    expect(early.code).toBe('E_CANCELLED');
    expect(early.details['started']).toBe(false);
    const controller = new AbortController();
    const done = await rt.invoke('echo', 'ab', { signal: controller.signal });
    controller.abort();
    expect(text(done.output)).toBe('ba');
  });

  it('cancelling twice, or after the call finished, has no effect and throws nothing', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 60_000 });
    await rt.register('echo', guestBytes('core_echo'));
    // One signal for a looping call and one queued behind it, aborted twice: each fails once.
    const controller = new AbortController();
    const calls = [
      code(rt.invoke('loop', 'loop', { signal: controller.signal })),
      code(rt.invoke('loop', 'loop', { signal: controller.signal })),
    ];
    await until(() => rt.stats().inflight === 2);
    controller.abort();
    controller.abort(new Error('again'));
    expect(await Promise.all(calls)).toEqual(['E_CANCELLED', 'E_CANCELLED']);
    const before = rt.stats();
    // Finished, then aborted twice: its answer stands, nothing is counted or interrupted.
    const late = new AbortController();
    const done = await rt.invoke('echo', 'ab', { signal: late.signal });
    late.abort();
    late.abort();
    expect(text(done.output)).toBe('ba');
    expect((await rt.invoke('loop', 'no', { signal: late.signal }).catch((e: NuvolaError) => e.code)) as string).toBe('E_CANCELLED');
    expect(text((await rt.invoke('echo', 'cd')).output)).toBe('dc');
    expect(rt.stats()).toMatchObject({
      failed: before.failed + 1,
      completed: before.completed + 2,
      interrupts: before.interrupts,
      workerRestarts: 0,
      timeoutTerminations: 0,
    });
  });

  it('abandons a host handler call; refuses signal on invokeGroup and a signal that is not one', async () => {
    const { rt } = await runtime({ workers: 1 });
    rt.registerHandler('slow', () => new Promise((resolve) => setTimeout(() => resolve(new Uint8Array(1)), 2000)));
    const controller = new AbortController();
    const call = code(rt.invoke('slow', '', { signal: controller.signal }));
    controller.abort();
    expect(await call).toBe('E_CANCELLED');
    await rt.register('echo', guestBytes('core_echo'));
    expect(await code(rt.invokeGroup('echo', 2, '', { signal: controller.signal } as never))).toBe('E_INVALID_OPTION');
    expect(await code(rt.invoke('echo', '', { signal: 'stop' } as never))).toBe('E_INVALID_OPTION');
  });
});

describe('deadline.remainingMs()', () => {
  it('tells a guest how long its call has left', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('deadline', guestBytes('core_deadline'), { timeoutMs: 2000 });
    const [before, after] = text((await rt.invoke('deadline')).output)
      .split(' ')
      .map(Number) as [number, number];
    expect(before).toBeLessThanOrEqual(2000);
    expect(before).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(before - 45);
    const [shorter] = text((await rt.invoke('deadline', '', { timeoutMs: 500 })).output)
      .split(' ')
      .map(Number) as [number];
    expect(shorter).toBeLessThanOrEqual(500);
  });
});
