/**
 * What a workload of `nuvola bench suite` is: its guests, a seeded input per size, the
 * JavaScript reference of the same algorithm, how nuvola runs it, and the output check.
 */
import type { InvokeResult, Runtime, Usage } from 'nuvola';

export type Size = 'test' | 'small' | 'large';
export const SIZES: readonly Size[] = ['test', 'small', 'large'];

/** What the JavaScript reference is given beside its input (the same on piscina and on the main thread). */
export interface ReferenceEnv {
  /** The Redis the state workloads talk to (crud-api's reference uses it directly, through ioredis). */
  redisUrl?: string;
}

/** A JavaScript reference: the same algorithm as the guest, input bytes to output bytes. */
export type Reference = (input: Uint8Array, env: ReferenceEnv) => Uint8Array | Promise<Uint8Array>;

/** What one nuvola run of a workload answered: the output (with the guest's timing header) and every call's usage. */
export interface NuvolaRun {
  output: Uint8Array;
  usages: Usage[];
  /** Whether the entry call started cold. */
  cold: boolean;
}

/** How a JavaScript side runs a workload: one task, or several (a chain, a fan-out) from the main thread. */
export type JsRunner = (task: (name: string, input: Uint8Array) => Promise<TaskResult>, input: Uint8Array) => Promise<TaskResult>;

/** One reference task's answer: its output, the time it measured inside itself, its heap in use after it. */
export interface TaskResult {
  output: Uint8Array;
  execMs: number;
  heapBytes: number;
}

export interface Workload {
  /** The folder and the `--workload` name, e.g. `graph-bfs`. */
  name: string;
  /** Where it comes from, e.g. `SeBS 503.graph-bfs`. */
  origin: string;
  /** What it does, one line. */
  summary: string;
  /** Its folder under bench/suite (guests, reference); default: `name`. Several workloads may share one. */
  folder?: string;
  /**
   * The guests it registers, the entry first: files `<folder>/guests/<guest>.ts`, or
   * `<other folder>/<guest>` for another workload's, registered under the guest's name.
   */
  guests: string[];
  /**
   * False for a workflow: its output carries no timing header (its functions are composed by a
   * skeleton on the main thread), so only client time (the makespan) is measured.
   */
  timed?: false;
  /** Needs the Redis global tier. */
  redis?: boolean;
  /** The input of a size, from a fixed seed. */
  input(size: Size): Uint8Array;
  /** How nuvola runs it; default: `invoke(guests[0], input)`. */
  nuvola?: (rt: Runtime, input: Uint8Array) => Promise<NuvolaRun>;
  /** How the JavaScript sides run it; default: one task of the reference. */
  js?: JsRunner;
  /** Throws when `output` (without the timing header) is wrong for `input`; `expected` is the main thread reference's output. */
  check(input: Uint8Array, output: Uint8Array, expected: Uint8Array): void;
}

/** The default nuvola run: one call of the entry guest. */
export function single(result: InvokeResult): NuvolaRun {
  return { output: result.output, usages: result.usage === undefined ? [] : [result.usage], cold: result.cold };
}

/** A nuvola run of an entry that calls others: traced, so that every call's usage counts. */
export async function chainRun(rt: Runtime, entry: string, input: Uint8Array): Promise<NuvolaRun> {
  const r = await rt.invoke(entry, input, { trace: true });
  const usages = (r.calls ?? []).flatMap((c) => (c.usage === undefined ? [] : [c.usage]));
  return { output: r.output, usages, cold: r.cold };
}

/** A check that the output is byte for byte the reference's. */
export function sameBytes(what: string): (input: Uint8Array, output: Uint8Array, expected: Uint8Array) => void {
  return (_input, output, expected) => {
    if (
      Buffer.compare(
        Buffer.from(output.buffer, output.byteOffset, output.byteLength),
        Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
      ) !== 0
    ) {
      const at = firstDifference(output, expected);
      throw new Error(`${what}: output differs from the reference at byte ${at} (${output.byteLength} vs ${expected.byteLength} bytes)`);
    }
  };
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/**
 * `nuvola`: warm instances; `nuvola restore`: a new instance from the snapshot for every call
 * on a running worker (what Faasm's restore compares with); `nuvola cold`: the first call after
 * the pool scaled to zero (a worker thread starts, then the restore); `piscina`: the JavaScript
 * reference on a piscina pool; `direct`: the reference on the main thread (the floor).
 */
export type System = 'nuvola' | 'nuvola restore' | 'nuvola cold' | 'piscina' | 'direct';
export const SYSTEMS: readonly System[] = ['nuvola', 'nuvola restore', 'nuvola cold', 'piscina', 'direct'];

/** A workload on a system: medians over the measured rounds (SeBS's metrics). */
export interface SuiteRow {
  workload: string;
  system: System;
  samples: number;
  /** Time measured inside the function (the guest's clock; `performance.now()` around the reference). */
  execMs: number;
  /** From the call to its answer, on the main thread. */
  clientMs: number;
  clientP10Ms: number;
  clientP90Ms: number;
  /** Client time − execution time, per call. */
  overheadMs: number;
  /** nuvola: the largest linear memory of the calls; JavaScript: V8 heap in use (incl. external) around the task. */
  memoryBytes: number;
  /** nuvola: the calls' `usage.gbSeconds`; JavaScript: memory × execution time. */
  gbSeconds: number;
}
