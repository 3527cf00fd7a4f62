import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime, LogEntry } from 'nuvola';
import { guestBytes, guestPath, runtimeWithLogs, text } from './helpers.js';

describe('runtime core', () => {
  let rt: Runtime;
  let logs: LogEntry[];

  beforeAll(async () => {
    ({ rt, logs } = await runtimeWithLogs({ workers: 2 }));
    await rt.register('hello', guestPath('core_hello'));
    await rt.register('echo', guestBytes('core_echo'));
    await rt.register('log', guestBytes('core_log'));
    await rt.register('init', guestBytes('core_init'));
    await rt.register('counter', guestBytes('core_counter'));
  });
  afterAll(() => rt.close());

  it('runs a guest with a string input and returns its output', async () => {
    const result = await rt.invoke('hello', 'nuvola');
    expect(text(result.output)).toBe('Hello nuvola');
    expect(result.returnCode).toBe(0);
  });

  it('passes bytes both ways and reports the return code of main', async () => {
    const result = await rt.invoke('echo', new Uint8Array([1, 2, 3, 250]));
    expect([...result.output]).toEqual([250, 3, 2, 1]);
    expect(result.returnCode).toBe(4);
  });

  it('reports how long the call kept its worker (workerMs), within its wall time', async () => {
    await rt.register('sleeper', guestBytes('core_sleep'));
    const slept = await rt.invoke('sleeper', '30');
    // A suspension counts: the call held its instance for the 30 ms sleep.
    expect(slept.workerMs).toBeGreaterThanOrEqual(29);
    expect(slept.workerMs).toBeLessThanOrEqual(slept.durationMs);
    const quick = await rt.invoke('echo', new Uint8Array([1]));
    expect(quick.workerMs).toBeGreaterThan(0);
    expect(quick.workerMs).toBeLessThanOrEqual(quick.durationMs);
    rt.unregister('sleeper');
  });

  it('treats a missing input as empty', async () => {
    const result = await rt.invoke('echo');
    expect(result.output.byteLength).toBe(0);
    expect(result.returnCode).toBe(0);
  });

  it('accepts an ArrayBuffer input', async () => {
    const result = await rt.invoke('echo', new Uint8Array([9, 8]).buffer);
    expect([...result.output]).toEqual([8, 9]);
  });

  it("delivers the guest's log lines to the logger, tagged with the function", async () => {
    await rt.invoke('log', 'abc');
    const lines = logs.filter((l) => l.function === 'log').map((l) => l.message);
    expect(lines).toEqual(['first line', 'second: abc']);
  });

  it('runs init() once per instance before main', async () => {
    const result = await rt.invoke('init');
    expect(text(result.output)).toBe('5,102');
  });

  it('spreads many concurrent calls over both workers and answers each correctly', async () => {
    const inputs = Array.from({ length: 500 }, (_, i) => `caller-${i}`);
    const results = await Promise.all(inputs.map((input) => rt.invoke('hello', input)));
    results.forEach((r, i) => expect(text(r.output)).toBe(`Hello caller-${i}`));
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });

  it("keeps instances warm: with reuse 'keep', calls one at a time reuse the same instance, globals and all", async () => {
    const { rt: one } = await runtimeWithLogs({ workers: 1 });
    try {
      await one.register('counter', guestBytes('core_counter'), { reuse: 'keep' });
      const first = await one.invoke('counter');
      const again = await one.invoke('counter');
      expect([first.cold, again.cold]).toEqual([false, false]);
      expect(Number(text(again.output))).toBe(Number(text(first.output)) + 1);
    } finally {
      await one.close();
    }
  });

  it('with maxIdleInstances 0, keeps no instance warm', async () => {
    const { rt: none } = await runtimeWithLogs({ workers: 1, maxIdleInstances: 0 });
    try {
      await none.register('counter', guestBytes('core_counter'));
      const results = [await none.invoke('counter'), await none.invoke('counter')];
      expect(results.map((r) => r.cold)).toEqual([true, true]);
      expect(results.map((r) => text(r.output))).toEqual(['1', '1']);
    } finally {
      await none.close();
    }
  });

  it('lists registered functions and reports stats', () => {
    expect(rt.functions().sort()).toEqual(['counter', 'echo', 'hello', 'init', 'log']);
    const stats = rt.stats();
    expect(stats.workers).toBe(2);
    expect(stats.functions).toBe(5);
    expect(stats.completed).toBeGreaterThan(500);
  });

  it('unregisters a function, after the calls already accepted', async () => {
    await rt.register('temp', guestBytes('core_hello'));
    const accepted = rt.invoke('temp', 'before');
    rt.unregister('temp');
    expect(text((await accepted).output)).toBe('Hello before');
    await expect(rt.invoke('temp')).rejects.toMatchObject({ code: 'E_UNKNOWN_FUNCTION' });
  });
});

describe('result batches', () => {
  it("a worker that was idle sends a batch's results together, not its first one alone", async () => {
    const { rt } = await runtimeWithLogs({ workers: 1, idleSpinMicros: 0 });
    try {
      await rt.register('echo', guestBytes('core_echo'));
      const { onResultBatch } = await import('nuvola/testing');
      const sizes: number[] = [];
      onResultBatch(rt, 0, (n) => sizes.push(n));
      const firsts: number[] = [];
      for (let round = 0; round < 5; round++) {
        // Idle for longer than a batch may hold results (1 ms), then 20 calls in one message.
        await new Promise((resolve) => setTimeout(resolve, 20));
        sizes.length = 0;
        await Promise.all(Array.from({ length: 20 }, () => rt.invoke('echo', 'x')));
        firsts.push(sizes[0]!);
      }
      // Before, the idle time counted as the batch's running time: every first result left alone
      // (one message per call in flight, each costing the main thread as much as a call).
      expect(firsts.filter((n) => n > 1).length, `first messages: ${firsts.join(', ')}`).toBeGreaterThanOrEqual(4);
    } finally {
      await rt.close();
    }
  });
});
