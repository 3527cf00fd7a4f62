/**
 * `nuvola bench preempt`: what the interruption checks cost and what they buy, side by side:
 * - compute-heavy guests (a Mandelbrot row, recursive Fibonacci, a tight array loop) with the
 *   checks vs the same module rewritten without them, one warm instance each on this thread
 *   (the worker's instance layer), alternating, medians over runs: the overhead;
 * - from a runaway call's deadline to its E_TIMEOUT answer, on a real worker: p50/p99;
 * - a worker holding 200 suspended calls when a runaway passes its deadline: calls lost with
 *   the checks (interrupted) vs with code the rewrite cannot instrument (its worker stopped).
 */
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime, type NuvolaError } from 'nuvola';
import { GuestInstance } from '../runtime/worker/instance.js';
import { localEnv, snapshotHere } from '../runtime/worker/local.js';
import { figure, median, percentile, report, type BenchReport } from './harness.js';

export const PREEMPT_DEFAULTS = { runs: 7 };

const source = fileURLToPath(new URL('../../bench/guests/compute.ts', import.meta.url));
const sleepSource = fileURLToPath(new URL('../../bench/guests/nap.ts', import.meta.url));

/** A loop in code the rewrite cannot follow (an atomic load): no checks, so only its worker can stop it. */
async function uninstrumentedSpin(): Promise<Uint8Array> {
  const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  return parse(`(module (memory (export "memory") 1 1)
    (func (export "main") (result i32) (local i32)
      (loop $spin (local.set 0 (i32.atomic.load (i32.const 0))) (br $spin)) (i32.const 0)))`);
}

export async function benchPreempt(runs = PREEMPT_DEFAULTS.runs): Promise<BenchReport> {
  const wasm = await buildGuest(source, { optimizeLevel: 3 });
  const input = (s: string): Uint8Array => new TextEncoder().encode(s);
  const workloads = [
    { name: 'Mandelbrot row (640 px × 2000 iterations)', input: input('mandel 2000') },
    { name: 'recursive fib(27)', input: input('fib 27') },
    { name: 'tight array loop (400 × 4096 elements)', input: input('array 400') },
  ];
  const checked = await snapshotHere('checked', wasm, localEnv());
  const plain = await snapshotHere('plain', wasm, localEnv(), 1024, { interruptChecks: false });
  const sides = { checked: GuestInstance.restore(checked.spec, checked.env), plain: GuestInstance.restore(plain.spec, plain.env) };
  const callMs = (instance: GuestInstance, bytes: Uint8Array, calls: number): number => {
    const t = performance.now();
    for (let i = 0; i < calls; i++) {
      instance.call(bytes, i + 1, Infinity);
      instance.finish();
      instance.reset();
    }
    return (performance.now() - t) / calls;
  };
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

  // From the deadline to the answer, and what a runaway costs the calls beside it.
  const rt = await createRuntime({ workers: 1, logger: () => {} });
  try {
    const timeoutMs = 50;
    await rt.register('spin', wasm, { timeoutMs });
    await rt.register('spinPlain', await uninstrumentedSpin(), { timeoutMs });
    await rt.register('nap', await buildGuest(sleepSource, { optimizeLevel: 3 }), { timeoutMs: 60_000 });
    const lateness: number[] = [];
    for (let i = 0; i < 10 + 30 * runs; i++) {
      const t = performance.now();
      await rt.invoke('spin', 'spin').catch((e: NuvolaError) => e);
      if (i >= 10) lateness.push(performance.now() - t - timeoutMs);
    }
    lateness.sort((a, b) => a - b);
    const lost = async (runaway: string): Promise<number> => {
      const naps = Array.from({ length: 200 }, () =>
        rt.invoke('nap', '400').then(
          () => 0,
          () => 1,
        ),
      );
      while (rt.stats().instances < 200) await new Promise((r) => setTimeout(r, 5));
      await rt.invoke(runaway, 'spin').catch(() => undefined);
      return (await Promise.all(naps)).reduce((a, b) => a + b, 0);
    };
    const lostWith = await lost('spin');
    const lostWithout = await lost('spinPlain');
    figures.push(
      figure(
        'calls lost beside a runaway (200 suspended on its worker), with checks',
        'calls',
        'lower',
        [lostWith],
        'code without checks (its worker is stopped)',
        [lostWithout],
      ),
    );
    notes.push(
      `deadline → E_TIMEOUT answer for a looping call (sweep every 5 ms): p50 ${percentile(lateness, 50).toFixed(2)} ms, p99 ${percentile(lateness, 99).toFixed(2)} ms over ${lateness.length} calls.`,
      `beside a runaway: ${lostWith} of 200 suspended calls lost with checks, ${lostWithout} of 200 without; stats: ${JSON.stringify({ interrupts: rt.stats().interrupts, timeoutTerminations: rt.stats().timeoutTerminations })}.`,
    );
  } finally {
    await rt.close();
  }
  return report('preempt', runs, figures, notes);
}
