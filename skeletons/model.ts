/**
 * The cost model. `calibrate` runs a skeleton one call at a time on sample inputs and records
 * what every function costs at the sizes it saw (and the shape of the run: parts per map,
 * arity of divide, iterations); `predict` then estimates latency, service time and
 * completion time of any tree over those functions — the original or a rewritten one — for a
 * number of items and workers, without running it:
 *
 * - a call costs α + bytes/β (transport) + its compute time, fitted as a power of its input
 *   size; part of it keeps the main thread busy (sending and receiving: the emitter and
 *   collector), the rest a worker;
 * - seq: the sum of its calls; pipe: latency the sum, service time the slowest stage;
 * - farm: service time max(main-thread time, worker latency / replicas, work / workers);
 * - map: scatter + ⌈parts / workers⌉ · part latency + gather;
 * - divide & conquer: work / workers + span · (1 − 1/workers);
 * - farms, pipes, maps, map-reduce and divide & conquer are also bounded by the CPU:
 *   (main-thread time + work) / cores;
 * - a stream of N items through a farm or pipe: latency + (N − 1) · service time.
 *
 * Why it is this long: the profile, the fits and the estimate of every skeleton kind form one
 * model whose parts call each other; split only with a second model.
 */
import { availableParallelism } from 'node:os';
import { ErrorCode, InvalidOptionError, type InvokeInput, type Runtime } from '../runtime/index.js';
import { iterationsKey, runAll, type Observer } from './run.js';
import { AUTO_REPLICAS_PER_WORKER, farm, type Partition, type Skeleton } from './tree.js';

/** How much moving a call and its bytes costs, apart from the function's own work. */
export interface Transport {
  /**
   * Time per call at full throughput (many empty calls in flight): the bound the emitter and
   * collector — the main thread, or the workers if they are slower — put on any farm.
   */
  dispatchMs: number;
  /** Round trip of an empty call: α. */
  alphaMs: number;
  /** Bytes per millisecond copied to and from a worker: β. */
  bytesPerMs: number;
  /**
   * How much slower moving bytes gets when every worker moves bytes at once (≥ 1): the
   * copies share memory bandwidth, page faults and the cores with the main thread.
   */
  parallelDataSlowdown: number;
}

/** Figures of `nuvola bench comm`/`invoke` on the 2-core development VM, used until measured. */
export const DEFAULT_TRANSPORT: Transport = { dispatchMs: 0.005, alphaMs: 0.03, bytesPerMs: 1_000_000, parallelDataSlowdown: 1.5 };

interface Samples {
  sizes: number[];
  values: number[];
  outs: number[];
  /** Main-thread busy time of each call (calls only). */
  mains: number[];
  /** The cost hint of the item each call served (1 without hints): compute is fitted per unit of it. */
  costs: number[];
}

/** One calibration sample through the whole skeleton. */
export interface CalibratedItem {
  bytes: number;
  /** Its cost hint (`calibrate(…, { cost })`), when given. */
  cost: number | undefined;
  /** The whole item, one call at a time. */
  ms: number;
}

/**
 * A fitted law y = c · x^p. When every sample had about the same x there is no exponent to
 * learn: y is taken as proportional to x (p = 1), the safer guess for sizes not seen.
 */
interface Law {
  c: number;
  p: number;
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function fit(xs: readonly number[], ys: readonly number[], centre: (v: number[]) => number = mean): Law {
  if (xs.length === 0) return { c: 0, p: 0 };
  // One point per size (sizes within 5% of the cluster's smallest count as one).
  const order = xs.map((x, i) => ({ x, y: ys[i]! })).sort((a, b) => a.x - b.x);
  const clusters: { x: number[]; y: number[] }[] = [];
  for (const pt of order) {
    const last = clusters[clusters.length - 1];
    if (last !== undefined && pt.x <= last.x[0]! * 1.05) {
      last.x.push(pt.x);
      last.y.push(pt.y);
    } else clusters.push({ x: [pt.x], y: [pt.y] });
  }
  // The mean, not the median: a completion time is a sum of calls, slow ones included.
  let points = clusters.map((g) => ({ x: mean(g.x), y: centre(g.y) })).filter((pt) => pt.x > 0);
  // Sizes too close together give no exponent worth having, only noise: one point then.
  if (points.length > 1 && points[points.length - 1]!.x < points[0]!.x * 1.3) {
    points = [{ x: mean(points.map((pt) => pt.x)), y: mean(points.map((pt) => pt.y)) }];
  }
  if (points.length === 0) return { c: mean(ys), p: 0 };
  if (points.length === 1) return { c: points[0]!.y / points[0]!.x, p: 1 };
  // Least squares on logs (values floored at a microsecond so zeros do not break the log).
  const lx = points.map((pt) => Math.log(pt.x));
  const ly = points.map((pt) => Math.log(Math.max(pt.y, 1e-3)));
  const n = points.length;
  const mx = lx.reduce((a, b) => a + b, 0) / n;
  const my = ly.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (lx[i]! - mx) * (ly[i]! - my);
    sxx += (lx[i]! - mx) ** 2;
  }
  // Costs do not shrink as inputs grow, nor grow faster than cubically (matrix products).
  const p = Math.min(3, Math.max(0, sxx === 0 ? 0 : sxy / sxx));
  return { c: Math.exp(my - p * mx), p };
}

const at = (law: Law, x: number): number => (law.p === 0 ? law.c : law.c * Math.max(x, 1) ** law.p);

/** What calibration measured. Serializable with `toJSON`. */
export class Profile {
  readonly calls = new Map<string, Samples>();
  readonly host = new Map<string, Samples>();
  readonly shapes = new Map<string, number[]>();
  /** The samples calibration ran, for checking that a workload lies within what was measured. */
  readonly items: CalibratedItem[] = [];
  private readonly laws = new Map<string, { compute: Law; out: Law; main: Law }>();

  constructor(
    readonly transport: Transport,
    /** Runtime workers at calibration. */
    readonly workers: number,
    /** CPU cores of this machine, shared by the main thread and the workers. */
    readonly cores: number = availableParallelism(),
  ) {}

  /** @internal */
  record(into: Map<string, Samples>, key: string, size: number, value: number, out = 0, main = 0, cost = 1): void {
    let s = into.get(key);
    if (s === undefined) into.set(key, (s = { sizes: [], values: [], outs: [], mains: [], costs: [] }));
    s.sizes.push(size);
    s.values.push(value);
    s.outs.push(out);
    s.mains.push(main);
    s.costs.push(cost);
    this.laws.delete(key);
  }

  private law(fn: string): { compute: Law; out: Law; main: Law } {
    let law = this.laws.get(fn);
    if (law === undefined) {
      const s = this.calls.get(fn);
      if (s === undefined) {
        throw new InvalidOptionError(
          ErrorCode.INVALID_OPTION,
          `the profile has no measurement of '${fn}'; calibrate with samples that run it`,
          {
            path: 'profile',
            function: fn,
          },
        );
      }
      // Per unit of the item's cost hint (1 without hints); callMs scales it back.
      const compute = s.values.map(
        (ms, i) => Math.max(0, ms - this.transport.alphaMs - (s.sizes[i]! + s.outs[i]!) / this.transport.bytesPerMs) / (s.costs[i] ?? 1),
      );
      // Main-thread time by the median: it is measured as the event loop's busy time during a
      // call, which a preempted main thread (a loaded machine) inflates to the whole call, and a
      // few such calls would make a compute-bound farm look bound by the main thread.
      law = { compute: fit(s.sizes, compute), out: fit(s.sizes, s.outs), main: fit(s.sizes, s.mains, median) };
      this.laws.set(fn, law);
    }
    return law;
  }

  /** Predicted output size of `fn` on `bytes` of input. */
  outBytes(fn: string, bytes: number): number {
    return at(this.law(fn).out, bytes);
  }

  /**
   * Predicted duration of one call of `fn` on `bytes` of input, α and β included; `parallel`:
   * while the other workers move bytes too; `cost`: the item's cost hint, for a profile
   * calibrated with hints (default their mean).
   */
  callMs(fn: string, bytes: number, parallel = false, cost = this.meanCost() ?? 1): number {
    const law = this.law(fn);
    return this.transport.alphaMs + this.dataMs(fn, bytes) + this.extraMs(fn, bytes, parallel) + at(law.compute, bytes) * cost;
  }

  /** The mean cost hint of the calibrated items, or undefined when calibration had no hints. */
  meanCost(): number | undefined {
    const costs = this.items.flatMap((item) => (item.cost === undefined ? [] : [item.cost]));
    return costs.length === 0 ? undefined : mean(costs);
  }

  /** Moving a call's input and output: bytes / β. */
  private dataMs(fn: string, bytes: number): number {
    return (bytes + at(this.law(fn).out, bytes)) / this.transport.bytesPerMs;
  }

  /** What moving those bytes costs more while every worker moves bytes. */
  private extraMs(fn: string, bytes: number, parallel: boolean): number {
    return parallel ? (this.transport.parallelDataSlowdown - 1) * this.dataMs(fn, bytes) : 0;
  }

  /** Predicted main-thread busy time of one call of `fn` on `bytes` (part of `callMs`). */
  mainMs(fn: string, bytes: number): number {
    return Math.min(this.callMs(fn, bytes), Math.max(this.transport.dispatchMs, at(this.law(fn).main, bytes)));
  }

  /** Predicted main-thread time of a host step (partition, gather, shuffle) on `bytes`. */
  hostMs(step: string, bytes: number): number {
    const s = this.host.get(step);
    if (s === undefined) return 0;
    const ms = s.values.reduce((a, b) => a + b, 0);
    const seen = s.sizes.reduce((a, b) => a + b, 0);
    // Linear in its bytes: the mean rate (a step only ever seen on nothing costs its mean time).
    return seen === 0 ? ms / s.values.length : (ms / seen) * bytes;
  }

  /** Mean of a recorded shape (parts per map, arity, iterations), or `fallback`. */
  shape(key: string, fallback: number): number {
    const v = this.shapes.get(key);
    return v === undefined || v.length === 0 ? fallback : v.reduce((a, b) => a + b, 0) / v.length;
  }

  toJSON(): unknown {
    const obj = (m: Map<string, unknown>): Record<string, unknown> => Object.fromEntries(m);
    return {
      transport: this.transport,
      workers: this.workers,
      cores: this.cores,
      calls: obj(this.calls),
      host: obj(this.host),
      shapes: obj(this.shapes),
      items: this.items,
    };
  }
}

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
  const items = samples.map((sample) =>
    typeof sample === 'string'
      ? new TextEncoder().encode(sample)
      : sample instanceof Uint8Array
        ? sample
        : sample === undefined
          ? new Uint8Array(0)
          : new Uint8Array(sample),
  );
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

/** What a prediction says. */
export interface Prediction {
  /** Time from the first input to the last output for the whole workload. */
  completionMs: number;
  /** Time one item takes through the skeleton. */
  latencyMs: number;
  /** Time between outputs in steady state. */
  serviceMs: number;
  /** Time of all calls of one item apart from the main thread's share (the workers', α and moving bytes included). */
  workMs: number;
  /**
   * Why the figures may be off, when calibration did not cover the workload: a size or cost
   * outside the calibrated ones (the model extrapolates), or samples of one size whose times
   * differ widely (size does not explain their work: calibrate with a cost hint). Absent when
   * there is nothing to say.
   */
  warnings?: string[];
}

export interface Workload {
  /** How many items stream through (1 for a single input). */
  items: number;
  /** Size of one input item. */
  itemBytes: number;
  /** Workers to predict for (default: the profile's). */
  workers?: number;
  /** CPU cores to predict for (default: the profile's). */
  cores?: number;
  /** Predict a run made one call at a time (`{ sequential: true }`): nothing overlaps. */
  sequential?: boolean;
  /** The cost hint of one item, for a profile calibrated with `cost` (default: the calibrated items' mean). */
  itemCost?: number;
}

/**
 * One item through a node: latency, steady-state service time, worker time, main-thread time,
 * the time it takes one call at a time (`total`), output size.
 */
interface Estimate {
  latency: number;
  service: number;
  work: number;
  host: number;
  total: number;
  out: number;
}

interface Machine {
  /** Calls that may run at once: the workers (1 for a run made one call at a time). */
  k: number;
  /** Workers the run splits its work by (`'workers'` partitions, reduce pieces, `reducers: 'auto'`). */
  split: number;
  cores: number;
  /** Whether calls run beside each other (more than one worker): data moves slower then. */
  parallel: boolean;
  /** The item's cost hint (1 for a profile calibrated without hints). */
  cost: number;
}

/**
 * `n` like tasks started at once on `k` workers: ⌈n/k⌉ rounds of one latency each — or less,
 * where the main thread's share of one task overlaps the workers' share of others — and never
 * less than the CPU needs for all of them.
 */
function wave(m: Machine, n: number, e: Estimate): number {
  if (n <= 0) return 0;
  const rounds = Math.ceil(n / m.k) * e.latency;
  const overlapped = e.latency + (n - 1) * Math.max(e.work / m.k, e.host, (e.work + e.host) / m.cores);
  return Math.max(Math.min(rounds, overlapped), cpu(m, { work: n * e.work, host: n * e.host }));
}

/** The least time `work` (on workers) and `host` (main thread) need on the machine's cores. */
const cpu = (m: Machine, e: { work: number; host: number }): number => Math.max(e.host, e.work / m.k, (e.work + e.host) / m.cores);

function checkWorkload(w: Workload): void {
  const bad = (path: string, what: string, value: unknown): never => {
    throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `workload.${path} must be ${what}, got ${JSON.stringify(value)}`, {
      path: `workload.${path}`,
    });
  };
  if (!Number.isInteger(w.items) || w.items < 0) bad('items', 'an integer ≥ 0', w.items);
  if (!(w.itemBytes >= 0)) bad('itemBytes', 'a number ≥ 0', w.itemBytes);
  if (w.workers !== undefined && (!Number.isInteger(w.workers) || w.workers < 1)) bad('workers', 'an integer ≥ 1', w.workers);
  if (w.cores !== undefined && !(w.cores >= 1)) bad('cores', 'a number ≥ 1', w.cores);
  if (w.itemCost !== undefined && !(Number.isFinite(w.itemCost) && w.itemCost > 0)) bad('itemCost', 'a number > 0', w.itemCost);
}

/** How far outside a calibrated range a workload may lie before the prediction says so. */
const SPAN_SLACK = 1.5;

/** What calibration did not cover of `workload` (see Prediction.warnings). */
function spanWarnings(profile: Profile, workload: Workload): string[] {
  const items = profile.items;
  if (items.length === 0) return [];
  const out: string[] = [];
  const range = (values: number[]): [number, number] => [Math.min(...values), Math.max(...values)];
  const [lo, hi] = range(items.map((i) => i.bytes));
  if (workload.itemBytes < lo / SPAN_SLACK || workload.itemBytes > hi * SPAN_SLACK) {
    out.push(
      `itemBytes ${workload.itemBytes} lies outside the calibrated sizes (${lo}–${hi} bytes): the prediction extrapolates; calibrate with samples that span the inputs`,
    );
  }
  const costs = items.flatMap((i) => (i.cost === undefined ? [] : [i.cost]));
  if (costs.length > 0) {
    const [clo, chi] = range(costs);
    if (workload.itemCost !== undefined && (workload.itemCost < clo / SPAN_SLACK || workload.itemCost > chi * SPAN_SLACK)) {
      out.push(
        `itemCost ${workload.itemCost} lies outside the calibrated costs (${clo}–${chi}): the prediction extrapolates; calibrate with samples that span the inputs`,
      );
    }
    return out;
  }
  if (workload.itemCost !== undefined)
    out.push('workload.itemCost is ignored: the profile was calibrated without a cost hint (calibrate(…, { cost }))');
  // Items of about one size whose times differ widely: their size does not tell their work.
  const sized = items.filter((i) => i.bytes >= lo && i.bytes <= lo * 1.3);
  if (sized.length >= 2) {
    const times = sized.map((i) => i.ms);
    const m = mean(times);
    const spread = Math.sqrt(mean(times.map((t) => (t - m) ** 2))) / m;
    if (m > 0 && spread > 0.3) {
      const [tlo, thi] = range(times);
      out.push(
        `samples of about one size took ${tlo.toFixed(1)}–${thi.toFixed(1)} ms: their size does not explain their work, so predictions ` +
          'follow whichever samples were measured; give calibrate() a cost hint ({ cost: (item) => … }) and predict() workload.itemCost',
      );
    }
  }
  return out;
}

/** Predicts how `node` performs on `workload` from the profile's measurements. */
export function predict(profile: Profile, node: Skeleton, workload: Workload): Prediction {
  checkWorkload(workload);
  const workers = workload.workers ?? profile.workers;
  const k = workload.sequential === true ? 1 : workers;
  const meanCost = profile.meanCost();
  const cost = meanCost === undefined ? 1 : (workload.itemCost ?? meanCost);
  const m = { k, split: workers, cores: workload.cores ?? profile.cores, parallel: k > 1, cost };
  const warnings = spanWarnings(profile, workload);
  const said = (p: Prediction): Prediction => (warnings.length > 0 ? { ...p, warnings } : p);
  if (workload.items === 0) return said({ completionMs: 0, latencyMs: 0, serviceMs: 0, workMs: 0 });
  const e = estimate(profile, node, workload.itemBytes, m);
  if (workload.sequential === true) {
    // One call at a time: an item's latency is the sum of its calls, and items follow each other.
    return said({ completionMs: workload.items * e.total, latencyMs: e.total, serviceMs: e.total, workMs: e.work });
  }
  const streams = node.kind === 'farm' || node.kind === 'pipe';
  const completion = streams ? e.latency + (workload.items - 1) * e.service : workload.items * e.latency;
  return said({ completionMs: completion, latencyMs: e.latency, serviceMs: streams ? e.service : e.latency, workMs: e.work });
}

function partsOf(profile: Profile, partition: Partition, bytes: number, k: number): number {
  return partition.parts?.(bytes, k) ?? Math.max(1, Math.round(profile.shape(`parts:${partition.name}`, k)));
}

function calls(profile: Profile, fns: readonly string[], bytes: number, m: Machine): Estimate {
  let latency = 0;
  let host = 0;
  let work = 0;
  let total = 0;
  let size = bytes;
  for (const fn of fns) {
    const ms = profile.callMs(fn, size, m.parallel, m.cost);
    const main = profile.mainMs(fn, size);
    latency += ms;
    host += main;
    // Worker time is what the main thread does not do: the worker also spends time outside
    // InvokeResult.workerMs (taking the message, posting the result), which does not overlap.
    work += ms - main;
    total += profile.callMs(fn, size, false, m.cost);
    size = profile.outBytes(fn, size);
  }
  return { latency, service: latency, work, host, total, out: size };
}

function reduceCost(profile: Profile, fn: string, associative: boolean, values: number, valueBytes: number, m: Machine): Estimate {
  const pieces = associative ? Math.min(m.split, Math.floor(values / 2)) : 1;
  if (pieces <= 1) return calls(profile, [fn], values * (valueBytes + 4) + 4, m);
  const first = calls(profile, [fn], (values / pieces) * (valueBytes + 4) + 4, m);
  const last = calls(profile, [fn], pieces * (first.out + 4) + 4, m);
  return {
    latency: first.latency + last.latency,
    service: first.latency + last.latency,
    work: pieces * first.work + last.work,
    host: pieces * first.host + last.host,
    total: pieces * first.total + last.total,
    out: last.out,
  };
}

function estimate(profile: Profile, node: Skeleton, bytes: number, m: Machine): Estimate {
  const { k } = m;
  switch (node.kind) {
    case 'seq':
      return calls(profile, node.fns, bytes, m);
    case 'pipe': {
      let size = bytes;
      const parts = node.stages.map((s) => {
        const e = estimate(profile, s, size, m);
        size = e.out;
        return e;
      });
      const work = parts.reduce((a, e) => a + e.work, 0);
      const host = parts.reduce((a, e) => a + e.host, 0);
      return {
        latency: parts.reduce((a, e) => a + e.latency, 0),
        service: Math.max(...parts.map((e) => e.service), cpu(m, { work, host })),
        work,
        host,
        total: parts.reduce((a, e) => a + e.total, 0),
        out: size,
      };
    }
    case 'farm': {
      const e = estimate(profile, node.worker, bytes, m);
      const replicas = node.replicas === 'auto' ? AUTO_REPLICAS_PER_WORKER * k : node.replicas;
      return { ...e, service: Math.max(e.latency / replicas, cpu(m, e)) };
    }
    case 'map': {
      const p = partsOf(profile, node.partition, bytes, m.split);
      const e = estimate(profile, node.worker, bytes / p, m);
      const split = profile.hostMs(`partition:${node.partition.name}`, bytes);
      let gather: Estimate;
      if (node.gather.kind === 'join') {
        const ms = profile.hostMs(`gather:${node.gather.name}`, p * e.out);
        gather = {
          latency: ms,
          service: ms,
          work: 0,
          host: ms,
          total: ms,
          out: p * e.out + (node.gather.name === 'framed' ? 4 + 4 * p : 0),
        };
      } else {
        gather = reduceCost(profile, node.gather.reduce.fn, node.gather.reduce.associative, p, e.out, m);
      }
      const work = p * e.work + gather.work;
      const host = split + p * e.host + gather.host;
      const latency = split + wave(m, p, e) + gather.latency;
      return { latency, service: latency, work, host, total: split + p * e.total + gather.total, out: gather.out };
    }
    case 'reduce': {
      const values = Math.max(1, profile.shape(`values:${node.fn}`, 2));
      const e = reduceCost(profile, node.fn, node.associative, values, Math.max(0, (bytes - 4) / values - 4), m);
      const unframe = profile.hostMs(`unframe:${node.fn}`, bytes);
      return { ...e, latency: e.latency + unframe, service: e.service + unframe, host: e.host + unframe, total: e.total + unframe };
    }
    case 'mapReduce': {
      const p = partsOf(profile, node.partition, bytes, m.split);
      const mapper = calls(profile, [node.mapper], bytes / p, m);
      const mapped = p * mapper.out;
      const shuffle = profile.hostMs(`shuffle:${node.mapper}`, mapped);
      const r = node.reducers === 'auto' ? m.split : node.reducers;
      const reducer = calls(profile, [node.reducer], mapped / r, m);
      const merge = profile.hostMs(`merge:${node.reducer}`, r * reducer.out);
      const split = profile.hostMs(`partition:${node.partition.name}`, bytes);
      const phase = (n: number, e: Estimate): number => wave(m, n, e);
      const latency = split + phase(p, mapper) + shuffle + phase(r, reducer) + merge;
      return {
        latency,
        service: latency,
        work: p * mapper.work + r * reducer.work,
        host: split + shuffle + merge + p * mapper.host + r * reducer.host,
        total: split + p * mapper.total + shuffle + r * reducer.total + merge,
        out: r * reducer.out,
      };
    }
    case 'dc': {
      const bases = profile.shapes.get(`base:${node.base}`);
      if (bases === undefined) {
        throw new InvalidOptionError(
          ErrorCode.INVALID_OPTION,
          `the profile saw no base case of '${node.base}'; calibrate with samples that divide down to one`,
          { path: 'profile' },
        );
      }
      // Where calibration saw base cases: the model cannot run isBase on a size alone.
      const baseMax = Math.max(...bases);
      const arity = profile.shape(`arity:${node.divide}`, 2);
      const tree = (size: number, depth: number): { work: number; host: number; span: number; total: number; out: number } => {
        if (size <= baseMax * 1.01 || depth >= node.maxDepth) {
          const b = calls(profile, [node.base], size, m);
          return { work: b.work, host: b.host, span: b.latency, total: b.total, out: b.out };
        }
        const d = calls(profile, [node.divide], size, m);
        const child = Math.max(0, (d.out - 4) / arity - 4);
        const sub = tree(child, depth + 1);
        const c = calls(profile, [node.combine], arity * (sub.out + 4) + 4, m);
        return {
          work: d.work + arity * sub.work + c.work,
          host: d.host + arity * sub.host + c.host,
          span: d.latency + sub.span + c.latency,
          total: d.total + arity * sub.total + c.total,
          out: c.out,
        };
      };
      const t = tree(bytes, 0);
      const latency = Math.max(t.work / k + t.span * (1 - 1 / k), cpu(m, t));
      return { latency, service: latency, work: t.work, host: t.host, total: t.total, out: t.out };
    }
    case 'iterate': {
      const n = Math.max(1, Math.round(profile.shape(iterationsKey(node), node.maxIterations)));
      const sum = { latency: 0, work: 0, host: 0, total: 0 };
      let size = bytes;
      for (let i = 0; i < n; i++) {
        const e = estimate(profile, node.body, size, m);
        sum.latency += e.latency;
        sum.work += e.work;
        sum.host += e.host;
        sum.total += e.total;
        size = e.out;
      }
      return { latency: sum.latency, service: sum.latency, work: sum.work, host: sum.host, total: sum.total, out: size };
    }
  }
}

/** The replica count for `worker` in a farm: the fewest within 3% of the best predicted completion. */
export function chooseReplicas(profile: Profile, worker: Skeleton, workload: Workload): { replicas: number; prediction: Prediction } {
  const k = workload.workers ?? profile.workers;
  const options = Array.from({ length: 2 * k }, (_, i) => ({
    replicas: i + 1,
    prediction: predict(profile, farm(worker, { replicas: i + 1 }), workload),
  }));
  const best = Math.min(...options.map((o) => o.prediction.completionMs));
  return options.find((o) => o.prediction.completionMs <= best * 1.03)!;
}

/** Whether `after` (a rewrite of `before`) is predicted faster on `workload`, and by how much. */
export function paysOff(
  profile: Profile,
  before: Skeleton,
  after: Skeleton,
  workload: Workload,
): { beforeMs: number; afterMs: number; speedup: number; paysOff: boolean } {
  const beforeMs = predict(profile, before, workload).completionMs;
  const afterMs = predict(profile, after, workload).completionMs;
  return { beforeMs, afterMs, speedup: afterMs > 0 ? beforeMs / afterMs : 1, paysOff: afterMs < beforeMs * 0.98 };
}
