/**
 * The typed message protocol between the main thread (runtime/pool.ts) and each worker
 * (runtime/worker/entry.ts). Both sides import this file and nothing else of each other.
 *
 * Invocations travel in batches: every `invoke` made in one turn of the event loop is sent to
 * a worker as one message, and every result a worker produces in one turn comes back as one.
 * That amortises the cost of `postMessage` (tens of microseconds) over many calls.
 *
 * A worker with nothing suspended does not idle in its event loop: it blocks in
 * `Atomics.wait` on Control.SIGNAL and takes messages with `receiveMessageOnPort`, which
 * wakes it faster than the event loop would. The main thread bumps SIGNAL after each post
 * and notifies when IDLE is set.
 */
import type { SourceTable } from './source-map.js';
import type { MessagePort } from 'node:worker_threads';
import type { WireError } from './errors.js';
import type { WasiConfig } from './capabilities/wasi/config.js';
import type { KernelsApi } from './capabilities/kernels/api.js';
import type { StateApi } from './capabilities/state/api.js';
import type { ChainApi } from './capabilities/chain/api.js';
import type { CommApi } from './capabilities/comm/api.js';
import type { Reply, Request, Service } from './rpc.js';
import type { Usage } from './metering.js';
import type { DataSegment, Snapshot, SnapshotLayout } from './snapshot/layout.js';

/** Layout of the Int32Array over each worker's control SharedArrayBuffer. */
export const Control = {
  /** Invocations the worker has begun, counted in the order they were sent. */
  STARTED: 0,
  /** Id of the invocation whose guest code is on the worker's CPU right now, 0 when none. */
  RUNNING: 1,
  /** Bumped by the main thread after each message it posts; an idle worker waits on it. */
  SIGNAL: 2,
  /** 1 while the worker is (about to be) blocked waiting on SIGNAL, so the main thread must notify. */
  IDLE: 3,
  /** `seq` of the registration whose instance the worker is creating right now, 0 when none. */
  REGISTERING: 4,
  /** {@link clockMicros} when the main thread last notified the idle worker. */
  NOTIFIED_AT: 5,
  /** Spare memories the worker holds (memories of retired instances, kept for restores). */
  SPARES: 6,
  /**
   * Bumped by the main thread after it posts a `cancel` for a call that may still be queued:
   * a worker running a queue of calls reads its messages before the next one when this moved.
   */
  CANCELS: 7,
  LENGTH: 8,
} as const;

/**
 * A monotonic clock in microseconds, wrapped to an Int32 (differences are taken with `| 0`).
 * `process.hrtime` reads one clock for every thread of the process; `performance.now()` does
 * not (each thread has its own origin), so it would bias cross-thread differences.
 */
export function clockMicros(): number {
  const [seconds, nanos] = process.hrtime();
  return (seconds * 1_000_000 + Math.floor(nanos / 1000)) | 0;
}

/**
 * Milliseconds since the Unix epoch with sub-millisecond precision, comparable between
 * threads (each thread's `performance.now()` has its own origin).
 */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

export interface WorkerData {
  index: number;
  control: SharedArrayBuffer;
  maxOutputBytes: number;
  maxIdleInstances: number;
  maxLogBytes: number;
  spinMicros: number;
  /** This worker's state lock holder number (the main thread is 1). */
  lockHolder: number;
  /** Idle instances unused for this long are released, in milliseconds. */
  idleTimeoutMs: number;
  /**
   * One Int32 per lock holder number (unique per worker incarnation): the Wasm memories (live
   * instances' and spare ones) that worker holds. A worker counts into its own slot and checks
   * the sum against `maxInstances`; the pool zeroes the slot of a worker that exited, so
   * nothing it held stays counted.
   */
  memoryCounts: SharedArrayBuffer;
  /** Like `memoryCounts`: the host descriptors each worker's WASI imports hold (capped in sum). */
  wasiFileCounts: SharedArrayBuffer;
  /** The worker's interrupt word (runtime/worker/interrupt.ts): a shared Wasm page the pool writes. */
  interrupt: WebAssembly.Memory;
  /** The host's region memory (the state store's arena), the same for every worker: mapped keys live in it. */
  region: WebAssembly.Memory;
  /** The deadline watchdog's cell (runtime/worker/deadline-watch.ts): the worker wakes it for an earlier deadline. */
  watch: SharedArrayBuffer;
  /** Most live instances the runtime may hold. */
  maxInstances: number;
  /** Spare memories kept per function per worker. */
  memoryPoolSize: number;
  /** Largest input of a chained call, in bytes (maxInputBytes). */
  maxInputBytes: number;
  /** Largest message between ranks, in bytes. */
  maxMessageBytes: number;
  /** Most bytes of messages queued for one rank (sent, not yet received). */
  maxQueuedMessageBytes: number;
  /** Most bytes of chained calls' outputs one invocation may hold. */
  maxChainedOutputBytes: number;
  /** The worker's outcome log: outcomes not posted yet, read by the pool if the worker is lost (runtime/outcome-log.ts). */
  outcomes: SharedArrayBuffer;
}

export interface FunctionSpec {
  name: string;
  /** The module as rewritten for snapshots (runtime/snapshot/rewrite.ts). */
  module: WebAssembly.Module;
  layout: SnapshotLayout;
  /** Absent only in the `boot` message that creates it. */
  snapshot?: Snapshot;
  /** `reset`: every call starts from the snapshot; `keep`: a warm instance keeps what earlier calls left. */
  reuse: 'reset' | 'keep';
  suspends: boolean;
  memoryLimitPages: number;
  /** State keys (exact, or prefixes ending in `*`) the function may touch; undefined: any. */
  stateKeys: string[] | undefined;
  /** Functions the guest may call with chain.call; undefined: any. */
  callees: string[] | undefined;
  /** Longest a guest waits for a global lock, in ms (its timeout). */
  timeoutMs: number;
  /** Which interface the guest speaks: nuvola's SDK ABI, a WASI command, or a component. */
  abi: GuestAbi;
  /** Arguments, environment and granted directories of the WASI imports. */
  wasi: WasiConfig;
  /** For a component: jco's instantiation code and the core modules besides `module` (runtime/component.ts). */
  component?: ComponentCode;
  /** Guest source positions for stack frames (runtime/source-map.ts), when the module carries a source map. */
  sources?: SourceTable;
  /**
   * `maxConcurrency`, and one Int32 shared by the pool and every worker: the function's calls
   * running now. Only the pool lowers it; a worker raises it (below `limit`) for a chained
   * call it runs itself.
   */
  concurrency: { limit: number; running: SharedArrayBuffer };
  /** `cpuLimitMs` at register: the CPU a call may use (the pool enforces it). */
  cpuLimitMs?: number;
  /** `fuel` at register: the fuel a call may consume (the module was rewritten to count it). */
  fuel?: number;
}

/** The interface a guest module speaks (see `abi` in register()). */
export type GuestAbi = 'nuvola' | 'wasi' | 'component';

/** A component transpiled by jco: what a worker needs to instantiate it. */
export interface ComponentCode {
  /** Content hash of the component (the transpile cache's key); workers cache the compiled glue by it. */
  hash: string;
  /** jco's `instantiate` (sync instantiation), as a function body returning it. */
  glue: string;
  /** The core module that defines the memory: rewritten for snapshots, it is `FunctionSpec.module`. */
  main: string;
  /** The other core modules by the names the glue asks for. */
  modules: Record<string, WebAssembly.Module>;
  /**
   * By core module: the exports that could be the component's `realloc` (the glue writes the
   * input into what it returns; the worker marks that range for the reset).
   */
  reallocs: Record<string, string[]>;
}

/** The group an invocation is a rank of. */
export interface GroupRef {
  id: number;
  rank: number;
  size: number;
  /** The worker (index) each rank was dispatched to: a message to a rank on the same worker never leaves it. */
  workers: number[];
  /**
   * One Int32 per rank: bytes of messages sent to it (on this host) and not yet received. A
   * sender raises it (up to `maxQueuedMessageBytes`), the receiving rank lowers it.
   */
  queued: SharedArrayBuffer;
}

export interface InvokeRequest {
  id: number;
  fn: string;
  /** For a rank of a group started by invokeGroup. */
  group?: GroupRef;
  /** For a call made with chain.call: the calling invocation's id. */
  parent?: number;
  /**
   * A chained call its caller's worker runs itself (negative id, not counted in
   * Control.STARTED); the worker tells the pool with `chainLocal` and answers the caller directly.
   */
  local?: boolean;
  /** Absent when empty: cloning even an empty typed array costs a measurable part of a round trip. */
  input?: Uint8Array;
  /** {@link wallClock} time after which the call must not start; the caller has already been told it timed out. */
  deadline: number;
  timeoutMs: number;
}

/** Main thread → the deadline watchdog (runtime/watchdog-thread.ts): a worker to watch (a replacement takes its index), or stop. */
export type ToWatchdog = { type: 'watch'; index: number; control: SharedArrayBuffer; interrupt: WebAssembly.Memory } | { type: 'close' };

export type ToWorker =
  /** Run start-up code and `init()` once and answer with the snapshot (`booted`). */
  | { type: 'boot'; spec: FunctionSpec; segments: DataSegment[]; seq: number }
  /** `seq` 0: a replacement worker learning an already registered function (no warm instance yet). */
  | { type: 'register'; spec: FunctionSpec; seq: number }
  /** Restore instances of `fn` until `count` are idle, when the worker has nothing else to do. */
  | { type: 'prewarm'; fn: string; count: number }
  | { type: 'unregister'; name: string }
  | { type: 'invoke'; batch: InvokeRequest[] }
  | { type: 'cancel'; id: number; error: WireError }
  /** The answer to a worker's `call`. */
  | ({ type: 'reply'; capability: keyof HostApis } & Reply)
  /** A message for rank `to` of `group` (its bytes in a SharedArrayBuffer, not copied on the way). */
  | { type: 'comm'; group: number; from: number; to: number; data: SharedArrayBuffer }
  /** A rank of `group` failed: receives of the group fail with this error from now on. */
  | { type: 'commAbort'; group: number; error: WireError }
  /** `group` is over: its mailboxes go. */
  | { type: 'commEnd'; group: number }
  /**
   * A direct channel to worker `index` (replacing any earlier one): group messages between
   * ranks on the two workers go through it, not through the main thread. `control` is that
   * worker's control words, to wake it when it idles.
   */
  | { type: 'peer'; index: number; port: MessagePort; control: SharedArrayBuffer };

export interface InvokeSuccess {
  id: number;
  /** Absent when empty (see `InvokeRequest.input`). */
  output?: Uint8Array;
  returnCode: number;
  /** Whether this call instantiated a new instance rather than reusing a warm one. */
  cold: boolean;
  /** Time the call kept its worker: taking or restoring an instance, main, output, reset (suspensions included). */
  workerMs: number;
  /**
   * What it used. Not in the posted object: a batch carries its successes' usage packed in
   * its `usage` array, which the pool unpacks here (as does the outcome log); energy is added
   * by the pool.
   */
  usage?: Usage;
}

export interface InvokeFailure {
  id: number;
  error: WireError;
}

export type InvokeOutcome = InvokeSuccess | InvokeFailure;

export interface WorkerLog {
  fn: string;
  message: string;
}

/** What workers ask of the main thread, by capability (see runtime/rpc.ts). */
export interface HostApis {
  state: StateApi;
  kernels: KernelsApi;
  chain: ChainApi;
  comm: CommApi;
}

/** One request of a worker to a capability's main-thread service. */
export type HostRequest =
  | ({ capability: 'state' } & Request<StateApi>)
  | ({ capability: 'kernels' } & Request<KernelsApi>)
  | ({ capability: 'chain' } & Request<ChainApi>)
  | ({ capability: 'comm' } & Request<CommApi>);

/** The services the runtime gives the pool (chain and comm the pool serves itself: runtime/pool-requests.ts). */
export interface HostServices {
  state: Service<StateApi>;
  kernels: Service<KernelsApi>;
}

export type FromWorker =
  /** Sent once the worker has loaded and listens. */
  | { type: 'ready' }
  | { type: 'registered'; seq: number; error?: WireError }
  | { type: 'booted'; seq: number; snapshot?: Snapshot; error?: WireError }
  /** `usage`: the usage of the batch's successes, in order, USAGE_FIELDS.length numbers each (runtime/metering.ts). */
  | { type: 'results'; batch: InvokeOutcome[]; usage: Float64Array; logs: WorkerLog[] }
  /** A request to a capability's main-thread service, answered by a `reply` with the same id (a notice, id NOTICE, by none). */
  | ({ type: 'call'; id: number } & HostRequest);
