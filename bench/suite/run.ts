/**
 * `nuvola bench suite`: every workload side by side in one process run — nuvola warm, nuvola
 * cold (the first call after the pool scaled to zero, with `--cold`), the JavaScript reference
 * on piscina (what a Node user would run) and called directly on the main thread (the floor) —
 * with SeBS's metrics, and every output checked against the main thread's reference.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { createRuntime, type Runtime } from 'nuvola';
import { startRedis, type TestRedis } from '../../state/redis-server.js';
import { median, percentile, report, round, type BenchReport, type Figure } from '../harness.js';
import { selectWorkloads } from './index.js';
import { guestWasm } from './guests.js';
import { closeReferences, runReference, unpackTask } from './piscina-task.js';
import {
  single,
  SYSTEMS,
  type NuvolaRun,
  type ReferenceEnv,
  type Size,
  type SuiteRow,
  type System,
  type TaskResult,
  type Workload,
} from './types.js';

export { SYSTEMS, type SuiteRow, type System } from './types.js';
import { drawReport } from './report.js';

export interface SuiteOptions {
  /** Workload names; empty: all. */
  workloads: string[];
  size: Size;
  /** Also measure nuvola's cold start: the first call after the pool scaled to zero. */
  cold: boolean;
  /** Measured rounds after the warm-up round. */
  runs: number;
  /** Workers of the nuvola runtime and threads of the piscina pool. */
  workers: number;
  /** Told of each finished step (for a progress bar). */
  onStep?: (done: number, total: number, label: string) => void;
}

export const SUITE_DEFAULTS: SuiteOptions = { workloads: [], size: 'small', cold: false, runs: 5, workers: 2 };

const COLD: readonly System[] = ['nuvola restore', 'nuvola cold'];

/** One measured call of one system. */
interface Sample {
  clientMs: number;
  execMs: number;
  memoryBytes: number;
  gbSeconds: number;
}

/** Thrown when an output does not pass its workload's check: the run fails. */
export class SuiteMismatchError extends Error {
  constructor(workload: string, system: System, cause: unknown) {
    super(`bench suite: ${workload} on ${system}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

const QUIET = { logger: () => {} };
const MiB = 1 << 20;
const RUNTIME = {
  maxInputBytes: 64 * MiB,
  maxOutputBytes: 64 * MiB,
  maxChainedOutputBytes: 256 * MiB,
  maxMessageBytes: 64 * MiB,
  maxQueuedMessageBytes: 64 * MiB,
};
const FUNCTION = { memoryLimitPages: 8192, timeoutMs: 600_000 };
const piscinaTask = fileURLToPath(new URL('./piscina-task.js', import.meta.url));

/** The nanoseconds header every suite guest writes before its output (guests/timed.ts). */
function splitTimed(output: Uint8Array): { execMs: number; payload: Uint8Array } {
  if (output.byteLength < 8) throw new Error(`a suite guest answered ${output.byteLength} bytes, less than its 8-byte timing header`);
  const ns = new DataView(output.buffer, output.byteOffset, 8).getBigUint64(0, true);
  return { execMs: Number(ns) / 1e6, payload: output.subarray(8) };
}

async function nuvolaRun(rt: Runtime, w: Workload, input: Uint8Array): Promise<NuvolaRun> {
  return w.nuvola !== undefined ? w.nuvola(rt, input) : single(await rt.invoke(w.guests[0]!.split('/').pop()!, input));
}

type Task = (name: string, input: Uint8Array) => Promise<TaskResult>;

async function jsRun(task: Task, w: Workload, input: Uint8Array): Promise<TaskResult> {
  return w.js !== undefined ? w.js(task, input) : task(w.folder ?? w.name, input);
}

const until = async (predicate: () => boolean): Promise<void> => {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 2));
};

async function register(rt: Runtime, list: readonly Workload[]): Promise<void> {
  for (const w of list) {
    for (const entry of w.guests) {
      const [folder, guest] = entry.includes('/') ? entry.split('/') : [w.folder ?? w.name, entry];
      if (!rt.functions().includes(guest!)) await rt.register(guest!, await guestWasm(folder!, guest!), FUNCTION);
    }
  }
}

export function benchSuite(options: SuiteOptions = SUITE_DEFAULTS): Promise<BenchReport> {
  return runWorkloads(selectWorkloads(options.workloads), options);
}

/** The suite over `list` (`options.workloads` is not read). */
export async function runWorkloads(list: readonly Workload[], options: SuiteOptions): Promise<BenchReport> {
  const { size, runs, workers } = options;
  const systems = SYSTEMS.filter((s) => options.cold || !COLD.includes(s));
  const total = list.length * (options.cold ? (runs + 1) * 4 + runs : (runs + 1) * 3);
  let done = 0;
  const step = (label: string): void => options.onStep?.(++done, total, label);
  let redis: TestRedis | undefined;
  const closers: (() => Promise<unknown>)[] = [];
  const rows: SuiteRow[] = [];
  try {
    if (list.some((w) => w.redis === true)) {
      redis = await startRedis();
      closers.push(() => redis!.stop());
    }
    closers.unshift(closeReferences);
    const env: ReferenceEnv = redis === undefined ? {} : { redisUrl: redis.url };
    const tier = redis === undefined ? {} : { redis: redis.url };
    const rt = await createRuntime({ workers, idleTimeoutMs: 600_000, ...RUNTIME, ...tier, ...QUIET });
    closers.unshift(() => rt.close());
    // Scales to zero 50 ms after its last call: what a cold call after a quiet spell meets.
    const coldRt = options.cold ? await createRuntime({ workers, idleTimeoutMs: 50, ...RUNTIME, ...tier, ...QUIET }) : undefined;
    if (coldRt !== undefined) closers.unshift(() => coldRt.close());
    // Keeps no idle instance: every call restores one from the snapshot, on a running worker.
    const restoreRt = options.cold
      ? await createRuntime({ workers, minWorkers: workers, maxIdleInstances: 0, idleTimeoutMs: 600_000, ...RUNTIME, ...tier, ...QUIET })
      : undefined;
    if (restoreRt !== undefined) closers.unshift(() => restoreRt.close());
    const pool = new Piscina({ filename: piscinaTask, minThreads: workers, maxThreads: workers, idleTimeout: 600_000 });
    closers.unshift(() => pool.destroy());
    await register(rt, list);
    if (coldRt !== undefined) await register(coldRt, list);
    if (restoreRt !== undefined) await register(restoreRt, list);
    const onPool: Task = async (name, input) => unpackTask((await pool.run({ name, input, env })) as Uint8Array);
    const here: Task = (name, input) => runReference(name, input, env);

    for (const w of list) {
      const input = w.input(size);
      const expected = (await jsRun(here, w, input)).output;
      const verify = (system: System, output: Uint8Array): void => {
        try {
          w.check(input, output, expected);
        } catch (err) {
          throw new SuiteMismatchError(w.name, system, err);
        }
      };
      const measure: Record<System, (on?: Runtime, system?: System) => Promise<Sample>> = {
        nuvola: async (on = rt, system: System = 'nuvola') => {
          const t = performance.now();
          const r = await nuvolaRun(on, w, input);
          const clientMs = performance.now() - t;
          const { execMs, payload } = w.timed === false ? { execMs: NaN, payload: r.output } : splitTimed(r.output);
          verify(system, payload);
          if (system !== 'nuvola' && w.timed !== false && !r.cold)
            throw new Error(`bench suite: ${w.name} on ${system}: the call was not cold`);
          return {
            clientMs,
            execMs,
            memoryBytes: r.usages.length === 0 ? NaN : Math.max(...r.usages.map((u) => u.peakMemoryBytes)),
            gbSeconds: r.usages.length === 0 ? NaN : r.usages.reduce((s, u) => s + u.gbSeconds, 0),
          };
        },
        'nuvola restore': () => measure.nuvola(restoreRt, 'nuvola restore'),
        'nuvola cold': async () => {
          await until(() => coldRt!.stats().workers === 0);
          return measure.nuvola(coldRt, 'nuvola cold');
        },
        piscina: async () => {
          const t = performance.now();
          const r = await jsRun(onPool, w, input);
          const clientMs = performance.now() - t;
          verify('piscina', r.output);
          return { clientMs, execMs: r.execMs, memoryBytes: r.heapBytes, gbSeconds: (r.heapBytes / 2 ** 30) * (r.execMs / 1000) };
        },
        direct: async () => {
          const t = performance.now();
          const r = await jsRun(here, w, input);
          const clientMs = performance.now() - t;
          verify('direct', r.output);
          return { clientMs, execMs: r.execMs, memoryBytes: r.heapBytes, gbSeconds: (r.heapBytes / 2 ** 30) * (r.execMs / 1000) };
        },
      };
      // Side by side: every round runs each system once, the order rotating from round to round;
      // round 0 warms every side up. The call after scaling to zero ends each round (it needs
      // the pool idle first).
      const rotating: System[] = options.cold ? ['nuvola', 'nuvola restore', 'piscina', 'direct'] : ['nuvola', 'piscina', 'direct'];
      const samples = new Map<System, Sample[]>(systems.map((s) => [s, []]));
      for (let round = 0; round <= runs; round++) {
        for (let j = 0; j < rotating.length; j++) {
          const system = rotating[(j + round) % rotating.length]!;
          const s = await measure[system]();
          if (round > 0) samples.get(system)!.push(s);
          step(`${w.name} ${system}${round === 0 ? ' (warm-up)' : ''}`);
        }
        if (options.cold && round > 0) {
          samples.get('nuvola cold')!.push(await measure['nuvola cold']());
          step(`${w.name} nuvola cold`);
        }
      }
      for (const system of systems) rows.push(summarise(w.name, system, samples.get(system)!));
    }
  } finally {
    for (const close of closers) await close();
  }
  return suiteReport(options, list, rows);
}

function summarise(workload: string, system: System, samples: readonly Sample[]): SuiteRow {
  const client = samples.map((s) => s.clientMs).sort((a, b) => a - b);
  const pick = (f: (s: Sample) => number): number => median(samples.map(f));
  return {
    workload,
    system,
    samples: samples.length,
    execMs: round(
      pick((s) => s.execMs),
      3,
    ),
    clientMs: round(percentile(client, 50), 3),
    clientP10Ms: round(percentile(client, 10), 3),
    clientP90Ms: round(percentile(client, 90), 3),
    overheadMs: round(
      pick((s) => s.clientMs - s.execMs),
      3,
    ),
    memoryBytes: Math.round(pick((s) => s.memoryBytes)),
    gbSeconds: pick((s) => s.gbSeconds),
  };
}

/** Faasm's published restore of a Proto-Faaslet and Firecracker's microVM boot, for scale. */
export const PUBLISHED_COLD_STARTS = { faasmMs: 0.5, firecrackerMs: 125 };

function suiteReport(options: SuiteOptions, list: readonly Workload[], rows: SuiteRow[]): BenchReport {
  const figures: Figure[] = [];
  const notes: string[] = [];
  const row = (w: string, s: System): SuiteRow | undefined => rows.find((r) => r.workload === w && r.system === s);
  const fig = (name: string, ours: number, baseline: string, theirs: number): Figure => ({
    name,
    unit: 'ms',
    median: round(ours, 3),
    baseline,
    baselineMedian: round(theirs, 3),
    ratio: round(ours / theirs, 3),
    better: 'lower',
  });
  for (const w of list) {
    const n = row(w.name, 'nuvola')!;
    const p = row(w.name, 'piscina')!;
    const d = row(w.name, 'direct')!;
    if (w.timed !== false) {
      figures.push(fig(`${w.name}: overhead (client − execution)`, n.overheadMs, 'piscina', p.overheadMs));
      figures.push(fig(`${w.name}: execution`, n.execMs, 'JavaScript on the main thread', d.execMs));
    }
    figures.push(fig(`${w.name}: client time`, n.clientMs, 'piscina', p.clientMs));
    const c = row(w.name, 'nuvola cold');
    const r = row(w.name, 'nuvola restore');
    if (c !== undefined && r !== undefined) {
      figures.push(fig(`${w.name}: client time, new instance per call`, r.clientMs, 'nuvola warm', n.clientMs));
      figures.push(fig(`${w.name}: client time after scaling to zero`, c.clientMs, 'nuvola warm', n.clientMs));
      notes.push(
        `${w.name}: cold-start cost ${(r.clientMs - n.clientMs).toFixed(2)} ms for a new instance (restore), ${(c.clientMs - n.clientMs).toFixed(2)} ms after scaling to zero (worker start + restore); Faasm's published restore ~${PUBLISHED_COLD_STARTS.faasmMs} ms, Firecracker's boot ~${PUBLISHED_COLD_STARTS.firecrackerMs} ms`,
      );
    }
  }
  notes.push(
    `workflows (workflow-*) are measured by their makespan (client time) only: their functions are composed on the main thread, so there is no one execution inside a function.`,
    `size ${options.size}, ${options.workers} workers / piscina threads; execution is timed inside the function (the guest's clock, performance.now() around the reference); overhead = client − execution per call; memory: nuvola the largest linear memory of the calls, JavaScript the V8 heap in use around the task (not a true peak); GB·s: nuvola usage.gbSeconds summed over the calls, JavaScript memory × execution.`,
  );
  const out = report('suite', options.runs, figures, notes);
  out.rows = rows;
  out.attachments = drawReport(out, rows, list);
  return out;
}
