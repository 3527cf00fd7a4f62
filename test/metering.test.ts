// Per-call metering (issue 20): `usage` on every result and on the errors of calls that ran,
// cpuLimitMs (CPU, not time suspended), fuel, per-function stats, energy from RAPL counters.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime, type NuvolaError, type Usage } from 'nuvola';
import { until } from 'nuvola/testing';
import { LogHistogram, packUsage, unpackUsage, USAGE_FIELDS } from '../dist/runtime/metering.js';
import { closedAfterEach, guestBytes, text } from './helpers.js';

const runtime = closedAfterEach();

function failure(promise: Promise<unknown>): Promise<NuvolaError> {
  return promise.then(
    () => {
      throw new Error('the call succeeded');
    },
    (err: unknown) => err as NuvolaError,
  );
}

describe('usage', () => {
  it('is on every result, each field plausible and consistent', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('echo', guestBytes('core_echo'));
    const r = await rt.invoke('echo', 'hello metering');
    const u = r.usage!;
    expect(text(r.output)).toBe('gniretem olleh');
    expect(u.bytesIn).toBe(14);
    expect(u.bytesOut).toBe(14);
    expect(u.wallMs).toBe(r.workerMs);
    // The thread CPU clock advances at scheduler ticks: a short call may read 0; never more than its wall time.
    expect(u.cpuMs).toBeGreaterThanOrEqual(0);
    expect(u.cpuMs).toBeLessThanOrEqual(u.wallMs);
    expect(u.peakMemoryBytes).toBeGreaterThanOrEqual(65536);
    expect(u.peakMemoryBytes % 65536).toBe(0);
    expect(u.gbSeconds).toBeCloseTo((u.peakMemoryBytes / 2 ** 30) * (u.wallMs / 1000), 12);
    expect(u).toMatchObject({ stateBytesRead: 0, stateBytesWritten: 0, statePushedBytes: 0, kernelMs: 0 });
    expect(u.fuel).toBeUndefined();
    // No RAPL counters on this machine (or no permission): no figure, and stats say why.
    const energy = rt.stats().energy;
    if (!energy.available) {
      expect(u.energyJoules).toBeUndefined();
      expect(energy.reason).toMatch(/energy counters|RAPL/);
    }
  });

  it('counts the state bytes a call read, wrote and pushed', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('roundtrip', guestBytes('state_roundtrip'));
    const u = (await rt.invoke('roundtrip', 'meter-key')).usage!;
    // Wrote 4 bytes, read them twice, pushed the 4-byte value once.
    expect(u).toMatchObject({ stateBytesWritten: 4, stateBytesRead: 8, statePushedBytes: 4, bytesIn: 9, bytesOut: 8 });
  });

  it('a suspended call: wall time includes the suspension, CPU time does not', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('sleep', guestBytes('core_sleep'));
    const u = (await rt.invoke('sleep', '150')).usage!;
    expect(u.wallMs).toBeGreaterThanOrEqual(145);
    expect(u.cpuMs).toBeLessThan(u.wallMs / 3);
  });

  it('rides on the error of a call that ran', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('abort', guestBytes('core_abort'));
    const err = await failure(rt.invoke('abort', 'xyz'));
    const u = err.details['usage'] as Usage;
    expect(u.bytesIn).toBe(3);
    expect(u.bytesOut).toBe(0);
    expect(u.cpuMs).toBeGreaterThanOrEqual(0);
    expect(u.wallMs).toBeGreaterThan(0);
  });
});

describe('usage packed for the trip between threads', () => {
  it('comes back field for field (fuel only where counted), at any offset', () => {
    const usage: Usage = {
      wallMs: 1.5,
      cpuMs: 2.5,
      peakMemoryBytes: 65536,
      bytesIn: 3,
      bytesOut: 4,
      stateBytesRead: 5,
      stateBytesWritten: 6,
      statePushedBytes: 7,
      kernelMs: 8.5,
      gbSeconds: 9.5,
      energyJoules: undefined,
      fuel: 10,
    };
    const packed = new Float64Array(2 * USAGE_FIELDS.length);
    packUsage({ ...usage, fuel: undefined }, packed, 0);
    packUsage(usage, packed, USAGE_FIELDS.length);
    expect(USAGE_FIELDS.map((_, i) => packed[USAGE_FIELDS.length + i])).toEqual(USAGE_FIELDS.map((f) => usage[f]));
    expect(unpackUsage(packed, USAGE_FIELDS.length)).toEqual(usage);
    const uncounted: Partial<Usage> = { ...usage };
    delete uncounted.fuel;
    expect(unpackUsage(packed, 0)).toEqual(uncounted);
    expect('fuel' in unpackUsage(packed, 0)).toBe(false);
  });
});

describe('cpuLimitMs', () => {
  it('stops a CPU-bound call beside suspended calls of the same limit on one worker; they and the worker go on', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { cpuLimitMs: 40, timeoutMs: 20_000 });
    // Suspended for 400 ms each: far past the CPU limit on the wall clock, using little CPU.
    await rt.register('sleep', guestBytes('core_sleep'), { cpuLimitMs: 40, timeoutMs: 20_000 });
    const sleepers = Array.from({ length: 20 }, () => rt.invoke('sleep', '400'));
    await until(() => rt.stats().instances >= 20);
    const err = await failure(rt.invoke('loop', 'loop'));
    expect(err.code).toBe('E_CPU_LIMIT');
    expect(err.name).toBe('LimitError');
    expect(err.details).toMatchObject({ function: 'loop', cpuLimitMs: 40 });
    expect(err.details['cpuMs']).toBeGreaterThanOrEqual(0);
    expect((err.details['usage'] as Usage).cpuMs).toBe(err.details['cpuMs']);
    const answers = await Promise.all(sleepers);
    for (const r of answers) {
      expect(text(r.output)).toBe('slept 400');
      expect(r.usage!.wallMs).toBeGreaterThan(40);
      expect(r.usage!.cpuMs).toBeLessThan(40);
    }
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, timeoutTerminations: 0, failed: 1 });
    expect(rt.stats().byFunction['loop']!.errors).toEqual({ E_CPU_LIMIT: 1 });
    // The same worker serves the next call of the function that was stopped.
    expect((await rt.invoke('loop', 'no')).returnCode).toBe(0);
  });

  it('the CPU stop is cleared once the stopped call has settled (a reused id is not taken as over its limit)', async () => {
    // Ids repeat (a worker's own chained calls modulo 4,000,000, the pool's at 2^31): a stop left
    // naming a settled call would classify a later timeout of the same id as E_CPU_LIMIT.
    // White-box: the word after the interrupt word on the worker's shared page (worker/meter.ts).
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { cpuLimitMs: 20, timeoutMs: 20_000 });
    expect((await failure(rt.invoke('loop', 'loop'))).code).toBe('E_CPU_LIMIT');
    const { pool } = rt as unknown as { pool: { slots: { interrupt: { memory: WebAssembly.Memory } }[] } };
    expect(Atomics.load(new Int32Array(pool.slots[0]!.interrupt.memory.buffer, 0, 2), 1)).toBe(0);
  });

  it('cannot be escaped by suspending after every short burst (the thread CPU clock lags those slices)', async () => {
    // Linux brings a thread's CPU clock (getrusage) up to date at ticks and switches: a slice of
    // under a tick that ends in a suspension (the worker then blocks) reads almost 0, so a guest
    // alternating ~1 ms bursts with sleep(1) was measured at a fraction of what it used, and ran
    // several times past its limit. Fuel counts its bursts exactly; a run of the same bursts
    // without suspensions (one long slice) says what one burst costs.
    const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const guest = (sleeps: boolean, bursts: string): Promise<Uint8Array> =>
      parse(`(module (import "nuvola:io" "sleep" (func $sleep (param i32))) (memory (export "memory") 1 1)
        (func (export "main") (result i32) (local $b i32) (local $i i32)
          (loop $burst
            (local.set $i (i32.const 400000)) (loop $spin (br_if $spin (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
            ${sleeps ? '(call $sleep (i32.const 1))' : ''}
            (br_if $burst (i32.ne (local.tee $b (i32.add (local.get $b) (i32.const 1))) (i32.const ${bursts}))))
          (i32.const 0)))`);
    const { rt } = await runtime({ workers: 1 });
    await rt.register('steady', await guest(false, '200'), { fuel: Number.MAX_SAFE_INTEGER });
    const steady = (await rt.invoke('steady')).usage!;
    const fuelPerBurst = steady.fuel! / 200;
    const cpuPerBurst = steady.cpuMs / 200;
    const limit = 30;
    await rt.register('bursts', await guest(true, '-1'), { fuel: Number.MAX_SAFE_INTEGER, cpuLimitMs: limit, timeoutMs: 20_000 });
    const err = await failure(rt.invoke('bursts'));
    expect(err.code).toBe('E_CPU_LIMIT');
    const used = ((err.details['usage'] as Usage).fuel! / fuelPerBurst) * cpuPerBurst;
    // Stopped within a sweep and a burst of its limit, had the clock been exact; twice that is ample.
    expect(used).toBeLessThan(2 * limit);
  });

  it('leaves a call under its limit alone', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('busy', guestBytes('core_busy'), { cpuLimitMs: 5000 });
    const r = await rt.invoke('busy', '30');
    expect(text(r.output)).toMatch(/^busy /);
    // Tens of ms of CPU: several ticks of the thread's CPU clock.
    expect(r.usage!.cpuMs).toBeGreaterThan(0);
    expect(r.usage!.cpuMs).toBeLessThanOrEqual(r.usage!.wallMs);
  });
});

describe('fuel', () => {
  it('is deterministic: the same call consumes the same fuel, on any worker', async () => {
    const { rt } = await runtime({ workers: 2 });
    await rt.register('fib', guestBytes('preempt_fib'), { fuel: 10_000_000 });
    const runs = await Promise.all(Array.from({ length: 6 }, () => rt.invoke('fib', '15')));
    const fuel = runs.map((r) => r.usage!.fuel);
    // fib(15) makes 1973 calls of fib, each one function entry; main and the SDK add more.
    expect(fuel[0]).toBeGreaterThan(1973);
    expect(new Set(fuel).size).toBe(1);
    expect(new Set(runs.map((r) => r.worker)).size).toBeGreaterThan(0);
    const bigger = (await rt.invoke('fib', '16')).usage!.fuel!;
    expect(bigger - fuel[0]!).toBeGreaterThanOrEqual(3193 - 1973);
  });

  it('a call that runs out fails with E_FUEL_EXHAUSTED; its worker keeps serving', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('loop', guestBytes('core_loop'), { fuel: 100_000, timeoutMs: 20_000 });
    const err = await failure(rt.invoke('loop', 'loop'));
    expect(err.code).toBe('E_FUEL_EXHAUSTED');
    expect(err.details).toMatchObject({ function: 'loop', fuel: 100_000 });
    expect((err.details['usage'] as Usage).fuel).toBe(100_000);
    const ok = await rt.invoke('loop', 'no');
    expect(ok.returnCode).toBe(0);
    expect(ok.usage!.fuel).toBeLessThan(100_000);
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, timeoutTerminations: 0 });
  });

  it("a module exporting nuvola's own names (__nuvola_fuel, __nuvola_arm) is refused as such, not blamed on nuvola", async () => {
    // The rewrite appends exports with these names; a guest's own would collide with them.
    const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const { rt } = await runtime({ workers: 1 });
    for (const name of ['__nuvola_fuel', '__nuvola_arm', '__nuvola_start']) {
      const wasm = await parse(`(module (memory (export "memory") 1 1) (global $g (mut i64) (i64.const 5))
        (func (export "main") (result i32) (i32.const 0)) (export "${name}" (global $g)))`);
      const err = await failure(rt.register('named', wasm, { fuel: 100 }));
      expect([err.code, err.message, err.details['export']]).toEqual([
        'E_INVALID_MODULE',
        expect.stringMatching(/exports '__nuvola_\w+', a name nuvola reserves/),
        name,
      ]);
    }
    expect(rt.functions()).toEqual([]);
  });

  it('without a budget the code counts nothing', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('fib', guestBytes('preempt_fib'));
    expect((await rt.invoke('fib', '10')).usage!.fuel).toBeUndefined();
  });
});

describe('bad cpuLimitMs and fuel', () => {
  it.each([0, -5, Number.NaN, Infinity, 1.5, '100', null, true])('%s is E_INVALID_OPTION naming the option', async (bad) => {
    const { rt } = await runtime({ workers: 1 });
    for (const option of ['cpuLimitMs', 'fuel']) {
      const err = await failure(rt.register('f', guestBytes('core_echo'), { [option]: bad } as never));
      expect(err.code).toBe('E_INVALID_OPTION');
      expect(err.details['path']).toBe(`options.${option}`);
      expect(err.message).toMatch(new RegExp(`options\\.${option} must be an integer from 1 .*leave it out`));
    }
    expect(rt.stats().functions).toBe(0);
  });
});

describe('per-function stats', () => {
  it('counts calls and errors by code, with latency and CPU percentiles', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('fib', guestBytes('preempt_fib'), { fuel: 50_000 });
    for (let i = 0; i < 20; i++) await rt.invoke('fib', String(i % 10));
    await failure(rt.invoke('fib', '30'));
    const s = rt.stats().byFunction['fib']!;
    expect(s.calls).toBe(21);
    expect(s.errors).toEqual({ E_FUEL_EXHAUSTED: 1 });
    for (const p of [s.latencyMs, s.cpuMs]) {
      expect(p.p50).toBeGreaterThan(0);
      expect(p.p50).toBeLessThanOrEqual(p.p90);
      expect(p.p90).toBeLessThanOrEqual(p.p99);
      expect(p.p99).toBeLessThanOrEqual(p.max);
    }
  });

  it('forgets a function at unregister, also a call of it still in flight then (no stale entry, no growth with churn)', async () => {
    const { rt } = await runtime({ workers: 1 });
    const meters = (rt as unknown as { pool: { meters: { byFunction: Map<string, unknown> } } }).pool.meters;
    for (let round = 0; round < 3; round++) {
      const name = `churn${round}`;
      await rt.register(name, guestBytes('core_sleep'));
      const call = rt.invoke(name, '150').catch(() => undefined);
      await until(() => rt.stats().instances >= 1);
      rt.unregister(name);
      await call;
    }
    // White-box: an answer arriving after its function was unregistered left an entry behind.
    expect([...meters.byFunction.keys()]).toEqual([]);
    // The same name registered again starts from no calls.
    await rt.register('churn0', guestBytes('core_sleep'));
    expect(rt.stats().byFunction['churn0']!.calls).toBe(0);
  });

  it('keeps a bounded histogram whose percentiles are within its bucket width', () => {
    const h = new LogHistogram();
    for (let i = 1; i <= 100_000; i++) h.add(i / 100);
    expect(h.count).toBe(100_000);
    const { p50, p90, p99, max } = h.summary();
    expect(Math.abs(p50 - 500) / 500).toBeLessThan(0.05);
    expect(Math.abs(p90 - 900) / 900).toBeLessThan(0.05);
    expect(Math.abs(p99 - 990) / 990).toBeLessThan(0.05);
    expect(max).toBe(1000);
  });
});

describe('energy', () => {
  it('attributes RAPL energy by CPU share where counters exist (a fake powercap tree)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuvola-rapl-'));
    const zone = join(dir, 'intel-rapl:0');
    mkdirSync(zone);
    mkdirSync(join(dir, 'intel-rapl:0:0'));
    writeFileSync(join(zone, 'max_energy_range_uj'), '20000000\n');
    writeFileSync(join(zone, 'energy_uj'), '15000000\n');
    const stat = join(dir, 'stat');
    const cpuLine = (busy: number): string => `cpu  ${busy} 0 0 5000 0 0 0 0 0 0\ncpu0 1 2 3\n`;
    writeFileSync(stat, cpuLine(1000));
    process.env['NUVOLA_POWERCAP_DIR'] = dir;
    process.env['NUVOLA_PROC_STAT'] = stat;
    const rt = await createRuntime({ workers: 1 }).finally(() => {
      delete process.env['NUVOLA_POWERCAP_DIR'];
      delete process.env['NUVOLA_PROC_STAT'];
    });
    try {
      await rt.register('busy', guestBytes('core_busy'));
      // The counter wraps at 20 J: 15 J → 5 J is 10 J used, over 1000 ticks (10 s) of busy CPU.
      writeFileSync(join(zone, 'energy_uj'), '5000000\n');
      writeFileSync(stat, cpuLine(2000));
      await new Promise((resolve) => setTimeout(resolve, 250));
      const u = (await rt.invoke('busy', '30')).usage!;
      expect(u.cpuMs).toBeGreaterThan(0);
      expect(u.energyJoules).toBeCloseTo(u.cpuMs * (10 / 10_000), 12);
      const energy = rt.stats().energy;
      expect(energy).toMatchObject({ available: true, source: dir });
      expect(energy.attributedJoules).toBeGreaterThan(0);
    } finally {
      await rt.close();
    }
  });

  it('says why there is no figure when the counters cannot be read', async () => {
    process.env['NUVOLA_POWERCAP_DIR'] = join(tmpdir(), 'nuvola-no-such-powercap');
    const rt = await createRuntime({ workers: 1 }).finally(() => delete process.env['NUVOLA_POWERCAP_DIR']);
    try {
      await rt.register('echo', guestBytes('core_echo'));
      expect((await rt.invoke('echo', 'x')).usage!.energyJoules).toBeUndefined();
      expect(rt.stats().energy).toMatchObject({ available: false, reason: expect.stringMatching(/ENOENT/) as unknown });
    } finally {
      await rt.close();
    }
  });
});
