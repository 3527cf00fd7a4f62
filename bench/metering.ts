/**
 * `nuvola bench metering`: what a `fuel` budget costs, side by side: compute-heavy guests (the
 * Mandelbrot row, recursive Fibonacci and tight array loop of `nuvola bench preempt`) rewritten
 * with the fuel counter vs the same module without it (both with the interruption checks), one
 * warm instance each on this thread, alternating, medians over runs. Also the fuel each
 * workload consumes, which is the same on every run.
 */
import { GuestInstance } from '../runtime/worker/instance.js';
import { localEnv, snapshotHere } from '../runtime/worker/local.js';
import { callMs, computeGuest } from './compute.js';
import { figure, median, report, type BenchReport } from './harness.js';

export const METERING_DEFAULTS = { runs: 7 };

export async function benchMetering(runs = METERING_DEFAULTS.runs): Promise<BenchReport> {
  const { wasm, workloads } = await computeGuest();
  const fueled = await snapshotHere('fueled', wasm, localEnv(), 1024, { fuel: true });
  const plain = await snapshotHere('plain', wasm, localEnv());
  const sides = { fueled: GuestInstance.restore(fueled.spec, fueled.env), plain: GuestInstance.restore(plain.spec, plain.env) };
  const figures = [];
  const notes: string[] = [];
  try {
    for (const w of workloads) {
      const times = { fueled: [] as number[], plain: [] as number[] };
      callMs(sides.fueled, w.input, 3);
      callMs(sides.plain, w.input, 3);
      const fuel = sides.fueled.fuelUsed();
      for (let run = 0; run < runs; run++) {
        const order = run % 2 === 0 ? (['fueled', 'plain'] as const) : (['plain', 'fueled'] as const);
        for (const side of order) times[side].push(callMs(sides[side], w.input, 5));
      }
      figures.push(figure(`${w.name}, with fuel`, 'ms', 'lower', times.fueled, 'the same module without fuel', times.plain));
      notes.push(
        `${w.name}: with fuel ${median(times.fueled).toFixed(2)} ms (${Math.min(...times.fueled).toFixed(2)}–${Math.max(...times.fueled).toFixed(2)}), ` +
          `without ${median(times.plain).toFixed(2)} ms (${Math.min(...times.plain).toFixed(2)}–${Math.max(...times.plain).toFixed(2)}); ` +
          `${fuel} units of fuel per call (the same every call: ${sides.fueled.fuelUsed() === fuel}).`,
      );
    }
  } finally {
    sides.fueled.dispose();
    sides.plain.dispose();
  }
  return report('metering', runs, figures, notes);
}
