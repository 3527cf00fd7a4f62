// Interruption checks: a call looping on its worker's CPU past its deadline traps at its next
// function entry or loop header and fails alone with E_TIMEOUT — its worker, the worker's warm
// instances and every other call on it (suspended or queued) go on.
import { describe, expect, it } from 'vitest';
import type { NuvolaError } from 'nuvola';
import { closedAfterEach, guestBytes, text } from './helpers.js';

const code = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: NuvolaError) => e.code,
  );

const runtime = closedAfterEach();

describe('interrupting a call past its deadline', () => {
  it('a runaway beside 50 suspended calls on one worker: it alone fails, no worker is lost', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 200 });
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 30_000 });
    const sleepers = Array.from({ length: 50 }, () => rt.invoke('sleep', '600'));
    // Every sleeper has started (suspended in its sleep) before the runaway takes the CPU.
    const { until } = await import('nuvola/testing');
    await until(() => rt.stats().instances >= 50);
    const err = (await rt.invoke('loop', 'loop').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_TIMEOUT');
    expect(err.message).toMatch(/interrupted on its worker/);
    const answers = await Promise.all(sleepers);
    expect(answers.every((r) => text(r.output) === 'slept 600')).toBe(true);
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1, timeoutTerminations: 0, failed: 1 });
  });

  it('recursion without a loop is interrupted at a function entry', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('fib', guestBytes('preempt_fib'), { timeoutMs: 150 });
    expect(text((await rt.invoke('fib', '20')).output)).toBe('6765');
    const err = (await rt.invoke('fib', '60').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_TIMEOUT');
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1 });
    // The instance it ran on was reset like after any trap, and serves the next call.
    expect(text((await rt.invoke('fib', '21')).output)).toBe('10946');
  });

  it('an interrupt meant for a call that already ended stops nothing else', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 100 });
    for (let round = 0; round < 3; round++) {
      expect((await rt.invoke('loop', 'loop').catch((e: NuvolaError) => e.code)) as string).toBe('E_TIMEOUT');
      // Later calls have other ids and run.
      expect((await rt.invoke('loop', 'no')).returnCode).toBe(0);
    }
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 3 });
  });

  it('loops the walk must not miss: a tail call, a loop with parameters, recursion through a table', async () => {
    const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const memory = '(memory (export "memory") 1 1)';
    const runaways = {
      // No loop: every return_call enters $spin, whose entry check runs.
      tail: `(module ${memory}
        (func $spin (param i32) (result i32) (return_call $spin (i32.add (local.get 0) (i32.const 1))))
        (func (export "main") (result i32) (call $spin (i32.const 0))))`,
      // A loop whose block type is a type index: its parameters are on the stack at the check.
      params: `(module ${memory} (type $t (func (param i32 i64) (result i32)))
        (func (export "main") (result i32) (i32.const 0) (i64.const 0)
          (loop $l (type $t) (param i32 i64) (result i32) (i64.const 1) (i64.add) (br $l))))`,
      // 2^5000 calls through call_indirect, none of them a loop.
      table: `(module ${memory} (table 1 funcref) (elem (i32.const 0) $r) (type $v (func (param i32) (result i32)))
        (func $r (type $v) (if (result i32) (i32.gt_u (local.get 0) (i32.const 5000)) (then (i32.const 0))
          (else (drop (call_indirect (type $v) (i32.add (local.get 0) (i32.const 1)) (i32.const 0)))
                (call_indirect (type $v) (i32.add (local.get 0) (i32.const 1)) (i32.const 0)))))
        (func (export "main") (result i32) (call $r (i32.const 0))))`,
    };
    const { rt } = await runtime({ workers: 1 });
    for (const [name, wat] of Object.entries(runaways)) {
      await rt.register(name, await parse(wat), { timeoutMs: 100 });
      const err = (await rt.invoke(name, '').catch((e: unknown) => e)) as NuvolaError;
      expect([name, err.code, err.message]).toEqual([name, 'E_TIMEOUT', expect.stringMatching(/interrupted on its worker/)]);
    }
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 3, timeoutTerminations: 0 });
  });

  it('straight-line code without loops or calls (bulk memory, host calls) is interrupted too, not its worker', async () => {
    // No loop and one function entry: checks only there let such a body run for seconds past its
    // deadline, until the worker was replaced — taking every other call on it along. A hostile
    // guest needs only a long run of memory.fill (or of a slow host call) to force that.
    const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const fill = '(memory.fill (i32.const 0) (i32.const 7) (i32.const 16777216))'.repeat(6000);
    const copy = '(memory.copy (i32.const 0) (i32.const 8388608) (i32.const 8388608))'.repeat(12000);
    const random = '(drop (call $random (i32.const 0) (i32.const 16777216)))'.repeat(2000);
    const bodies = { fill, copy, random };
    const { rt } = await runtime({ workers: 1 });
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 30_000 });
    const sleeper = rt.invoke('sleep', '2500');
    for (const [name, body] of Object.entries(bodies)) {
      const wasm = await parse(`(module
        (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
        (memory (export "memory") 256 256)
        (func (export "main") (result i32) ${body} (i32.const 0)))`);
      // Start-up has its time (compiling the long body takes a while on a busy machine); the call 100 ms.
      await rt.register(name, wasm, { timeoutMs: 10_000, memoryLimitPages: 256 });
      const err = (await rt.invoke(name, '', { timeoutMs: 100 }).catch((e: unknown) => e)) as NuvolaError;
      expect([name, err.code, err.message]).toEqual([name, 'E_TIMEOUT', expect.stringMatching(/interrupted on its worker/)]);
    }
    expect(text((await sleeper).output)).toBe('slept 2500');
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 3, timeoutTerminations: 0 });
  });

  it('call ids stay i32s: the call after id 2^31-1 runs, and a loop then is still interrupted', async () => {
    // The id travels as an i32 (Control.RUNNING, __nuvola_arm, the word): id 2^31 would arm as
    // i32 min — NO_INTERRUPT, what an idle word holds — and trap at its first check; larger ids
    // never match RUNNING, so a runaway looked like a zombie. White-box: start near the edge.
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 100 });
    (rt as unknown as { pool: { nextId: number } }).pool.nextId = 0x7fffffff;
    for (let n = 0; n < 3; n++) expect((await rt.invoke('loop', 'no')).returnCode).toBe(0);
    const err = (await rt.invoke('loop', 'loop').catch((e: unknown) => e)) as NuvolaError;
    expect([err.code, err.message]).toEqual(['E_TIMEOUT', expect.stringMatching(/interrupted on its worker/)]);
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1, timeoutTerminations: 0, failed: 1 });
  });

  it('the interrupt word is cleared once the interrupted call has settled (a reused id is not stopped)', async () => {
    // Ids repeat: a worker's own chained calls are numbered modulo 4,000,000 (runtime/worker/
    // entry.ts). A word left naming an interrupted call would stop, at its first check, the
    // innocent call that gets the same id later — or a call the word was set for a moment after
    // it ended. White-box: the pool's worker slot holds the word.
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 100 });
    expect((await rt.invoke('loop', 'loop').catch((e: NuvolaError) => e.code)) as string).toBe('E_TIMEOUT');
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1 });
    const { pool } = rt as unknown as { pool: { slots: { interrupt: { word: Int32Array } }[] } };
    expect(Atomics.load(pool.slots[0]!.interrupt.word, 0)).toBe(-0x80000000);
  });

  it('bad input beside 40 suspended calls on one worker: each fails with its own code, no other call is lost', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 60_000 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 100 });
    await rt.register('fib', guestBytes('preempt_fib'), { timeoutMs: 100 });
    await rt.register('overflow', guestBytes('core_stack_overflow'), { timeoutMs: 10_000 });
    await rt.register('hog', guestBytes('core_memory_hog'), { timeoutMs: 10_000, memoryLimitPages: 64 });
    const sleepers = Array.from({ length: 40 }, () => rt.invoke('sleep', '3000'));
    const { until } = await import('nuvola/testing');
    await until(() => rt.stats().instances >= 40);
    // A loop that never calls the host; recursion with no loop; recursion without end (the
    // stack runs out long before the deadline: a trap, not a timeout); allocation without end.
    const overflow = (await rt.invoke('overflow').catch((e: unknown) => e)) as NuvolaError;
    const hog = (await rt.invoke('hog').catch((e: unknown) => e)) as NuvolaError;
    expect([
      await code(rt.invoke('loop', 'loop')),
      await code(rt.invoke('fib', '60')),
      overflow.code,
      overflow.details['trap'],
      hog.code,
    ]).toEqual(['E_TIMEOUT', 'E_TIMEOUT', 'E_GUEST_TRAP', 'call stack exhausted', 'E_MEMORY_LIMIT']);
    // A loop in init(): register fails, the worker (with the sleepers on it) goes on.
    expect(await code(rt.register('initLoop', guestBytes('core_init_loop'), { timeoutMs: 100 }))).toBe('E_TIMEOUT');
    const answers = await Promise.all(sleepers);
    expect(answers.filter((r) => text(r.output) === 'slept 3000')).toHaveLength(40);
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 3, timeoutTerminations: 0, failed: 4 });
    expect(text((await rt.invoke('fib', '20')).output)).toBe('6765');
  });

  it('a loop in init() is interrupted at register, and the worker serves on', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('sleep', guestBytes('core_sleep'), { timeoutMs: 30_000 });
    const sleeper = rt.invoke('sleep', '400');
    const err = (await rt.register('spin', guestBytes('core_init_loop'), { timeoutMs: 150 }).catch((e: unknown) => e)) as NuvolaError;
    expect([err.code, err.message]).toEqual(['E_TIMEOUT', expect.stringMatching(/init\(\) may loop/)]);
    expect(rt.functions()).toEqual(['sleep']);
    expect(text((await sleeper).output)).toBe('slept 400');
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1, timeoutTerminations: 0 });
    // The interrupt word was put back: the next registration's start-up code runs through.
    await rt.register('fib', guestBytes('preempt_fib'));
    expect(text((await rt.invoke('fib', '10')).output)).toBe('55');
    const { pool } = rt as unknown as { pool: { slots: { interrupt: { word: Int32Array } }[] } };
    expect(Atomics.load(pool.slots[0]!.interrupt.word, 0)).toBe(-0x80000000);
  });

  it('a loop in init() the rewrite could not instrument costs its worker, counted in timeoutTerminations', async () => {
    const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    // An atomic load, which the rewrite does not follow: the module is neither reset nor checked.
    const wasm = await parse(`(module (memory (export "memory") 1 1)
      (func (export "init") (local i32) (loop $spin (local.set 0 (i32.atomic.load (i32.const 0))) (br $spin)))
      (func (export "main") (result i32) (i32.const 0)))`);
    const { rt } = await runtime({ workers: 1 });
    expect(await code(rt.register('spin', wasm, { timeoutMs: 100 }))).toBe('E_TIMEOUT');
    const { until } = await import('nuvola/testing');
    await until(() => rt.stats().workerRestarts === 1);
    expect(rt.stats()).toMatchObject({ interrupts: 0, timeoutTerminations: 1 });
  });
});

describe('the deadline watchdog thread', () => {
  /** Keeps this thread (and its event loop) busy for `ms`. */
  const block = (ms: number): void => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };

  it('interrupts a looping call at its deadline while the main thread is blocked, once', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 100 });
    const { until } = await import('nuvola/testing');
    // White-box: its thread is up (on a loaded machine starting a thread takes a second or more).
    await until(() => (rt as unknown as { pool: { watchdog: { running: boolean } } }).pool.watchdog.running);
    const answer = rt.invoke('loop', 'loop').then(
      () => new Error('the loop returned') as NuvolaError,
      (e: unknown) => e as NuvolaError,
    );
    // On the worker's CPU before the main thread stops serving its event loop for 800 ms.
    await until(() => rt.stats().instances >= 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    block(800);
    const err = await answer;
    expect(err.code).toBe('E_TIMEOUT');
    expect(err.message).toMatch(/interrupted on its worker/);
    // The guest trapped while this thread was blocked: its time on the worker (until the trap)
    // is near timeoutMs, not the ~820 ms a timer on this thread would have let it run.
    const usage = err.details['usage'] as { wallMs: number };
    expect(usage.wallMs).toBeLessThan(500);
    // Counted once, though the main thread's timer and sweep saw the call past its deadline too.
    expect(rt.stats()).toMatchObject({ interrupts: 1, workerRestarts: 0, timeoutTerminations: 0 });
    expect((await rt.invoke('loop', 'no')).returnCode).toBe(0);
  });

  it("without it, the main thread's timer interrupts as before", async () => {
    const { rt } = await runtime({ workers: 1 });
    const { stopWatchdog } = await import('nuvola/testing');
    await stopWatchdog(rt);
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 100 });
    for (let round = 0; round < 2; round++) {
      const err = (await rt.invoke('loop', 'loop').catch((e: unknown) => e)) as NuvolaError;
      expect([err.code, err.message]).toEqual(['E_TIMEOUT', expect.stringMatching(/interrupted on its worker/)]);
    }
    expect(rt.stats()).toMatchObject({ interrupts: 2, workerRestarts: 0, timeoutTerminations: 0 });
  });

  it('a call stopped by its cpuLimitMs is still E_CPU_LIMIT, and a cancelled one E_CANCELLED', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('cpu', guestBytes('core_loop'), { timeoutMs: 5_000, cpuLimitMs: 50 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 5_000 });
    expect(((await rt.invoke('cpu', 'loop').catch((e: unknown) => e)) as NuvolaError).code).toBe('E_CPU_LIMIT');
    const controller = new AbortController();
    const cancelled = rt.invoke('loop', 'loop', { signal: controller.signal }).then(
      () => 'returned',
      (e: NuvolaError) => e.code,
    );
    setTimeout(() => controller.abort(), 50);
    expect(await cancelled).toBe('E_CANCELLED');
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, timeoutTerminations: 0 });
  });
});
