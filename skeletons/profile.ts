/**
 * Main thread. The profile the cost model predicts from (see predict.ts): per function, power
 * laws of input size fitted to compute time, output size and main-thread time; per host step,
 * the same; the shapes of the run (parts per map, arity of divide, iterations); the transport
 * (α, β, dispatch); and the calibrated items. Filled by calibrate.ts.
 */
import { availableParallelism } from 'node:os';
import { ErrorCode, InvalidOptionError } from '../runtime/index.js';

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

export const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
export const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

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
