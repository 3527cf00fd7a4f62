/**
 * Main thread. The cost model's prediction. `calibrate` (calibrate.ts) runs a skeleton one
 * call at a time on sample inputs and records into a profile (profile.ts) what every function
 * costs at the sizes it saw (and the shape of the run: parts per map, arity of divide,
 * iterations); `predict` then estimates latency, service time and
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
 */
import { ErrorCode, InvalidOptionError } from '../runtime/index.js';
import { iterationsKey } from './interpreter.js';
import { mean, type Profile } from './profile.js';
import { AUTO_REPLICAS_PER_WORKER, farm, type Partition, type Skeleton } from './tree.js';

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
