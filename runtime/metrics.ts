/**
 * Main thread. `rt.metrics()`: the runtime's figures (`rt.stats()`) as a prom-client
 * `Registry`, read at each scrape — per function (calls, errors by code, a latency histogram,
 * cold and warm starts, calls running and waiting, state bytes, the summed usage figures) and
 * per host (workers, instances, calls in flight, kernels). Nothing is counted twice: every
 * figure is the one `stats()` keeps, so the cost between scrapes is nil. prom-client is
 * loaded on the first call, so a runtime that is never scraped never loads it.
 */
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import type { UsageTotals } from './metering.js';
import type { RuntimeStats } from './runtime-types.js';

/** The latency histogram's buckets, in ms (exported in seconds, as Prometheus names them). */
export const LATENCY_BUCKETS_MS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000] as const;

/** What a metric's `get()` gives prom-client's registry: its samples now. */
interface Sample {
  value: number;
  labels?: Record<string, string | number>;
  metricName?: string;
}
type Kind = 'counter' | 'gauge' | 'histogram';

/** What the metrics read: `stats()` and, per function, its latency histogram. */
export interface MetricsSource {
  stats(): RuntimeStats;
  latencyHistogram(fn: string, boundsMs: readonly number[]): { buckets: number[]; count: number; sumMs: number };
}

/** The usage totals exported, each with its metric name, help and the factor to its unit. */
const USAGE_METRICS: readonly [keyof UsageTotals, string, string, number][] = [
  ['cpuMs', 'nuvola_usage_cpu_seconds_total', 'CPU time of the calls (usage.cpuMs)', 1e-3],
  ['wallMs', 'nuvola_usage_wall_seconds_total', 'time the calls held their workers (usage.wallMs)', 1e-3],
  ['kernelMs', 'nuvola_kernel_seconds_total', 'wall time of the calls’ GPU kernel host calls (usage.kernelMs)', 1e-3],
  ['bytesIn', 'nuvola_usage_bytes_in_total', 'input bytes', 1],
  ['bytesOut', 'nuvola_usage_bytes_out_total', 'output bytes', 1],
  ['stateBytesRead', 'nuvola_usage_state_read_bytes_total', 'state bytes copied into guests', 1],
  ['stateBytesWritten', 'nuvola_usage_state_written_bytes_total', 'bytes handed to state writes', 1],
  ['statePushedBytes', 'nuvola_usage_state_pushed_bytes_total', 'bytes pushed to the global tier', 1],
  ['gbSeconds', 'nuvola_usage_gb_seconds_total', 'memory-seconds (peak GiB x wall seconds)', 1],
  ['energyJoules', 'nuvola_usage_energy_joules_total', 'joules attributed to calls (0 where the machine has no RAPL counters)', 1],
  ['fuel', 'nuvola_usage_fuel_total', 'fuel consumed by calls with a fuel budget', 1],
];

/**
 * A prom-client `Registry` whose metrics read `source` when scraped. Merge it with a service's
 * own (`Registry.merge([rt.metrics(), mine])`) or serve `await registry.metrics()`.
 */
export function runtimeMetrics(source: MetricsSource): Registry {
  // Loaded here, not at import: only runtimes that are scraped pay for it.
  const { Registry: RegistryClass } = createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
  const registry = new RegistryClass();
  // One snapshot of stats() per scrape: prom-client calls every metric's get() in one synchronous
  // pass, so the snapshot is dropped at the next microtask.
  let snapshot: RuntimeStats | undefined;
  const stats = (): RuntimeStats => {
    if (snapshot === undefined) {
      snapshot = source.stats();
      queueMicrotask(() => (snapshot = undefined));
    }
    return snapshot;
  };
  const metric = (name: string, help: string, type: Kind, samples: () => Sample[]): void => {
    registry.registerMetric({
      name,
      help,
      type,
      get: () => ({ name, help, type, values: samples(), aggregator: 'sum' }),
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  };
  const perFunction = (name: string, help: string, type: Kind, value: (fn: RuntimeStats['byFunction'][string]) => number): void =>
    metric(name, help, type, () => Object.entries(stats().byFunction).map(([fn, s]) => ({ value: value(s), labels: { function: fn } })));
  const host = (name: string, help: string, type: Kind, value: (s: RuntimeStats) => number): void =>
    metric(name, help, type, () => [{ value: value(stats()) }]);

  perFunction('nuvola_calls_total', 'calls answered (results and errors), per function', 'counter', (s) => s.calls);
  metric('nuvola_call_errors_total', 'calls that failed, per function and error code', 'counter', () =>
    Object.entries(stats().byFunction).flatMap(([fn, s]) =>
      Object.entries(s.errors).map(([code, n]) => ({ value: n, labels: { function: fn, code } })),
    ),
  );
  metric('nuvola_call_duration_seconds', 'from invoke to the answer, per function (bucket edges within ~4.4%)', 'histogram', () =>
    Object.keys(stats().byFunction).flatMap((fn): Sample[] => {
      const h = source.latencyHistogram(fn, LATENCY_BUCKETS_MS);
      const name = 'nuvola_call_duration_seconds';
      return [
        ...LATENCY_BUCKETS_MS.map((ms, i) => ({
          value: h.buckets[i]!,
          labels: { function: fn, le: ms / 1000 },
          metricName: `${name}_bucket`,
        })),
        { value: h.count, labels: { function: fn, le: '+Inf' }, metricName: `${name}_bucket` },
        { value: h.sumMs / 1000, labels: { function: fn }, metricName: `${name}_sum` },
        { value: h.count, labels: { function: fn }, metricName: `${name}_count` },
      ];
    }),
  );
  perFunction('nuvola_cold_starts_total', 'calls that restored a new instance, per function', 'counter', (s) => s.coldStarts);
  perFunction('nuvola_warm_starts_total', 'calls that found a warm instance, per function', 'counter', (s) => s.warmStarts);
  perFunction('nuvola_calls_running', 'calls running now under maxConcurrency, per function', 'gauge', (s) => s.running);
  perFunction('nuvola_calls_waiting', 'calls waiting for a slot under maxConcurrency (the queue), per function', 'gauge', (s) => s.waiting);
  perFunction('nuvola_state_bytes', 'bytes of the local state tier charged to the function', 'gauge', (s) => s.stateBytes);
  perFunction('nuvola_state_keys', 'local state keys charged to the function', 'gauge', (s) => s.stateKeys);
  for (const [field, name, help, factor] of USAGE_METRICS) {
    perFunction(name, `${help}, per function`, 'counter', (s) => s.usageTotals[field] * factor);
  }

  host('nuvola_functions', 'functions registered (guest modules and host handlers)', 'gauge', (s) => s.functions);
  host('nuvola_workers', 'worker threads running', 'gauge', (s) => s.workers);
  host('nuvola_workers_parked_total', 'workers stopped for being idle', 'counter', (s) => s.workersParked);
  host('nuvola_worker_restarts_total', 'workers replaced after they died or were stopped', 'counter', (s) => s.workerRestarts);
  host('nuvola_instances', 'live instances on all workers', 'gauge', (s) => s.instances);
  host('nuvola_spare_memories', 'memories of retired instances kept for the next restores', 'gauge', (s) => s.spareMemories);
  host('nuvola_inflight_calls', 'calls sent to workers and not answered', 'gauge', (s) => s.inflight);
  host('nuvola_queue_depth', 'calls waiting to start, all functions', 'gauge', (s) =>
    Object.values(s.byFunction).reduce((n, f) => n + f.waiting, 0),
  );
  host('nuvola_host_cold_starts_total', 'calls that restored a new instance, all functions', 'counter', (s) => s.coldStarts);
  host('nuvola_host_warm_starts_total', 'calls that found a warm instance, all functions', 'counter', (s) => s.warmStarts);
  host('nuvola_completed_total', 'calls answered with a result, all functions', 'counter', (s) => s.completed);
  host('nuvola_failed_total', 'calls answered with an error, all functions', 'counter', (s) => s.failed);
  host('nuvola_interrupts_total', 'calls stopped past their deadline by the interrupt word', 'counter', (s) => s.interrupts);
  host('nuvola_timeout_terminations_total', 'workers stopped to end a call past its deadline', 'counter', (s) => s.timeoutTerminations);
  host('nuvola_queued_message_bytes', 'group message bytes sent and not yet received', 'gauge', (s) => s.queuedMessageBytes);
  metric('nuvola_kernel_calls_total', 'GPU kernel calls, per path (gpu or cpu)', 'counter', () => {
    const k = stats().kernels;
    return [
      { value: k?.gpuCalls ?? 0, labels: { path: 'gpu' } },
      { value: k?.cpuCalls ?? 0, labels: { path: 'cpu' } },
    ];
  });
  return registry;
}
