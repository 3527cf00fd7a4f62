/**
 * Both threads. Per-call metering (issue 20): what a call used ({@link Usage}, built on the
 * worker, completed here with energy), bounded per-function distributions for `rt.stats()`,
 * and energy from RAPL counters where the machine exposes them. See docs/guides/metering.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What one call used: `InvokeResult.usage`, and `details.usage` of the error of a call that
 * started on a worker. Every figure is measured; none is estimated except `energyJoules`,
 * which is attributed (and undefined where the machine has no energy counters).
 */
export interface Usage {
  /** Time the call held its worker — instance, `main` (suspensions included), output, reset — in ms (the same span as `workerMs`). */
  wallMs: number;
  /** CPU time of the worker thread in the call's slices (between suspensions, not while suspended), in ms. */
  cpuMs: number;
  /** The instance's linear memory at its largest during the call (its size at the end: Wasm memory only grows), in bytes. */
  peakMemoryBytes: number;
  /** The input's length, in bytes. */
  bytesIn: number;
  /** The output's length, in bytes (0 for a call that failed). */
  bytesOut: number;
  /** Bytes of state values copied into the guest (`read`, and `take` after `read_all`/`appended_load`). */
  stateBytesRead: number;
  /** Bytes the guest handed to state writes (`write`, `write_at`, `append`). */
  stateBytesWritten: number;
  /** Bytes sent to the global tier by the call's `push`/`push_partial`. */
  statePushedBytes: number;
  /** Wall time of the call's GPU kernel host calls (queueing on the kernel thread and copies included), in ms. */
  kernelMs: number;
  /** `peakMemoryBytes` in GiB × `wallMs` in seconds: memory-seconds, the unit serverless platforms bill (peak, not average). */
  gbSeconds: number;
  /**
   * Joules attributed to the call: the machine's RAPL energy over a recent window × the call's
   * `cpuMs` ÷ all CPU time of the machine in that window. Undefined where there are no
   * readable energy counters (`rt.stats().energy.reason` says why) — never made up.
   */
  energyJoules: number | undefined;
  /** With a `fuel` budget: the fuel the call consumed (one per function entry and loop iteration). */
  fuel?: number;
}

/**
 * The numeric fields of a {@link Usage} as they travel packed in a Float64Array (a worker's
 * result batch, its outcome log): one clone per batch instead of an object per call. Energy is
 * added by the pool; `fuel` is NaN when not counted.
 */
export const USAGE_FIELDS = [
  'wallMs',
  'cpuMs',
  'peakMemoryBytes',
  'bytesIn',
  'bytesOut',
  'stateBytesRead',
  'stateBytesWritten',
  'statePushedBytes',
  'kernelMs',
  'gbSeconds',
  'fuel',
] as const;

/** Writes `usage` at `into[at]`, in {@link USAGE_FIELDS} order (test/metering.test.ts checks the round trip). */
export function packUsage(usage: Usage, into: Float64Array, at: number): void {
  into[at] = usage.wallMs;
  into[at + 1] = usage.cpuMs;
  into[at + 2] = usage.peakMemoryBytes;
  into[at + 3] = usage.bytesIn;
  into[at + 4] = usage.bytesOut;
  into[at + 5] = usage.stateBytesRead;
  into[at + 6] = usage.stateBytesWritten;
  into[at + 7] = usage.statePushedBytes;
  into[at + 8] = usage.kernelMs;
  into[at + 9] = usage.gbSeconds;
  into[at + 10] = usage.fuel ?? NaN;
}

/**
 * The {@link Usage} packed at `from[at]`. One object literal of a fixed shape: it is built for
 * every result on the main thread, and filling it field by field through the names (a keyed
 * store per field) cost a fifth of a call's main-thread time at 256 calls in flight.
 */
export function unpackUsage(from: Float64Array, at: number): Usage {
  const usage: Usage = {
    wallMs: from[at]!,
    cpuMs: from[at + 1]!,
    peakMemoryBytes: from[at + 2]!,
    bytesIn: from[at + 3]!,
    bytesOut: from[at + 4]!,
    stateBytesRead: from[at + 5]!,
    stateBytesWritten: from[at + 6]!,
    statePushedBytes: from[at + 7]!,
    kernelMs: from[at + 8]!,
    gbSeconds: from[at + 9]!,
    energyJoules: undefined,
  };
  const fuel = from[at + 10]!;
  if (!Number.isNaN(fuel)) usage.fuel = fuel;
  return usage;
}

/** Log-bucketed histogram: 16 buckets per doubling (each ~4.4% wide), values in µs up to ~2^36. */
export class LogHistogram {
  private static readonly SUB = 16;
  private readonly buckets = new Uint32Array(36 * LogHistogram.SUB);
  count = 0;
  max = 0;
  /** The values added, summed, in ms. */
  sum = 0;

  /** Adds `ms` (negative and NaN count as 0). */
  add(ms: number): void {
    const v = ms > 0 ? ms : 0;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
    const micros = v * 1000;
    const index = micros < 1 ? 0 : Math.min(this.buckets.length - 1, Math.floor(Math.log2(micros) * LogHistogram.SUB));
    this.buckets[index]!++;
  }

  /** The value at quantile `q` (0..1): the upper edge of its bucket, never above the maximum seen, in ms. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return Math.min(this.max, 2 ** ((i + 1) / LogHistogram.SUB) / 1000);
    }
    return this.max;
  }

  /**
   * For each bound (ms, ascending), how many values were at most that: the buckets whose upper
   * edge is at most the bound (so within ~4.4% of it) — Prometheus's cumulative `le` buckets.
   */
  cumulative(boundsMs: readonly number[]): number[] {
    const out: number[] = [];
    let seen = 0;
    let i = 0;
    for (const bound of boundsMs) {
      while (i < this.buckets.length && 2 ** ((i + 1) / LogHistogram.SUB) / 1000 <= bound) seen += this.buckets[i++]!;
      out.push(seen);
    }
    return out;
  }

  summary(): Percentiles {
    return { p50: this.quantile(0.5), p90: this.quantile(0.9), p99: this.quantile(0.99), max: this.max };
  }
}

/** Percentiles of a distribution, in ms (within ~4.4%; `max` exact). All 0 before the first call. */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Per function, in `rt.stats().byFunction`: its calls since it was registered. */
export interface CallStats {
  /** Calls answered (results and errors). */
  calls: number;
  /** Calls that failed, by error code. */
  errors: Record<string, number>;
  /** From `invoke` (or a chain.call) to the answer. */
  latencyMs: Percentiles;
  /** `usage.cpuMs` of the calls that reported one. */
  cpuMs: Percentiles;
  /** The calls' {@link Usage} figures summed (peak memory excepted: a sum of peaks means nothing); `energyJoules` 0 where unmeasured, `fuel` 0 without a budget. */
  usageTotals: UsageTotals;
  /** Calls answered that restored a new instance (no warm one was idle). */
  coldStarts: number;
  /** Calls answered that found a warm instance. */
  warmStarts: number;
}

/** The summed figures of {@link CallStats.usageTotals}. */
export type UsageTotals = Record<Exclude<(typeof USAGE_FIELDS)[number], 'peakMemoryBytes'> | 'energyJoules', number>;

const TOTALLED = [...USAGE_FIELDS.filter((f) => f !== 'peakMemoryBytes'), 'energyJoules'] as const;

function noUsage(): UsageTotals {
  return Object.fromEntries(TOTALLED.map((f) => [f, 0])) as UsageTotals;
}

/** One registration's call statistics in bounded memory (two histograms of 576 counters each). */
export class FunctionMeter {
  calls = 0;
  readonly errors: Record<string, number> = {};
  readonly latency = new LogHistogram();
  readonly cpu = new LogHistogram();
  cold = 0;
  warm = 0;
  readonly totals: UsageTotals = noUsage();

  /** `cold`: whether an answered call started cold (undefined for a call that failed). */
  record(latencyMs: number, usage: Usage | undefined, errorCode: string | undefined, cold?: boolean): void {
    this.calls++;
    if (cold === true) this.cold++;
    else if (cold === false) this.warm++;
    this.latency.add(latencyMs);
    if (usage !== undefined) {
      this.cpu.add(usage.cpuMs);
      for (const field of TOTALLED) this.totals[field] += usage[field] ?? 0;
    }
    if (errorCode !== undefined) this.errors[errorCode] = (this.errors[errorCode] ?? 0) + 1;
  }
}

/** Per-function call statistics, for `rt.stats().byFunction`. */
export class FunctionMeters {
  private readonly byFunction = new Map<string, FunctionMeter>();

  /**
   * The meter of `fn`'s current registration. A call takes it as it is made, and records into it
   * when answered: a call answered after an unregister counts into a meter nobody reads any more,
   * never into a later registration of the same name.
   */
  of(fn: string): FunctionMeter {
    let m = this.byFunction.get(fn);
    if (m === undefined) {
      m = new FunctionMeter();
      this.byFunction.set(fn, m);
    }
    return m;
  }

  forget(fn: string): void {
    this.byFunction.delete(fn);
  }

  /** `fn`'s latencies as cumulative counts at `boundsMs` with their count and sum in ms (Prometheus's histogram). */
  latencyHistogram(fn: string, boundsMs: readonly number[]): { buckets: number[]; count: number; sumMs: number } {
    const m = this.byFunction.get(fn);
    if (m === undefined) return { buckets: boundsMs.map(() => 0), count: 0, sumMs: 0 };
    return { buckets: m.latency.cumulative(boundsMs), count: m.latency.count, sumMs: m.latency.sum };
  }

  stats(fn: string): CallStats {
    const m = this.byFunction.get(fn);
    if (m === undefined) {
      const none = new LogHistogram().summary();
      return { calls: 0, errors: {}, latencyMs: none, cpuMs: none, usageTotals: noUsage(), coldStarts: 0, warmStarts: 0 };
    }
    return {
      calls: m.calls,
      errors: { ...m.errors },
      latencyMs: m.latency.summary(),
      cpuMs: m.cpu.summary(),
      usageTotals: { ...m.totals },
      coldStarts: m.cold,
      warmStarts: m.warm,
    };
  }
}

/** `rt.stats().energy`: whether calls get `usage.energyJoules`, and why not. */
export interface EnergyStats {
  available: boolean;
  /** Where the counters were looked for (the RAPL zones under /sys/class/powercap). */
  source: string;
  /** Why there is no figure, when `available` is false. */
  reason?: string;
  /** Joules attributed to calls so far. */
  attributedJoules: number;
}

/** How often the counters are read at most: the attribution window, in ms. */
const ENERGY_WINDOW_MS = 200;

/**
 * Main thread. The machine's package energy (RAPL, `intel-rapl:N/energy_uj`, wraps handled)
 * and all CPU time (`/proc/stat`), read at most every ENERGY_WINDOW_MS as results arrive; a
 * call gets its `cpuMs` × the joules per CPU-ms of the last complete window. `NUVOLA_POWERCAP_DIR`
 * and `NUVOLA_PROC_STAT` point it elsewhere (tests write a fake tree there).
 */
export class EnergyMeter {
  private readonly zones: { file: string; range: number }[] = [];
  private readonly source: string;
  private readonly procStat: string;
  private reason: string | undefined;
  private last: { at: number; joules: number; cpuMs: number } | undefined;
  private readonly raw: number[] = [];
  private joulesPerCpuMs: number | undefined;
  private attributed = 0;

  constructor(
    source = process.env['NUVOLA_POWERCAP_DIR'] ?? '/sys/class/powercap',
    procStat = process.env['NUVOLA_PROC_STAT'] ?? '/proc/stat',
  ) {
    this.source = source;
    this.procStat = procStat;
    let names: string[];
    try {
      names = readdirSync(source).filter((n) => /^intel-rapl:\d+$/.test(n));
    } catch (err) {
      this.reason = `no energy counters: ${source} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
      return;
    }
    if (names.length === 0) {
      this.reason = `no RAPL package zones (intel-rapl:N) under ${source}`;
      return;
    }
    for (const name of names.sort()) {
      const file = join(source, name, 'energy_uj');
      let range = 2 ** 32;
      try {
        range = Number(readFileSync(join(source, name, 'max_energy_range_uj'), 'utf8').trim()) || range;
      } catch {
        // Without the range a wrap is assumed at 2^32 µJ.
      }
      this.zones.push({ file, range });
    }
    try {
      this.last = this.read();
    } catch (err) {
      this.zones.length = 0;
      this.reason = `the energy counters cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); reading energy_uj needs root on most kernels`;
    }
  }

  /** Joules for a call that used `cpuMs`, or undefined while none can be attributed. */
  attribute(cpuMs: number): number | undefined {
    if (this.zones.length === 0) return undefined;
    const now = performance.now();
    if (this.last !== undefined && now - this.last.at >= ENERGY_WINDOW_MS) this.advance(now);
    if (this.joulesPerCpuMs === undefined) return undefined;
    const joules = cpuMs * this.joulesPerCpuMs;
    this.attributed += joules;
    return joules;
  }

  stats(): EnergyStats {
    const available = this.zones.length > 0;
    const stats: EnergyStats = { available, source: this.source, attributedJoules: this.attributed };
    if (!available) stats.reason = this.reason;
    else if (this.joulesPerCpuMs === undefined) stats.reason = `the first ${ENERGY_WINDOW_MS} ms window is not over yet`;
    return stats;
  }

  private advance(now: number): void {
    let next: { at: number; joules: number; cpuMs: number };
    try {
      next = this.read(now);
    } catch (err) {
      this.zones.length = 0;
      this.reason = `the energy counters stopped being readable (${(err as Error).message})`;
      return;
    }
    const cpuMs = next.cpuMs - this.last!.cpuMs;
    if (cpuMs > 0) this.joulesPerCpuMs = (next.joules - this.last!.joules) / cpuMs;
    this.last = next;
  }

  /** Energy since the meter started (wraps undone), in joules, and the machine's busy CPU time, in ms. */
  private read(at = performance.now()): { at: number; joules: number; cpuMs: number } {
    let joules = 0;
    this.zones.forEach((zone, i) => {
      const uj = Number(readFileSync(zone.file, 'utf8').trim());
      if (!Number.isFinite(uj)) throw new Error(`${zone.file} does not hold a number`);
      const prev = this.raw[i];
      // A counter that went down wrapped at its range.
      const total = prev === undefined ? 0 : uj >= prev ? uj - prev : uj + zone.range - prev;
      this.raw[i] = uj;
      joules += total / 1e6;
    });
    const cpu = readFileSync(this.procStat, 'utf8').split('\n')[0]!.trim().split(/\s+/);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait, in USER_HZ (100/s).
    const ticks = cpu.slice(1, 9).map(Number);
    const busy = ticks.reduce((n, t, i) => (i === 3 || i === 4 ? n : n + (t || 0)), 0);
    return { at, joules: (this.last?.joules ?? 0) + joules, cpuMs: busy * 10 };
  }
}

/** `usage` with the main thread's part added (energy). */
export function withEnergy(usage: Usage, energy: EnergyMeter): Usage {
  usage.energyJoules = energy.attribute(usage.cpuMs);
  return usage;
}
