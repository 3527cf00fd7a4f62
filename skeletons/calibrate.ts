/**
 * Main thread. Calibration: runs a skeleton one call at a time on sample inputs and records
 * into a profile (profile.ts) what every call, host step and shape cost; measures the
 * transport of a runtime.
 */
import { ErrorCode, InvalidOptionError, type InvokeInput, type Runtime } from '../runtime/index.js';
import { toBytes } from '../runtime/input.js';
import { DEFAULT_TRANSPORT, median, Profile, type Transport } from './profile.js';
import { runAll, type Observer } from './run.js';
import type { Skeleton } from './tree.js';

/**
 * Measures `transport` on this runtime with `echo`, a registered function that outputs its
 * input: α from empty calls one at a time, β from 1 MiB calls, the dispatch cost from many
 * concurrent empty calls.
 */
export async function calibrateTransport(rt: Runtime, echo: string, rounds = 200): Promise<Transport> {
  const big = new Uint8Array(1 << 20);
  for (let i = 0; i < 50; i++) await rt.invoke(echo);
  const empty: number[] = [];
  for (let i = 0; i < rounds; i++) empty.push((await rt.invoke(echo)).durationMs);
  const alphaMs = median(empty);
  // β: 1 MiB echoes one at a time; then one loop of them per worker, all at once.
  const large = async (calls: number): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < calls; i++) times.push((await rt.invoke(echo, big)).durationMs);
    return times;
  };
  await large(5);
  const alone = median(await large(30)) - alphaMs;
  const together = median((await Promise.all(Array.from({ length: rt.options.workers }, () => large(30)))).flat()) - alphaMs;
  const concurrent = 20 * rounds;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrent }, () => rt.invoke(echo)));
  const dispatchMs = (performance.now() - t) / concurrent;
  return {
    dispatchMs,
    alphaMs,
    bytesPerMs: (2 * big.byteLength) / Math.max(1e-3, alone),
    parallelDataSlowdown: Math.max(1, together / Math.max(1e-3, alone)),
  };
}

/**
 * Runs `node` one call at a time on `samples` and records every call, host step and shape.
 * Use samples like the real inputs (the same sizes, a spread of the same kinds of items).
 * `into` adds to an existing profile: calibrating a little at a time, spread over a longer
 * period, averages out a shared machine's slow and fast spells.
 *
 * `cost`, a hint of how much work an item is (any positive unit: pixels times iterations, rows,
 * edges): items the same size can differ in work (Mandelbrot rows), which the model cannot see
 * from their size. With it, every call's compute is recorded per unit of its item's cost, and
 * `predict` scales by `workload.itemCost` (default: the calibrated items' mean).
 */
export async function calibrate(
  rt: Runtime,
  node: Skeleton,
  samples: readonly InvokeInput[],
  options: { transport?: Transport; repeat?: number; into?: Profile; warmUp?: boolean; cost?: (item: Uint8Array) => number } = {},
): Promise<Profile> {
  const profile = options.into ?? new Profile(options.transport ?? DEFAULT_TRANSPORT, rt.options.workers);
  const items = samples.map(toBytes);
  const costs = options.cost === undefined ? undefined : items.map(options.cost);
  costs?.forEach((cost, i) => {
    if (!(Number.isFinite(cost) && cost > 0)) {
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        `options.cost gave ${String(cost)} for sample ${i}; it must give a number > 0`,
        {
          path: 'options.cost',
        },
      );
    }
  });
  const hinted = profile.items.some((item) => item.cost !== undefined);
  if (profile.items.length > 0 && hinted !== (costs !== undefined)) {
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `options.into was calibrated ${hinted ? 'with' : 'without'} a cost hint; calibrate into it the same way`,
      { path: 'options.cost' },
    );
  }
  let cost = 1;
  const observe: Observer = {
    call: (fn, inBytes, outBytes, ms, mainMs) => profile.record(profile.calls, fn, inBytes, ms, outBytes, mainMs, cost),
    host: (step, bytes, ms) => profile.record(profile.host, step, bytes, ms),
    shape: (key, value) => {
      const v = profile.shapes.get(key) ?? [];
      v.push(value);
      profile.shapes.set(key, v);
    },
  };
  // A warm-up pass unrecorded, so cold instances and JIT do not count.
  if (options.warmUp !== false) await runAll(rt, node, items, { sequential: true });
  for (let r = 0; r < (options.repeat ?? 1); r++) {
    // One item at a time, so each call is charged to its own item's cost.
    for (const [i, item] of items.entries()) {
      cost = costs?.[i] ?? 1;
      const start = performance.now();
      await runAll(rt, node, [item], { sequential: true, observe });
      profile.items.push({ bytes: item.byteLength, cost: costs?.[i], ms: performance.now() - start });
    }
  }
  return profile;
}
