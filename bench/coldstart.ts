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
import { checkModule } from '../runtime/module-check.js';
import type { FunctionSpec } from '../runtime/protocol.js';
import { capMemory } from '../runtime/wasm-binary.js';
import { DirtyMap } from '../runtime/worker/dirty-map.js';
import { GuestInstance, restoredState, workerImports, type InstanceEnv } from '../runtime/worker/instance.js';
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

export async function benchColdstart(options: ColdstartBenchOptions = COLDSTART_DEFAULTS): Promise<BenchReport> {
  const { runs, samples, workers } = options;
  const gc = collector();
  const bytes = await buildGuest(join(guestDir, 'coldstart.ts'));
  const relay = await buildGuest(join(guestDir, 'relay.ts'));

  // ---- In-process phases, on the instance code the workers run.
  const env: InstanceEnv = {
    limits: { maxOutputBytes: 1 << 20, maxLogBytes: 1 << 16 },
    dirty: new DirtyMap(),
    log: () => {},
    host: workerImports({ suspended: () => {}, resumed: () => {} }),
    admit: () => {},
    onDispose: () => {},
  };
  const checked = await checkModule('coldstart', bytes, LIMIT_PAGES);
  const spec: FunctionSpec = {
    name: 'coldstart',
    module: checked.module,
    layout: checked.layout,
    reuse: 'reset',
    suspends: checked.suspends,
    memoryLimitPages: LIMIT_PAGES,
    stateKeys: undefined,
    timeoutMs: 1000,
  };
  const boot = GuestInstance.boot(spec, checked.segments, env);
  spec.snapshot = boot.capture();
  boot.dispose();
  env.restored = restoredState(spec, env.dirty);
  const snapshot = spec.snapshot;
  const imageBytes = snapshot.pages * 65536;
  let copiedBytes = 0;
  for (let r = 0; r < snapshot.ranges.length; r += 2) copiedBytes += snapshot.ranges[r + 1]! - snapshot.ranges[r]!;

  const original = await WebAssembly.compile(capMemory(bytes, LIMIT_PAGES).bytes as Uint8Array<ArrayBuffer>);
  const stubs: WebAssembly.Imports = {};
  for (const i of WebAssembly.Module.imports(original)) ((stubs[i.module] ??= {}) as Record<string, unknown>)[i.name] = () => 0;
  const fresh = (): WebAssembly.Instance => {
    const instance = new WebAssembly.Instance(original, stubs);
    (instance.exports['_initialize'] as () => void)();
    (instance.exports['init'] as () => void)();
    return instance;
  };
  const keep: FunctionSpec = { ...spec, reuse: 'keep' };
  const warm = GuestInstance.restore(spec, env);
  const kept = GuestInstance.restore(keep, env);
  const one = Uint8Array.of(1);
  const hundred = Uint8Array.of(100);
  const fullImage = new Uint8Array(snapshot.image);
  const scratch = new Uint8Array(imageBytes);

  const s = {
    fresh: new Series(),
    restore: new Series(),
    warm: new Series(),
    kept: new Series(),
    reset1: new Series(),
    reset100: new Series(),
    copyAll: new Series(),
  };
  const callAndReset = (instance: GuestInstance, input: Uint8Array): void => {
    instance.call(input, 1, Infinity);
    instance.finish();
    if (instance.spec.reuse === 'reset' && !instance.reset()) throw new Error('reset refused');
  };
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
    let restored: GuestInstance | undefined;
    record(
      s.restore,
      sample(
        n,
        () => void (restored = GuestInstance.restore(spec, env)),
        () => restored?.dispose(),
      ),
    );
    restored?.dispose();
    record(
      s.warm,
      sample(n, () => callAndReset(warm, EMPTY)),
    );
    record(
      s.kept,
      sample(n, () => callAndReset(kept, EMPTY)),
    );
    const resetAfter = (input: Uint8Array): number[] =>
      sample(
        n,
        () => void warm.reset(),
        () => {
          warm.call(input, 1, Infinity);
          warm.finish();
        },
      );
    record(s.reset1, resetAfter(one));
    record(s.reset100, resetAfter(hundred));
    record(
      s.copyAll,
      sample(n, () => scratch.set(fullImage)),
    );
  }

  // Memory per idle instance, restored vs fresh: rss growth per instance, less the bytes of
  // linear memory the instance has written (the snapshot's non-zero blocks).
  const perInstance = (make: () => unknown, count: number): { rss: number; heap: number } => {
    gc();
    const before = process.memoryUsage();
    const held: unknown[] = [];
    for (let i = 0; i < count; i++) held.push(make());
    gc();
    const after = process.memoryUsage();
    const result = { rss: (after.rss - before.rss) / count, heap: (after.heapUsed - before.heapUsed) / count };
    for (const h of held) if (h instanceof GuestInstance) h.dispose();
    held.length = 0;
    return result;
  };
  const memOurs: number[] = [];
  const memTheirs: number[] = [];
  const heapOurs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const ours = perInstance(() => GuestInstance.restore(spec, env), 500);
    const theirs = perInstance(fresh, 500);
    memOurs.push((ours.rss - copiedBytes) / 1024);
    memTheirs.push((theirs.rss - copiedBytes) / 1024);
    heapOurs.push(ours.heap / 1024);
  }

  // ---- Through the runtime.
  const quiet = { logger: (e: { level: string; message: string }) => (e.level === 'warn' ? console.error(e.message) : undefined) };
  const coldRt = await createRuntime({ workers, maxIdleInstances: 0, ...quiet });
  const warmRt = await createRuntime({ workers, ...quiet });
  await coldRt.register('coldstart', bytes);
  await warmRt.register('coldstart', bytes);
  const coldTput: number[] = [];
  const warmTput: number[] = [];
  await throughputRun(() => coldRt.invoke('coldstart'), 2000, 64);
  await throughputRun(() => warmRt.invoke('coldstart'), 2000, 64);
  for (let run = 0; run < runs; run++) {
    coldTput.push(await throughputRun(() => coldRt.invoke('coldstart'), 10_000, 64));
    warmTput.push(await throughputRun(() => warmRt.invoke('coldstart'), 10_000, 64));
  }
  const coldCheck = await coldRt.invoke('coldstart');
  await coldRt.close();

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
  const chain = async (rt: Runtime, prewarm: boolean): Promise<number> => {
    await until(() => rt.stats().instances === 0);
    const r = await rt.invokeChain(stages, 'payload', { prewarm });
    if (new TextDecoder().decode(r.output) !== 'payload') throw new Error('chain output changed');
    return r.durationMs * 1000;
  };
  await chain(chainRt, false);
  await chain(chainRt, true);
  const chainCold: number[] = [];
  const chainPrewarmed: number[] = [];
  const chainColdStages: number[] = [];
  for (let run = 0; run < runs * 4; run++) {
    chainCold.push(await chain(chainRt, false));
    chainPrewarmed.push(await chain(chainRt, true));
    chainColdStages.push(chainRt.stats().coldStarts);
  }
  const warmChain: number[] = [];
  for (let run = 0; run < runs * 4; run++) {
    const r = await chainRt.invokeChain(stages, 'payload');
    warmChain.push(r.durationMs * 1000);
  }
  await chainRt.close();
  await warmRt.close();

  const restoreP50 = median(s.restore.p50);
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
    figure('warm call with reset (p50)', 'µs', 'lower', s.warm.p50, "same call, reuse 'keep' (no reset)", s.kept.p50, s.warm.p99),
    figure(
      'reset after a call that touched 1 page (p50)',
      'µs',
      'lower',
      s.reset1.p50,
      `copy the whole ${snapshot.pages}-page image`,
      s.copyAll.p50,
      s.reset1.p99,
    ),
    figure(
      'reset after a call that touched 100 pages (p50)',
      'µs',
      'lower',
      s.reset100.p50,
      `copy the whole ${snapshot.pages}-page image`,
      s.copyAll.p50,
      s.reset100.p99,
    ),
    figure('memory per idle instance beyond its linear memory', 'KiB', 'lower', memOurs, 'fresh instance, same measure', memTheirs),
    figure(
      `cold starts per second, ${workers} workers (every call restores)`,
      'calls/s',
      'higher',
      coldTput,
      'warm calls, same runtime settings',
      warmTput,
    ),
    figure('first call after scaling to zero (worker start + restore)', 'ms', 'lower', fromZero, 'warm call, same runtime', warmLatency),
    figure('10-stage chain, expired instances, pre-warmed', 'µs', 'lower', chainPrewarmed, 'same chain without pre-warming', chainCold),
  ];
  return report('coldstart', runs, figures, [
    `guest: bench/guests/coldstart.ts — init() builds a 2000-entry Map and reserves 101 pages; snapshot ${snapshot.pages} pages, ${Math.round(copiedBytes / 1024)} KiB of it non-zero (what a restore copies), ${spec.layout.globalTypes.length} mutable globals.`,
    `restore p50 ${restoreP50.toFixed(1)} µs on one thread = ${Math.round(1e6 / restoreP50)} restores/s per thread; Faasm Proto-Faaslet restore ~500 µs, ~4000 cold starts/s per host; target ≤ 100 µs and ≥ 10 000/s.`,
    `cold-start calls through the pool: ${Math.round(median(coldTput))} calls/s (each one a restore, a call and a dispose; last call cold=${coldCheck.cold}).`,
    `JS heap per idle restored instance: ${median(heapOurs).toFixed(1)} KiB (target for everything beyond linear memory ≤ 128 KiB).`,
    `10-stage chain fully warm: ${median(warmChain).toFixed(0)} µs (p50); cold calls per cold chain run ≈ ${((chainColdStages.at(-1)! - chainColdStages[0]!) / Math.max(1, chainColdStages.length - 1)).toFixed(1)} (both variants together).`,
    `median of ${runs} runs of ${samples} samples each for the in-process phases; chains: ${runs * 4} runs each, alternating.`,
  ]);
}
