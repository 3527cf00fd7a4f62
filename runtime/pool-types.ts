/**
 * Main thread. The pool's shared records — a worker's slot, a call waiting for its answer, a
 * registration in progress, a group — and the narrow view of the pool (`PoolCore`) that its
 * parts (pool-workers.ts, pool-dispatch.ts, pool-registration.ts, pool-deadlines.ts) act on.
 */
import type { Worker, TransferListItem } from 'node:worker_threads';
import type { NuvolaError, WireError } from './errors.js';
import type { Admission } from './admission.js';
import type { Interrupt } from './worker/interrupt.js';
import type { Usage } from './metering.js';
import type { FunctionSpec, GroupRef, InvokeRequest, ToWorker } from './protocol.js';
import type { Snapshot } from './snapshot/layout.js';

export interface RawResult {
  output: Uint8Array;
  returnCode: number;
  cold: boolean;
  worker: number;
  /** See InvokeResult.workerMs. */
  workerMs: number;
  /** See InvokeResult.usage. */
  usage: Usage;
  /** With `trace`: every call of the tree this invocation started (itself included). */
  calls?: CallRecord[];
}

/** One call of a traced call tree. */
export interface CallRecord {
  /** The call's id, unique in the runtime (negative for a chained call its caller's worker ran itself). */
  id: number;
  /** The id of the call that made this one with chain.call; undefined for the root. */
  parent: number | undefined;
  function: string;
  /** The worker that ran it; -1 for a call that failed (whether or not it started). */
  worker: number;
  /** When it was started, in ms after the root was. */
  startMs: number;
  durationMs: number;
  /** Its return code, or undefined when it failed. */
  returnCode: number | undefined;
  /** The failure's code, when it failed. */
  error: string | undefined;
  /** What the call used (its `usage`), when a worker of this runtime ran it. */
  usage?: Usage;
}

/** How a call relates to others: the caller that chained it, a root whose tree is traced, its group. */
export interface CallLink {
  parent?: number;
  trace?: boolean;
  group?: GroupRef;
  /** A group rank whose slot under maxConcurrency its group took for it (all ranks at once). */
  admitted?: Admission;
  /** The caller's AbortSignal (`invoke(…, { signal })`). */
  signal?: AbortSignal;
}

/** A chained call a worker runs itself: the pool only watches it (see InvokeRequest.local). */
export interface Adopted {
  slot: Slot;
  id: number;
  deadline: number;
  suspends: boolean;
}

/** A group started by invokeGroup: where each rank runs, and whether it is over. */
export interface Group {
  /** The worker each rank was dispatched to. */
  slots: (Slot | undefined)[];
  /** Each rank's invocation. */
  pendings: (Pending | undefined)[];
  aborted: boolean;
  /** With placement 'pack': the one worker every rank goes to. */
  packed: Slot | undefined;
  /** A part of a group spread over hosts: the ranks run here, and how the others are reached. */
  part?: GroupPart;
  /** Per rank, bytes sent to it and not yet received (GroupRef.queued). */
  queued: Int32Array;
}

/** Where a group's ranks run when some are on other hosts (cluster mode). */
export interface GroupPart {
  /** The ranks that run on this pool; messages to the others go through `send`. */
  ranks: number[];
  /** Carries a message to a rank on another host. */
  send(from: number, to: number, data: SharedArrayBuffer): void;
  /** Called once when a rank here fails and ends the group (not for an abort from elsewhere). */
  aborted(error: NuvolaError): void;
  /** Set by the pool when the part starts: the id `deliver` and `abortPart` take. */
  id?: number;
}

export interface Pending {
  readonly request: InvokeRequest;
  readonly resolve: (result: RawResult) => void;
  readonly reject: (error: NuvolaError) => void;
  /** Position in its worker's stream of invocations; compared against Control.STARTED. */
  position: number;
  /** Whether the caller has been answered. A settled call stays in `inflight` until its worker replies. */
  settled: boolean;
  /** Set once a cancel was sent: the worker's answer settles the call, or this time passes. */
  cancelBy: number | undefined;
  /** For a call a worker runs itself: whether its module can suspend (as that worker has it registered). */
  suspends?: boolean;
  /** The maxConcurrency slot it holds until it is answered. */
  admission?: Admission;
  /** When the pool set the worker's interrupt word to stop this call looping past its deadline. */
  interruptedAt?: number;
  /** Set when the pool stopped the call for its function's cpuLimitMs. */
  cpuStopped?: boolean;
  /** Set when the caller aborted it: handled like a deadline that has passed, answered with this. */
  aborted?: NuvolaError;
  /** Stops listening to the caller's AbortSignal (once the call is answered). */
  unlisten?: () => void;
}

/** A traced call tree: its records so far and when its root started. */
export interface Trace {
  start: number;
  records: CallRecord[];
}

export interface Slot {
  readonly index: number;
  readonly worker: Worker;
  readonly control: Int32Array;
  /** The worker's outcome log (runtime/outcome-log.ts). */
  readonly outcomes: SharedArrayBuffer;
  /** The worker's interrupt word: the id of a call on its CPU to stop (runtime/worker/interrupt.ts). */
  readonly interrupt: Interrupt;
  /** Invocations sent or about to be sent to this worker, in the order sent. */
  readonly inflight: Map<number, Pending>;
  outbox: InvokeRequest[];
  sent: number;
  /** Why the pool stopped this worker, when it did. */
  stopReason: string | undefined;
  /** Whether the worker finished loading (its `ready` message); one that dies on its own before is not restarted (a crash loop). */
  ready: boolean;
  /** Set when the thread died before it was ready; the slot takes no more work. */
  dead: boolean;
  /** A call id seen in RUNNING that no caller waits for any more, and since when. */
  zombie: { id: number; since: number } | undefined;
  /**
   * When a sweep first found the worker not on the CPU for a call still waited for (since one
   * last found it so): it reads its cancels only after such a call, so an unanswered cancel is
   * timed from then — a pause of this thread does not count against the worker.
   */
  freeSince: number | undefined;
  /** This worker's state lock holder number (unique among live workers and unreleased dead ones). */
  readonly holder: number;
  /** State requests from this worker still being carried out here (some under its locks). */
  readonly stateInflight: Set<Promise<unknown>>;
  /** Stopped for being idle (scale to zero); started again when work comes. */
  parked: boolean;
  /** {@link wallClock} of the last message to or from the worker. */
  lastActive: number;
}

export interface Registering {
  seq: number;
  spec: FunctionSpec;
  /** What each worker is sent (again to a replacement): `boot` or `register`. */
  message: ToWorker;
  /** The snapshot a `boot` answered with. */
  snapshot: Snapshot | undefined;
  timeoutMs: number;
  /** Workers that have not answered yet. */
  waiting: Set<Slot>;
  /** When each worker was first seen creating the instance (Control.REGISTERING). */
  began: Map<Slot, number>;
  error: WireError | undefined;
  /** Answers the caller; may run before every worker is through (the state lingers until then). */
  done: () => void;
}

export interface PoolStats {
  /** Worker threads running now (parked ones, stopped for being idle, not counted). */
  workers: number;
  /** Workers stopped for being idle since the start. */
  workersParked: number;
  /** Workers replaced after they died or were stopped. */
  workerRestarts: number;
  /** Calls on a worker's CPU past their deadline (and register's start-up code past its timeout) stopped by the interrupt word; their worker went on. */
  interrupts: number;
  /** Workers stopped to end a call past its deadline (or register's start-up code past its timeout): its code was not instrumented, or it did not reach a check in time. */
  timeoutTerminations: number;
  /** Live instances on all workers: idle, running or suspended. */
  instances: number;
  /** Memories of retired instances kept, reset, for the next restores (see `memoryPoolSize`). */
  spareMemories: number;
  /** Calls that restored a new instance from the snapshot (no idle one was warm). */
  coldStarts: number;
  /** Calls that found a warm instance. */
  warmStarts: number;
  inflight: number;
  completed: number;
  failed: number;
  /** Bytes of group messages sent and not yet received, over all running groups (at most `maxQueuedMessageBytes` per rank). */
  queuedMessageBytes: number;
}

/** Pool settings beyond what each worker is told. */
export interface PoolOptions {
  size: number;
  /** Workers kept running however idle. */
  minWorkers: number;
  idleTimeoutMs: number;
}

/** The pool's running counts (`PoolStats`). */
export interface PoolCounters {
  restarts: number;
  interrupts: number;
  terminations: number;
  parked: number;
  completed: number;
  failed: number;
  coldStarts: number;
  warmStarts: number;
}

/** What the pool's parts share: its workers, its functions, its counts, and how a call fails. */
export interface PoolCore {
  /** One per worker index; a replaced worker's slot is swapped for its replacement's. */
  readonly slots: Slot[];
  readonly functions: ReadonlyMap<string, FunctionSpec>;
  readonly counters: PoolCounters;
  /** Posts to a worker and wakes it. */
  post(slot: Slot, message: ToWorker, transfer?: readonly TransferListItem[]): void;
  /** Answers a call with `error`, unless it was answered already. */
  fail(pending: Pending, error: NuvolaError): void;
  /** Stops a worker; its replacement is started when it has exited. */
  stop(slot: Slot, reason: string): Promise<void>;
}
