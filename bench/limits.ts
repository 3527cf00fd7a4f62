/**
 * `nuvola bench limits` (also `nuvola bench preempt`, its old name): what the interruption
 * checks cost and what they buy, side by side in one run:
 * - compute-heavy guests (a Mandelbrot row, recursive Fibonacci, a tight array loop) with the
 *   checks vs the same module rewritten without them, one warm instance each on this thread
 *   (the worker's instance layer), alternating, medians over runs: the overhead;
 * - from a looping call's deadline to its E_TIMEOUT answer, on a real worker, p50/p99: the pool
 *   as it is (its watchdog thread sets the interrupt word at the deadline) vs the same pool
 *   without the watchdog (the main thread's timer at the nearest deadline does it) vs without
 *   that timer too, so that only its 5 ms sweep finds deadlines (as in 0.9.0), rotating;
 * - one worker holding 200 suspended calls when a runaway on it passes its deadline: calls lost
 *   (E_WORKER_LOST), worker restarts and calls answered, with the checks (interrupted) vs code
 *   the rewrite cannot instrument (its worker stopped).
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime, type NuvolaError, type Runtime } from 'nuvola';
import { GuestInstance } from '../runtime/worker/instance.js';
import { localEnv, snapshotHere } from '../runtime/worker/local.js';
import { callMs, computeGuest } from './compute.js';
import { figure, median, percentile, report, type BenchReport } from './harness.js';

export const LIMITS_DEFAULTS = { runs: 7 };

const sleepSource = fileURLToPath(new URL('../../bench/guests/nap.ts', import.meta.url));

/** A loop in code the rewrite cannot follow (an atomic load): no checks, so only its worker can stop it. */
async function uninstrumentedSpin(): Promise<Uint8Array> {
  const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  return parse(`(module (memory (export "memory") 1 1)
    (func (export "main") (result i32) (local i32)
      (loop $spin (local.set 0 (i32.atomic.load (i32.const 0))) (br $spin)) (i32.const 0)))`);
}

export async function benchLimits(runs = LIMITS_DEFAULTS.runs): Promise<BenchReport> {
  // The trap latency is a matter of threads being scheduled: the report says how busy the machine was.
  const loadBefore = loadavg()[0]!;
  const { wasm, workloads } = await computeGuest();
  const checked = await snapshotHere('checked', wasm, localEnv());
  const plain = await snapshotHere('plain', wasm, localEnv(), 1024, { interruptChecks: false });
  const sides = { checked: GuestInstance.restore(checked.spec, checked.env), plain: GuestInstance.restore(plain.spec, plain.env) };
  const figures = [];
  const notes: string[] = [];
  try {
    for (const w of workloads) {
      const times = { checked: [] as number[], plain: [] as number[] };
      callMs(sides.checked, w.input, 3);
      callMs(sides.plain, w.input, 3);
      for (let run = 0; run < runs; run++) {
        const order = run % 2 === 0 ? (['checked', 'plain'] as const) : (['plain', 'checked'] as const);
        for (const side of order) times[side].push(callMs(sides[side], w.input, 5));
      }
      figures.push(
        figure(`${w.name}, with interruption checks`, 'ms', 'lower', times.checked, 'the same module without checks', times.plain),
      );
      notes.push(
        `${w.name}: with checks ${median(times.checked).toFixed(2)} ms (${Math.min(...times.checked).toFixed(2)}–${Math.max(...times.checked).toFixed(2)}), ` +
          `without ${median(times.plain).toFixed(2)} ms (${Math.min(...times.plain).toFixed(2)}–${Math.max(...times.plain).toFixed(2)}).`,
      );
    }
  } finally {
    sides.checked.dispose();
    sides.plain.dispose();
  }

  // From the deadline to the answer: the pool as it is (the watchdog thread sets the interrupt
  // word) vs the main thread's deadline timer doing it (as before the watchdog) vs the 5 ms sweep
  // alone (as in 0.9.0), alternating.
  const timeoutMs = 20;
  const quiet = { workers: 1, logger: (): void => {} };
  const deadlineSides = ['watchdog', 'timer', 'sweep'] as const;
  type Side = (typeof deadlineSides)[number];
  const pools: Record<Side, Runtime> = {
    watchdog: await createRuntime(quiet),
    timer: await createRuntime(quiet),
    sweep: await createRuntime(quiet),
  };
  try {
    // White-box (bench only): the baselines run without the watchdog; the sweep's also without its timer.
    type Inside = { pool: { watchdog: { close: () => Promise<void> }; deadlines: { watch: () => void } } };
    await (pools.timer as unknown as Inside).pool.watchdog.close();
    await (pools.sweep as unknown as Inside).pool.watchdog.close();
    (pools.sweep as unknown as Inside).pool.deadlines.watch = () => {};
    for (const rt of Object.values(pools)) await rt.register('spin', wasm, { timeoutMs });
    const late: Record<Side, number[]> = { watchdog: [], timer: [], sweep: [] };
    const p50s: Record<Side, number[]> = { watchdog: [], timer: [], sweep: [] };
    const lateness = async (rt: Runtime, calls: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < calls; i++) {
        const t = performance.now();
        const err = (await rt.invoke('spin', 'spin').catch((e: NuvolaError) => e)) as NuvolaError;
        if (err.code !== 'E_TIMEOUT') throw new Error(`the runaway answered ${err.code ?? 'a result'}, not E_TIMEOUT`);
        out.push(performance.now() - t - timeoutMs);
      }
      return out;
    };
    for (const rt of Object.values(pools)) await lateness(rt, 5);
    for (let run = 0; run < runs; run++) {
      // Rotate which side goes first, so a drift over the run favours none.
      for (let k = 0; k < deadlineSides.length; k++) {
        const side = deadlineSides[(run + k) % deadlineSides.length]!;
        const samples = (await lateness(pools[side], 30)).sort((a, b) => a - b);
        p50s[side].push(percentile(samples, 50));
        late[side].push(...samples);
      }
    }
    for (const side of deadlineSides) late[side].sort((a, b) => a - b);
    const p99 = (side: Side): number => percentile(late[side], 99);
    figures.push(
      figure(
        'deadline → E_TIMEOUT answer of a looping call, watchdog thread (p99 over all calls)',
        'ms',
        'lower',
        p50s.watchdog,
        "the main thread's deadline timer (before the watchdog)",
        p50s.timer,
        [p99('watchdog')],
      ),
      figure(
        "deadline → E_TIMEOUT answer of a looping call, main thread's timer (p99 over all calls)",
        'ms',
        'lower',
        p50s.timer,
        'the pool with only its 5 ms sweep',
        p50s.sweep,
        [p99('timer')],
      ),
    );
    const stats = Object.values(pools).map((rt) => rt.stats());
    const line = (side: Side): string =>
      `${side} p50 ${percentile(late[side], 50).toFixed(2)} ms, p99 ${p99(side).toFixed(2)} ms, max ${late[side].at(-1)!.toFixed(2)} ms`;
    notes.push(
      `deadline → E_TIMEOUT answer (timeoutMs ${timeoutMs}, ${late.watchdog.length} calls a side): ${deadlineSides.map(line).join('; ')}; ` +
        `${stats.reduce((n, s) => n + s.interrupts, 0)} interrupts, ${stats.reduce((n, s) => n + s.workerRestarts, 0)} worker restarts.`,
    );
  } finally {
    await Promise.all(Object.values(pools).map((rt) => rt.close()));
  }

  // What a runaway costs 200 calls suspended beside it on its worker.
  const rt = await createRuntime(quiet);
  try {
    await rt.register('spin', wasm, { timeoutMs: 50 });
    await rt.register('spinPlain', await uninstrumentedSpin(), { timeoutMs: 50 });
    await rt.register('nap', await buildGuest(sleepSource, { optimizeLevel: 3 }), { timeoutMs: 60_000 });
    const beside = async (runaway: string): Promise<{ lost: number; answered: number; restarts: number; code: string }> => {
      const restarts = rt.stats().workerRestarts;
      const naps = Array.from({ length: 200 }, () =>
        rt.invoke('nap', '400').then(
          () => 'ok',
          (e: NuvolaError) => e.code,
        ),
      );
      while (rt.stats().instances < 200) await new Promise((r) => setTimeout(r, 5));
      const code = await rt.invoke(runaway, 'spin').then(
        () => 'ok',
        (e: NuvolaError) => e.code,
      );
      const answers = await Promise.all(naps);
      return {
        lost: answers.filter((c) => c === 'E_WORKER_LOST').length,
        answered: answers.filter((c) => c === 'ok').length,
        restarts: rt.stats().workerRestarts - restarts,
        code,
      };
    };
    const withChecks = await beside('spin');
    const without = await beside('spinPlain');
    figures.push(
      figure(
        'calls lost (E_WORKER_LOST) beside a runaway (200 suspended on its worker), with checks',
        'calls',
        'lower',
        [withChecks.lost],
        'code without checks (its worker is stopped)',
        [without.lost],
      ),
    );
    notes.push(
      `beside a runaway, with checks: ${withChecks.lost} of 200 suspended calls lost (E_WORKER_LOST), ${withChecks.answered} of 200 answered, ` +
        `${withChecks.restarts} worker restarts, the runaway answered ${withChecks.code}; without checks: ${without.lost} lost, ${without.answered} answered, ` +
        `${without.restarts} worker restarts (${without.code}); stats: ${JSON.stringify({ interrupts: rt.stats().interrupts, timeoutTerminations: rt.stats().timeoutTerminations })}.`,
    );
  } finally {
    await rt.close();
  }
  notes.push(
    `machine: ${cpus().length} CPUs, 1-minute load average ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end.`,
  );
  return report('limits', runs, figures, notes);
}
