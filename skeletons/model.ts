/**
 * The cost model. `calibrate` runs a skeleton one call at a time on sample inputs and records
 * what every function costs at the sizes it saw (and the shape of the run: parts per map,
 * arity of divide, iterations); `predict` then estimates latency, service time and
 * completion time of any tree over those functions — the original or a rewritten one — for a
 * number of items and workers, without running it:
 *
 * - a call costs α + bytes/β (transport) + its compute time, fitted as a power of its input size;
 * - seq: the sum of its calls; pipe: latency the sum, service time the slowest stage;
 * - farm: service time max(emitter, worker latency / replicas, work / workers);
 * - map: scatter + ⌈parts / workers⌉ · part latency + gather;
 * - divide & conquer: work / workers + span · (1 − 1/workers);
 * - a stream of N items through a farm or pipe: latency + (N − 1) · service time.
 */
import type { Runtime } from '../runtime/index.js';
import { runAll, type Observer } from './run.js';
import { farm, type Skeleton } from './tree.js';

/** How much moving a call and its bytes costs, apart from the function's own work. */
export interface Transport {
  /** Main-thread time to send one call and take its result (the emitter/collector cost). */
  dispatchMs: number;
  /** Round trip of an empty call: α. */
  alphaMs: number;
  /** Bytes per millisecond copied to and from a worker: β. */
  bytesPerMs: number;
}

/** Figures of `nuvola bench comm`/`invoke` on the 2-core development VM, used until measured. */
export const DEFAULT_TRANSPORT: Transport = { dispatchMs: 0.005, alphaMs: 0.03, bytesPerMs: 1_000_000 };

interface Samples {
  sizes: number[];
  values: number[];
  outs: number[];
}

/** A fitted law y = c · x^p (p = 0 when every sample had about the same x). */
interface Law {
  c: number;
  p: number;
}

function fit(xs: readonly number[], ys: readonly number[]): Law {
  const n = xs.length;
  if (n === 0) return { c: 0, p: 0 };
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const mean = ys.reduce((a, b) => a + b, 0) / n;
  if (lo <= 0 || hi / lo < 1.3) return { c: mean, p: 0 };
  // Least squares on logs (values floored at a microsecond so zeros do not break the log).
  const lx = xs.map(Math.log);
  const ly = ys.map((y) => Math.log(Math.max(y, 1e-3)));
  const mx = lx.reduce((a, b) => a + b, 0) / n;
  const my = ly.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (lx[i]! - mx) * (ly[i]! - my);
    sxx += (lx[i]! - mx) ** 2;
  }
  const p = sxx === 0 ? 0 : sxy / sxx;
  return { c: Math.exp(my - p * mx), p };
}

const at = (law: Law, x: number): number => (law.p === 0 ? law.c : law.c * Math.max(x, 1) ** law.p);

/** What calibration measured. Serializable with `toJSON`. */
export class Profile {
  readonly calls = new Map<string, Samples>();
  readonly host = new Map<string, Samples>();
  readonly shapes = new Map<string, number[]>();
  private readonly laws = new Map<string, { compute: Law; out: Law }>();

  constructor(
    readonly transport: Transport,
    /** Runtime workers at calibration. */
    readonly workers: number,
  ) {}

  /** @internal */
  record(into: Map<string, Samples>, key: string, size: number, value: number, out = 0): void {
    let s = into.get(key);
    if (s === undefined) into.set(key, (s = { sizes: [], values: [], outs: [] }));
    s.sizes.push(size);
    s.values.push(value);
    s.outs.push(out);
    this.laws.delete(key);
  }

  private law(fn: string): { compute: Law; out: Law } {
    let law = this.laws.get(fn);
    if (law === undefined) {
      const s = this.calls.get(fn);
      if (s === undefined) throw new Error(`the profile has no measurement of '${fn}'; calibrate with samples that run it`);
      const compute = s.values.map((ms, i) =>
        Math.max(0, ms - this.transport.alphaMs - (s.sizes[i]! + s.outs[i]!) / this.transport.bytesPerMs),
      );
      law = { compute: fit(s.sizes, compute), out: fit(s.sizes, s.outs) };
      this.laws.set(fn, law);
    }
    return law;
  }

  /** Predicted output size of `fn` on `bytes` of input. */
  outBytes(fn: string, bytes: number): number {
    return at(this.law(fn).out, bytes);
  }

  /** Predicted duration of one call of `fn` on `bytes` of input, α and β included. */
  callMs(fn: string, bytes: number): number {
    const law = this.law(fn);
    return this.transport.alphaMs + (bytes + at(law.out, bytes)) / this.transport.bytesPerMs + at(law.compute, bytes);
  }

  /** Predicted main-thread time of a host step (partition, gather, shuffle) on `bytes`. */
  hostMs(step: string, bytes: number): number {
    const s = this.host.get(step);
    if (s === undefined) return 0;
    // Host steps are linear in their bytes at most; a fit through the origin's mean rate.
    const rate =
      s.values.reduce((a, b) => a + b, 0) /
      Math.max(
        1,
        s.sizes.reduce((a, b) => a + b, 0),
      );
    return rate * bytes;
  }

  /** Mean of a recorded shape (parts per map, arity, iterations), or `fallback`. */
  shape(key: string, fallback: number): number {
    const v = this.shapes.get(key);
    return v === undefined || v.length === 0 ? fallback : v.reduce((a, b) => a + b, 0) / v.length;
  }

  toJSON(): unknown {
    const obj = (m: Map<string, unknown>): Record<string, unknown> => Object.fromEntries(m);
    return { transport: this.transport, workers: this.workers, calls: obj(this.calls), host: obj(this.host), shapes: obj(this.shapes) };
  }
}

/**
 * Measures `transport` on this runtime with `echo`, a registered function that outputs its
 * input: α from empty calls one at a time, β from 1 MiB calls, the dispatch cost from many
 * concurrent empty calls.
 */
export async function calibrateTransport(rt: Runtime, echo: string, rounds = 200): Promise<Transport> {
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const big = new Uint8Array(1 << 20);
  for (let i = 0; i < 50; i++) await rt.invoke(echo);
  const empty: number[] = [];
  for (let i = 0; i < rounds; i++) empty.push((await rt.invoke(echo)).durationMs);
  const large: number[] = [];
  for (let i = 0; i < 20; i++) large.push((await rt.invoke(echo, big)).durationMs);
  const alphaMs = median(empty);
  const concurrent = 20 * rounds;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrent }, () => rt.invoke(echo)));
  const dispatchMs = (performance.now() - t) / concurrent;
  const bytesPerMs = (2 * big.byteLength) / Math.max(1e-3, median(large) - alphaMs);
  return { dispatchMs, alphaMs, bytesPerMs };
}

/**
 * Runs `node` one call at a time on `samples` and records every call, host step and shape.
 * Use samples like the real inputs (the same sizes, a spread of the same kinds of items).
 */
export async function calibrate(
  rt: Runtime,
  node: Skeleton,
  samples: readonly Uint8Array[],
  options: { transport?: Transport; repeat?: number } = {},
): Promise<Profile> {
  const profile = new Profile(options.transport ?? DEFAULT_TRANSPORT, rt.options.workers);
  const observe: Observer = {
    call: (fn, inBytes, outBytes, ms) => profile.record(profile.calls, fn, inBytes, ms, outBytes),
    host: (step, bytes, ms) => profile.record(profile.host, step, bytes, ms),
    shape: (key, value) => {
      const v = profile.shapes.get(key) ?? [];
      v.push(value);
      profile.shapes.set(key, v);
    },
  };
  // A warm-up pass unrecorded, so cold instances and JIT do not count.
  await runAll(rt, node, samples, { sequential: true });
  for (let r = 0; r < (options.repeat ?? 1); r++) await runAll(rt, node, samples, { sequential: true, observe });
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
  /** Worker time summed over all calls of one item. */
  workMs: number;
}

export interface Workload {
  /** How many items stream through (1 for a single input). */
  items: number;
  /** Size of one input item. */
  itemBytes: number;
  /** Workers to predict for (default: the profile's). */
  workers?: number;
}

interface Estimate {
  latency: number;
  service: number;
  work: number;
  host: number;
  out: number;
}

/** Predicts how `node` performs on `workload` from the profile's measurements. */
export function predict(profile: Profile, node: Skeleton, workload: Workload): Prediction {
  const k = workload.workers ?? profile.workers;
  const e = estimate(profile, node, workload.itemBytes, k);
  const streams = node.kind === 'farm' || node.kind === 'pipe';
  const completion = streams ? e.latency + (workload.items - 1) * e.service : workload.items * e.latency;
  return { completionMs: completion, latencyMs: e.latency, serviceMs: streams ? e.service : e.latency, workMs: e.work };
}

function partsOf(profile: Profile, name: string, k: number): number {
  return name.includes('workers') ? k : Math.max(1, Math.round(profile.shape(`parts:${name}`, k)));
}

function calls(profile: Profile, fns: readonly string[], bytes: number): Estimate {
  let latency = 0;
  let size = bytes;
  for (const fn of fns) {
    latency += profile.callMs(fn, size);
    size = profile.outBytes(fn, size);
  }
  const host = fns.length * profile.transport.dispatchMs;
  return { latency, service: latency, work: latency, host, out: size };
}

function reduceCost(profile: Profile, fn: string, associative: boolean, values: number, valueBytes: number, k: number): Estimate {
  const pieces = associative ? Math.min(k, Math.floor(values / 2)) : 1;
  if (pieces <= 1) return calls(profile, [fn], values * (valueBytes + 4) + 4);
  const first = calls(profile, [fn], (values / pieces) * (valueBytes + 4) + 4);
  const last = calls(profile, [fn], pieces * (first.out + 4) + 4);
  return {
    latency: first.latency + last.latency,
    service: first.latency + last.latency,
    work: pieces * first.work + last.work,
    host: (pieces + 1) * profile.transport.dispatchMs,
    out: last.out,
  };
}

function estimate(profile: Profile, node: Skeleton, bytes: number, k: number): Estimate {
  switch (node.kind) {
    case 'seq':
      return calls(profile, node.fns, bytes);
    case 'pipe': {
      let size = bytes;
      const parts = node.stages.map((s) => {
        const e = estimate(profile, s, size, k);
        size = e.out;
        return e;
      });
      const work = parts.reduce((a, e) => a + e.work, 0);
      const host = parts.reduce((a, e) => a + e.host, 0);
      return {
        latency: parts.reduce((a, e) => a + e.latency, 0),
        service: Math.max(...parts.map((e) => e.service), work / k, host),
        work,
        host,
        out: size,
      };
    }
    case 'farm': {
      const e = estimate(profile, node.worker, bytes, k);
      const replicas = node.replicas === 'auto' ? k : node.replicas;
      return { ...e, service: Math.max(e.host, e.latency / replicas, e.work / k) };
    }
    case 'map': {
      const p = partsOf(profile, node.partition.name, k);
      const e = estimate(profile, node.worker, bytes / p, k);
      const split = profile.hostMs(`partition:${node.partition.name}`, bytes);
      let gather: Estimate;
      if (node.gather.kind === 'join') {
        const ms = profile.hostMs(`gather:${node.gather.name}`, p * e.out);
        gather = { latency: ms, service: ms, work: 0, host: ms, out: p * e.out + (node.gather.name === 'framed' ? 4 + 4 * p : 0) };
      } else {
        gather = reduceCost(profile, node.gather.reduce.fn, node.gather.reduce.associative, p, e.out, k);
      }
      const latency = split + Math.ceil(p / k) * e.latency + gather.latency;
      return { latency, service: latency, work: p * e.work + gather.work, host: split + p * e.host + gather.host, out: gather.out };
    }
    case 'reduce': {
      const values = Math.max(1, profile.shape(`values:${node.fn}`, 2));
      const e = reduceCost(profile, node.fn, node.associative, values, Math.max(0, (bytes - 4) / values - 4), k);
      return { ...e, host: e.host + profile.hostMs(`unframe:${node.fn}`, bytes) };
    }
    case 'mapReduce': {
      const p = partsOf(profile, node.partition.name, k);
      const mapper = calls(profile, [node.mapper], bytes / p);
      const mapped = p * mapper.out;
      const shuffle = profile.hostMs(`shuffle:${node.mapper}`, mapped);
      const r = node.reducers === 'auto' ? k : node.reducers;
      const reducer = calls(profile, [node.reducer], mapped / r);
      const merge = profile.hostMs(`merge:${node.reducer}`, r * reducer.out);
      const latency =
        profile.hostMs(`partition:${node.partition.name}`, bytes) +
        Math.ceil(p / k) * mapper.latency +
        shuffle +
        Math.ceil(r / k) * reducer.latency +
        merge;
      return {
        latency,
        service: latency,
        work: p * mapper.work + r * reducer.work,
        host: shuffle + merge + (p + r) * profile.transport.dispatchMs,
        out: r * reducer.out,
      };
    }
    case 'dc': {
      const baseMax = Math.max(...(profile.shapes.get(`base:${node.base}`) ?? [0]));
      const arity = profile.shape(`arity:${node.divide}`, 2);
      const tree = (size: number, depth: number): { work: number; span: number; out: number } => {
        if (size <= baseMax * 1.01 || depth >= node.maxDepth) {
          const b = calls(profile, [node.base], size);
          return { work: b.latency, span: b.latency, out: b.out };
        }
        const d = calls(profile, [node.divide], size);
        const child = Math.max(0, (d.out - 4) / arity - 4);
        const sub = tree(child, depth + 1);
        const c = calls(profile, [node.combine], arity * (sub.out + 4) + 4);
        return { work: d.latency + arity * sub.work + c.latency, span: d.latency + sub.span + c.latency, out: c.out };
      };
      const t = tree(bytes, 0);
      const latency = t.work / k + t.span * (1 - 1 / k);
      return { latency, service: latency, work: t.work, host: 0, out: t.out };
    }
    case 'iterate': {
      const n = profile.shape('iterations', node.maxIterations);
      const e = estimate(profile, node.body, bytes, k);
      return { latency: n * e.latency, service: n * e.latency, work: n * e.work, host: n * e.host, out: e.out };
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
  return { beforeMs, afterMs, speedup: beforeMs / afterMs, paysOff: afterMs < beforeMs * 0.98 };
}
