/**
 * Main thread. The types of the Runtime's API: what `invoke`, `invokeChain`, `describe`,
 * `stats` and `cluster` resolve to, and what a host handler is given.
 */
import type { CallRecord, PoolStats } from './pool.js';
import type { CallStats, EnergyStats, Usage } from './metering.js';
import type { ConcurrencyStats } from './admission.js';
import type { KernelsStats } from '../kernels/index.js';
import type { HostInfo, Rejected } from '../cluster/cluster.js';

/** What `invoke` resolves to. */
export interface InvokeResult {
  /** The bytes the guest passed to `output`/`outputString` (empty when it set none). */
  output: Uint8Array;
  /** The value `main` returned. */
  returnCode: number;
  /** Whether the call had to instantiate a fresh instance (no warm one was idle). */
  cold: boolean;
  /** Index of the worker that ran it. */
  worker: number;
  /** Wall time from `invoke` to the result, in milliseconds. */
  durationMs: number;
  /**
   * Of that, the time the call kept its worker busy: taking or restoring an instance, running
   * `main` (time suspended included), reading the output, resetting the instance. The rest is
   * queueing and moving the input and output between threads. 0 for host handlers.
   */
  workerMs: number;
  /**
   * What the call used: wall and CPU time, peak memory, bytes in and out, state and kernel use,
   * memory-seconds, energy where measurable, fuel (see {@link Usage} and docs/guides/metering.md).
   * On every call a worker of this runtime ran (the error of a call that started carries it in
   * `details.usage`); absent for host handlers and calls another cluster host ran.
   */
  usage?: Usage;
  /** With `{ trace: true }`: this call and every call it made with chain.call, transitively. */
  calls?: CallRecord[];
  /** Cluster mode: the id of the host that ran the call. */
  host?: string;
}

/** What `rt.cluster()` resolves to. */
export interface ClusterView {
  name: string;
  /** This host's id. */
  self: string;
  /** The live hosts (this one included), as their last heartbeats described them. */
  hosts: HostInfo[];
  /**
   * What this host dropped since it joined because it failed verification (no valid MAC under
   * the cluster's secret, bytes that do not match their hash), by kind. Non-zero: something
   * without the secret writes to the cluster's Redis, or a host has another secret.
   */
  rejected: Rejected;
}

export type { InvokeInput } from './input.js';

/** What `invokeChain` resolves to: the last stage's result, and every stage's. */
export interface ChainResult extends InvokeResult {
  /** Each stage that ran, in order (a chain stops at the first non-zero return code). */
  stages: (Omit<InvokeResult, 'output'> & { function: string })[];
}

/** What a host handler gets besides its input. */
export interface HandlerContext {
  /** The name it was invoked as. */
  function: string;
  /** The call's time limit; the call rejects with `E_TIMEOUT` when it passes. */
  timeoutMs: number;
  /** Aborted when the call timed out or the runtime closed: stop starting new work then. */
  signal: AbortSignal;
}

/**
 * A function written in JavaScript that runs on the main thread, between guest calls — a
 * registered skeleton is one. Resolves with the output (return code 0) or with both.
 */
export type HostHandler = (input: Uint8Array, context: HandlerContext) => Promise<Uint8Array | { output: Uint8Array; returnCode: number }>;

/** What `describe(name)` says of a registered function. */
export interface FunctionInfo {
  name: string;
  /** `'wasm'`: a guest module; `'handler'`: a host handler (`registerHandler`). */
  kind: 'wasm' | 'handler';
  timeoutMs: number;
  /** For guest modules: whether an instance is reset after each call or keeps its state. */
  reuse?: 'reset' | 'keep';
  /** For guest modules: the interface it speaks (`'nuvola'`, `'wasi'` or `'component'`). */
  abi?: 'nuvola' | 'wasi' | 'component';
  /** For guest modules: the state keys it may touch (`undefined`: any). */
  stateKeys?: readonly string[];
  /** For guest modules: the functions it may call with `chain.call` (`undefined`: any). */
  callees?: readonly string[];
  /** For host handlers: the function registered (so a library can recognise its own). */
  handler?: HostHandler;
}

/** One function in `stats().byFunction`. */
export interface FunctionStats extends ConcurrencyStats, CallStats {
  /** Bytes of the local state tier charged to it: room of the keys it last created or grew, plus what it appended here. */
  stateBytes: number;
  /** Local keys charged to it. */
  stateKeys: number;
  stateQuota: { bytes: number; keys: number };
}

/** What `stats()` reports. */
export interface RuntimeStats extends PoolStats {
  functions: number;
  /** Per registered guest module: its calls under `maxConcurrency` and its use of the local state tier against `stateQuota`. */
  byFunction: Record<string, FunctionStats>;
  /** The runtime-wide caps on what guests make the host hold. */
  limits: { maxQueuedMessageBytes: number; maxChainedOutputBytes: number; maxInstances: number };
  /** The GPU kernels: which path they take, calls per path and per function; absent before first use. */
  kernels?: KernelsStats;
  /** Whether calls get `usage.energyJoules` (RAPL counters readable), why not, and the joules attributed so far. */
  energy: EnergyStats;
}
