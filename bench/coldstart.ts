/**
 * `nuvola bench coldstart`: what a new instance costs, side by side in one process run.
 *
 * On this thread, with the worker's own instance code (runtime/worker/instance.ts):
 * - a fresh instance from the compiled module (instantiate, start-up code, `init()`) vs a
 *   restore from the snapshot;
 * - a warm call with its reset vs the same call on an instance that is not reset;
 * - the reset after a call that touched 1 page and 100 pages vs copying the whole image back;
 * - memory per idle instance beyond its linear memory, restored vs fresh.
 * Through the runtime (real workers):
 * - cold starts per second (no idle instance kept: every call restores one) vs warm calls;
 * - the first call after the pool scaled to zero vs a warm call;
 * - a 10-stage chain whose instances have expired, with and without pre-warming.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime, type Runtime } from 'nuvola';
import type { FunctionSpec } from '../runtime/protocol.js';
import { capMemory } from '../runtime/wasm-binary.js';
import { GuestInstance, type InstanceEnv } from '../runtime/worker/instance.js';
import { localEnv, snapshotHere } from '../runtime/worker/local.js';
import { figure, median, percentile, report, throughputRun, type BenchReport, type Figure } from './harness.js';

export interface ColdstartBenchOptions {
  runs: number;
  /** Samples per run of each in-process phase. */
  samples: number;
  workers: number;
}

export const COLDSTART_DEFAULTS: ColdstartBenchOptions = { runs: 5, samples: 400, workers: 2 };

const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));
const LIMIT_PAGES = 1024;
const EMPTY = new Uint8Array(0);

function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Microseconds each call of `fn` takes, `n` times. */
function sample(n: number, fn: () => void, before?: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    before?.();
    const t = performance.now();
    fn();
    out.push((performance.now() - t) * 1000);
  }
  return out.sort((a, b) => a - b);
}

class Series {
  p50: number[] = [];
  p99: number[] = [];
  add(sorted: number[]): void {
    this.p50.push(percentile(sorted, 50));
    this.p99.push(percentile(sorted, 99));
  }
}

function until(predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (predicate()) resolve();
      else setTimeout(check, 1);
    };
    check();
  });
}

function nonZeroBytes(ranges: readonly number[]): number {
  let total = 0;
  for (let r = 0; r < ranges.length; r += 2) total += ranges[r + 1]! - ranges[r]!;
  return total;
}

export async function benchColdstart(options: ColdstartBenchOptions = COLDSTART_DEFAULTS): Promise<BenchReport> {
  const { runs, samples, workers } = options;
  const gc = collector();
  const bytes = await buildGuest(join(guestDir, 'coldstart.ts'));
  const pagesBytes = await buildGuest(join(guestDir, 'pages.ts'));
  const relay = await buildGuest(join(guestDir, 'relay.ts'));

  // ---- In-process phases, on the instance code the workers run.
  const base = localEnv();
  const { spec, env } = await snapshotHere('coldstart', bytes, { ...base }, LIMIT_PAGES);
  const { spec: pagesSpec, env: pagesEnv } = await snapshotHere('pages', pagesBytes, { ...base }, LIMIT_PAGES);
  const snapshot = spec.snapshot!;
  const pagesSnapshot = pagesSpec.snapshot!;
  const copiedBytes = nonZeroBytes(snapshot.ranges);

  const original = await WebAssembly.compile(capMemory(bytes, LIMIT_PAGES).bytes as Uint8Array<ArrayBuffer>);
  const stubs: WebAssembly.Imports = {};
  for (const i of WebAssembly.Module.imports(original)) ((stubs[i.module] ??= {}) as Record<string, unknown>)[i.name] = () => 0;
  const fresh = (): WebAssembly.Instance => {
    const instance = new WebAssembly.Instance(original, stubs);
    (instance.exports['_initialize'] as () => void)();
    (instance.exports['init'] as () => void)();
    return instance;
  };
  const warm = GuestInstance.restore(spec, env);
  const kept = GuestInstance.restore({ ...spec, reuse: 'keep' }, env);
  const paged = GuestInstance.restore(pagesSpec, pagesEnv);
  const one = Uint8Array.of(1);
  const hundred = Uint8Array.of(100);
  const fullImage = new Uint8Array(pagesSnapshot.pages * 65536);
  fullImage.set(new Uint8Array(pagesSnapshot.image));
  const scratch = new Uint8Array(fullImage.byteLength);

  // Memory per idle instance, restored vs fresh: rss with `count` instances held minus rss
  // once they are dropped and collected, per instance, less the bytes of linear memory each
  // has written (the snapshot's non-zero blocks). Collections are given time to finish
  // (V8 frees buffers in the background), else garbage of earlier work would skew rss.
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const perInstance = async (make: () => unknown, count: number): Promise<{ rss: number; heap: number }> => {
    const held: unknown[] = [];
    for (let i = 0; i < count; i++) held.push(make());
    await settle();
    const withThem = process.memoryUsage();
    for (const h of held) if (h instanceof GuestInstance) h.dispose();
    held.length = 0;
    await settle();
    const without = process.memoryUsage();
    return { rss: (withThem.rss - without.rss) / count, heap: (withThem.heapUsed - without.heapUsed) / count };
  };
  await settle();
  const memOurs: number[] = [];
  const memTheirs: number[] = [];
  const heapOurs: number[] = [];
  const heapTheirs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const ours = await perInstance(() => GuestInstance.restore(spec, env), 1000);
    const theirs = await perInstance(fresh, 1000);
    memOurs.push((ours.rss - copiedBytes) / 1024);
    memTheirs.push((theirs.rss - copiedBytes) / 1024);
    heapOurs.push(ours.heap / 1024);
    heapTheirs.push(theirs.heap / 1024);
  }

  const s = {
    fresh: new Series(),
    restore: new Series(),
    restoreBig: new Series(),
    restoreRecycled: new Series(),
    warm: new Series(),
    kept: new Series(),
    reset1: new Series(),
    reset100: new Series(),
    copyAll: new Series(),
  };
  const callAndReset = (instance: GuestInstance): void => {
    instance.call(EMPTY, 1, Infinity);
    instance.finish();
    if (instance.spec.reuse === 'reset' && !instance.reset()) throw new Error('reset refused');
  };
  const restoring = (fnSpec: FunctionSpec, fnEnv: InstanceEnv, n: number): number[] => {
    let restored: GuestInstance | undefined;
    const out = sample(
      n,
      () => void (restored = GuestInstance.restore(fnSpec, fnEnv)),
      () => restored?.dispose(),
    );
    restored?.dispose();
    return out;
  };
  const resetAfter = (input: Uint8Array, n: number): number[] =>
    sample(
      n,
      () => void paged.reset(),
      () => {
        paged.call(input, 1, Infinity);
        paged.finish();
      },
    );
  for (let run = -1; run < runs; run++) {
    // Run -1 warms up (JIT, lazily compiled Wasm functions) and is not recorded.
    const n = run < 0 ? 100 : samples;
    const record = (series: Series, sorted: number[]): void => {
      if (run >= 0) series.add(sorted);
    };
    gc();
    record(
      s.fresh,
      sample(n, () => void fresh()),
    );
    gc();
    record(s.restore, restoring(spec, env, n));
    gc();
    record(s.restoreBig, restoring(pagesSpec, pagesEnv, n));
    {
      let previous = GuestInstance.restore(spec, env);
      let spare: WebAssembly.Memory | undefined;
      record(
        s.restoreRecycled,
        sample(
          n,
          () => void (previous = GuestInstance.restore(spec, env, spare)),
          () => {
            callAndReset(previous);
            spare = previous.recycle();
          },
        ),
      );
      previous.dispose();
    }
    record(
      s.warm,
      sample(n, () => callAndReset(warm)),
    );
    record(
      s.kept,
      sample(n, () => callAndReset(kept)),
    );
    record(s.reset1, resetAfter(one, n));
    record(s.reset100, resetAfter(hundred, n));
    record(
      s.copyAll,
      sample(n, () => scratch.set(fullImage)),
    );
  }

  // ---- Through the runtime.
  const quiet = { logger: (e: { level: string; message: string }) => (e.level === 'warn' ? console.error(e.message) : undefined) };
  // No idle instance kept: every call restores one (from a recycled memory, or not).
  const coldRt = await createRuntime({ workers, maxIdleInstances: 0, ...quiet });
  const freshRt = await createRuntime({ workers, maxIdleInstances: 0, memoryPoolSize: 0, ...quiet });
  const warmRt = await createRuntime({ workers, ...quiet });
  const runtimes = [coldRt, freshRt, warmRt];
  for (const rt of runtimes) await rt.register('coldstart', bytes);
  const coldTput: number[] = [];
  const freshTput: number[] = [];
  const warmTput: number[] = [];
  for (const rt of runtimes) await throughputRun(() => rt.invoke('coldstart'), 2000, 64);
  for (let run = 0; run < runs; run++) {
    coldTput.push(await throughputRun(() => coldRt.invoke('coldstart'), 10_000, 64));
    freshTput.push(await throughputRun(() => freshRt.invoke('coldstart'), 10_000, 64));
    warmTput.push(await throughputRun(() => warmRt.invoke('coldstart'), 10_000, 64));
  }
  const coldCheck = await coldRt.invoke('coldstart');
  const coldCounts = { recycled: coldRt.stats().coldStarts, fresh: freshRt.stats().coldStarts };
  for (const rt of runtimes) await rt.close();

  // The first call after the pool scaled to zero (a worker thread starts, then a restore).
  const zeroRt = await createRuntime({ workers, idleTimeoutMs: 30, ...quiet });
  await zeroRt.register('coldstart', bytes);
  const fromZero: number[] = [];
  const warmLatency: number[] = [];
  for (let run = 0; run < runs; run++) {
    await until(() => zeroRt.stats().workers === 0);
    let t = performance.now();
    await zeroRt.invoke('coldstart');
    fromZero.push(performance.now() - t);
    t = performance.now();
    await zeroRt.invoke('coldstart');
    warmLatency.push(performance.now() - t);
  }
  await zeroRt.close();

  // A 10-stage chain whose instances have expired (workers kept running), with and without
  // pre-warming the later stages.
  const chainRt = await createRuntime({ workers, minWorkers: workers, idleTimeoutMs: 20, ...quiet });
  const stages = Array.from({ length: 10 }, (_, i) => `stage${i}`);
  for (const name of stages) await chainRt.register(name, relay);
  const coldStages = { cold: [] as number[], prewarmed: [] as number[] };
  const chain = async (rt: Runtime, prewarm: boolean): Promise<number> => {
    await until(() => rt.stats().instances === 0);
    const r = await rt.invokeChain(stages, 'payload', { prewarm });
    if (new TextDecoder().decode(r.output) !== 'payload') throw new Error('chain output changed');
    (prewarm ? coldStages.prewarmed : coldStages.cold).push(r.stages.filter((stage) => stage.cold).length);
    return r.durationMs * 1000;
  };
  await chain(chainRt, false);
  await chain(chainRt, true);
  const chainCold: number[] = [];
  const chainPrewarmed: number[] = [];
  for (let run = 0; run < runs * 4; run++) {
    chainCold.push(await chain(chainRt, false));
    chainPrewarmed.push(await chain(chainRt, true));
  }
  const warmChain: number[] = [];
  for (let run = 0; run < runs * 4; run++) warmChain.push((await chainRt.invokeChain(stages, 'payload')).durationMs * 1000);
  await chainRt.close();

  const restoreP50 = median(s.restore.p50);
  const pagesLabel = `${pagesSnapshot.pages}-page`;
  const figures: Figure[] = [
    figure(
      'new instance: restore from snapshot (p50)',
      'µs',
      'lower',
      s.restore.p50,
      'fresh instantiate + start-up + init()',
      s.fresh.p50,
      s.restore.p99,
    ),
    figure(
      'new instance: restore into a recycled memory (p50)',
      'µs',
      'lower',
      s.restoreRecycled.p50,
      'fresh instantiate + start-up + init()',
      s.fresh.p50,
      s.restoreRecycled.p99,
    ),
    figure(
      `restore of a ${pagesLabel} snapshot (p50)`,
      'µs',
      'lower',
      s.restoreBig.p50,
      'fresh instantiate + start-up + init() (above)',
      s.fresh.p50,
      s.restoreBig.p99,
    ),
    figure('warm call with reset (p50)', 'µs', 'lower', s.warm.p50, "same call, reuse 'keep' (no reset)", s.kept.p50, s.warm.p99),
    figure(
      'reset after a call that wrote 1 page (p50)',
      'µs',
      'lower',
      s.reset1.p50,
      `copy the whole ${pagesLabel} image`,
      s.copyAll.p50,
      s.reset1.p99,
    ),
    figure(
      'reset after a call that wrote 100 pages (p50)',
      'µs',
      'lower',
      s.reset100.p50,
      `copy the whole ${pagesLabel} image`,
      s.copyAll.p50,
      s.reset100.p99,
    ),
    figure('memory per idle instance beyond its linear memory: rss', 'KiB', 'lower', memOurs, 'fresh instance, same measure', memTheirs),
    figure('memory per idle instance: JS heap', 'KiB', 'lower', heapOurs, 'fresh instance, same measure', heapTheirs),
    figure(`cold starts per second, ${workers} workers (every call restores)`, 'calls/s', 'higher', coldTput, 'warm calls', warmTput),
    figure(`cold starts per second, ${workers} workers, memoryPoolSize 0`, 'calls/s', 'higher', freshTput, 'warm calls', warmTput),
    figure('first call after scaling to zero (worker start + restore)', 'ms', 'lower', fromZero, 'warm call, same runtime', warmLatency),
    figure('10-stage chain, expired instances, pre-warmed', 'µs', 'lower', chainPrewarmed, 'same chain without pre-warming', chainCold),
  ];
  return report('coldstart', runs, figures, [
    `guest: bench/guests/coldstart.ts — init() builds a 2000-entry Map; snapshot ${snapshot.pages} pages, ${Math.round(copiedBytes / 1024)} KiB of it non-zero (what a restore copies), ${spec.layout.globalTypes.length} mutable globals. Reset figures and the second restore: bench/guests/pages.ts, whose init() reserves a 101-page buffer (snapshot ${pagesSnapshot.pages} pages, ${Math.round(nonZeroBytes(pagesSnapshot.ranges) / 1024)} KiB non-zero).`,
    `restore p50 ${restoreP50.toFixed(1)} µs on one thread = ${Math.round(1e6 / restoreP50)} restores/s per thread. Faasm: Proto-Faaslet restore ~500 µs, ~4000 cold starts/s per host. Targets: restore ≤ 100 µs, ≥ 10 000 cold starts/s per host.`,
    `cold starts through the pool (maxIdleInstances 0: every call restores an instance, then retires it): ${Math.round(median(coldTput))} calls/s with retired memories recycled (the default, memoryPoolSize 8), ${Math.round(median(freshTput))} calls/s allocating a new memory each time; cold-start counts ${coldCounts.recycled} / ${coldCounts.fresh}; a check call afterwards reported cold=${coldCheck.cold}.`,
    `beyond its linear memory an idle instance also reserves (untouched until the instance writes memory) ${(LIMIT_PAGES * 16) / 1024} KiB of its worker's dirty map: one byte per 4 KiB of memoryLimitPages. Target for everything beyond linear memory: ≤ 128 KiB.`,
    `10-stage chain: fully warm ${median(warmChain).toFixed(0)} µs (p50); stages that started cold per chain, median: ${median(coldStages.cold)} without pre-warming, ${median(coldStages.prewarmed)} with.`,
    `median of ${runs} runs of ${samples} samples each for the in-process phases; chains: ${runs * 4} runs each, alternating.`,
  ]);
}
