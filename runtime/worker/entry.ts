/**
 * Worker thread entry (its own build entry: dist/runtime/worker/entry.js). Keeps the
 * registered functions and their warm instances, runs the invocations the main thread sends,
 * and answers in batches. Speaks only the protocol in runtime/protocol.ts.
 *
 * Why it is this long: the worker's message loop, queue, idle wait and per-capability message
 * cases share one thread's state; issue 17 replaces the cases with one typed RPC.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { ErrorCode, makeError, TimeoutError, toWire, type WireError } from '../errors.js';
import { configureState } from '../capabilities/state/guest.js';
import { configureKernels } from '../capabilities/kernels/guest.js';
import { KernelLine } from '../capabilities/kernels/port.js';
import type { KernelsApi } from '../capabilities/kernels/api.js';
import type { StateApi } from '../capabilities/state/api.js';
import { RpcClient, unknownMessage } from '../rpc.js';
import { ownedBuffers } from '../transfer.js';
import { OutcomeLog } from '../outcome-log.js';
import { wake } from '../wake.js';
import { configureChain, type ChainBudget, type ChildCall } from '../capabilities/chain/guest.js';
import { configureComm } from '../capabilities/comm/guest.js';
import { configureWasi, sharedFileBudget } from '../capabilities/wasi/guest.js';
import { loadCapabilities } from '../capabilities/guest.js';
import { abortedError, Mailboxes } from './mailbox.js';
import * as abi from '../../guest/sdk/nuvola/abi.js';
import { setLockHolder } from '../../state/key-state.js';
import type { GuestContext } from '../capabilities/context.js';
import {
  Control,
  clockMicros,
  wallClock,
  type FromWorker,
  type FunctionSpec,
  type InvokeOutcome,
  type InvokeRequest,
  type ToWorker,
  type WorkerData,
  type WorkerLog,
  type InvokeSuccess,
} from '../protocol.js';
import { dropGlue } from './component.js';
import { wrapInterrupt } from './interrupt.js';
import { endSlice, startSlice } from './meter.js';
import { packUsage, USAGE_FIELDS, type Usage } from '../metering.js';
import { DirtyMap } from './dirty-map.js';
import { GuestInstance, instanceLimitError, restoredState, workerImports, type InstanceEnv, type SuspendHooks } from './instance.js';
import { startUpId, type DataSegment } from '../snapshot/layout.js';

const data = workerData as WorkerData;
setLockHolder(data.lockHolder);
const EMPTY = new Uint8Array(0);
const port = parentPort!;
const control = new Int32Array(data.control);
const outcomeLog = new OutcomeLog(data.outcomes);

/** A batch that has run this long sends the results it has so far before running more. */
const RESULT_FLUSH_MS = 1;
/** How long an idle worker blocks before giving its event loop a turn, in milliseconds. */
const IDLE_WAIT_MS = 50;
/** Spin before blocking only while wake-ups take longer than this on average, in microseconds. */
const SPIN_WHEN_WAKE_ABOVE_MICROS = 25;
/** Moving average of how long a notify takes to wake this worker, in microseconds. */
let wakeMicros = SPIN_WHEN_WAKE_ABOVE_MICROS;

/** A CPU hint that this thread is spinning (`Atomics.pause`, V8 13.3+). */
const pause = (Atomics as unknown as { pause: () => void }).pause;

interface FunctionEntry {
  spec: FunctionSpec;
  /** Warm instances, the most recently used last; each with when it went idle. */
  idle: { instance: GuestInstance; since: number }[];
  env: InstanceEnv;
  /** Idle instances a `prewarm` asked for. */
  prewarm: number;
  /** Memories of retired instances, reset to the snapshot, for the next restores. */
  spare: { memory: WebAssembly.Memory; since: number }[];
  /** The function's calls running now, in the whole runtime (FunctionSpec.concurrency). */
  running: Int32Array;
}

/**
 * Takes a slot under the function's maxConcurrency for a chained call run here; when none is
 * free the call goes through the pool, which queues it. The pool gives the slot back.
 */
function takeSlot(entry: FunctionEntry): boolean {
  const { limit } = entry.spec.concurrency;
  for (;;) {
    const running = Atomics.load(entry.running, 0);
    if (running >= limit) return false;
    if (Atomics.compareExchange(entry.running, 0, running, running + 1) === running) return true;
  }
}

/** An invocation whose `main` returned a promise: suspended in a host import, or about to settle. */
interface Suspended {
  instance: GuestInstance;
  settled: boolean;
  request: InvokeRequest;
  /** When the call started here ({@link performance.now}), for its usage. */
  began: number;
  /** The group and rank, for a rank of a group. */
  group?: { id: number; rank: number; fn: string };
}

const functions = new Map<string, FunctionEntry>();
const dirty = new DirtyMap();
/** Live instances in the whole runtime (every worker counts into it). */
const memoryCounts = new Int32Array(data.memoryCounts);
/** Spare memories on this worker. */
let sparesHere = 0;
/** When idle instances are next checked for expiry ({@link wallClock}). */
let nextExpiry = 0;
/** Requests to the capabilities' main-thread services (runtime/rpc.ts), answered by `reply` messages. */
const stateRpc = new RpcClient<StateApi>((id, request) =>
  port.postMessage({ type: 'call', id, capability: 'state', ...request } satisfies FromWorker),
);
// A kernel call's arrays are fresh copies of guest memory: moved to the main thread, not copied.
// (Only a registered kernel's CPU version runs there; the others go to the kernel thread.)
const kernelsRpc = new RpcClient<KernelsApi>((id, request) =>
  port.postMessage({ type: 'call', id, capability: 'kernels', ...request } satisfies FromWorker, ownedBuffers(request.args)),
);
const rpcs = { state: stateRpc, kernels: kernelsRpc };
/** Guests' kernel calls go straight to the kernel thread over a line of this worker's own. */
const kernelLine = new KernelLine(kernelsRpc);
/** Requests to the main thread and the kernel thread not answered yet. */
const awaitingReplies = (): number => stateRpc.pending + kernelsRpc.pending + kernelLine.pending;
configureState(stateRpc);
configureKernels(kernelLine);
/** Calls guests made with chain.call whose outcome has not arrived, by the worker's call id. */
const chains = new Map<number, PendingChild>();
let nextChain = 1;
const encoder = new TextEncoder();

/** A chained call as the worker tracks it: the callee, and the caller's budget its output counts into. */
type PendingChild = ChildCall & { resolve: () => void; fn: string; budget: ChainBudget };

/** Chained calls this worker runs itself, by their (negative) request id. */
const localChains = new Map<number, PendingChild>();
let nextLocal = 1;

configureChain((fn, input, parent, parentDeadline, budget) => {
  const callId = nextChain++;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const call: PendingChild = { done, settled: false, returnCode: 0, output: EMPTY, resolve, fn, budget };
  if (input.byteLength > data.maxInputBytes) {
    const error = `${ErrorCode.INPUT_TOO_LARGE}: input to '${fn}' is ${input.byteLength} bytes, above maxInputBytes=${data.maxInputBytes}`;
    settleChain(call, { error: { code: ErrorCode.INPUT_TOO_LARGE, message: error, details: {} } });
    return call;
  }
  // Run it here when nothing else waits on this worker: a call and its answer then never
  // leave the thread (the caller is suspended meanwhile, so the worker is free). Otherwise —
  // a fan-out's second call onwards — the pool spreads it over the workers.
  const entry = functions.get(fn);
  if (entry !== undefined && queueHead >= queue.length && takeSlot(entry)) {
    // Negative, and unique per worker incarnation (the lock holder number is), within an i32.
    const id = -((nextLocal++ % 4_000_000) * 512 + data.lockHolder);
    const timeoutMs = entry.spec.timeoutMs;
    // A callee gets no longer than its caller has left.
    const deadline = Math.min(wallClock() + timeoutMs, parentDeadline);
    const request: InvokeRequest = { id, fn, deadline, timeoutMs, parent, local: true };
    if (input.byteLength > 0) request.input = input;
    localChains.set(id, call);
    port.postMessage({
      type: 'chainLocal',
      id,
      fn,
      parent,
      deadline: request.deadline,
      timeoutMs,
      suspends: entry.spec.suspends,
    } satisfies FromWorker);
    queue.push(request);
    if (!processing) queueMicrotask(() => void processQueue());
    return call;
  }
  chains.set(callId, call);
  port.postMessage({ type: 'chain', callId, fn, input, parent } satisfies FromWorker, [input.buffer as ArrayBuffer]);
  return call;
});

function settleChain(call: PendingChild, outcome: { returnCode?: number; output?: Uint8Array; error?: WireError }): void {
  call.settled = true;
  const bytes = outcome.output?.byteLength ?? 0;
  const { budget } = call;
  if (outcome.error === undefined && bytes > 0 && budget.held + bytes > data.maxChainedOutputBytes) {
    // Dropped here, before the caller can hold it: the caller sees the call fail instead.
    outcome = {
      error: {
        code: ErrorCode.CHAIN_OUTPUT_LIMIT,
        message: `the output of '${call.fn}' (${bytes} bytes) would make '${budget.fn}' hold ${budget.held + bytes} bytes of chained outputs, above maxChainedOutputBytes=${data.maxChainedOutputBytes}; raise it in createRuntime(), or have callees return less (large results can go through state)`,
        details: { function: budget.fn, callee: call.fn, bytes, heldBytes: budget.held, maxChainedOutputBytes: data.maxChainedOutputBytes },
      },
    };
  } else if (outcome.error === undefined) {
    budget.held += bytes;
  }
  if (outcome.error !== undefined) {
    call.returnCode = abi.CHAIN_FAILED;
    const message = outcome.error.message.startsWith(outcome.error.code)
      ? outcome.error.message
      : `${outcome.error.code}: ${outcome.error.message}`;
    call.output = encoder.encode(message);
  } else {
    call.returnCode = outcome.returnCode ?? 0;
    call.output = outcome.output ?? EMPTY;
  }
  call.resolve();
}

const mailboxes = new Mailboxes();
/** Direct channels to the other workers (see the `peer` message). */
const peers = new Map<number, { port: MessagePort; control: Int32Array }>();
configureComm({
  send: (group, to, message) => {
    const target = group.workers[to]!;
    if (target === data.index) {
      // A waiting receive resumes in a promise reaction: the event loop must get a turn.
      needsEventLoop = true;
      mailboxes.deliver(group.id, to, group.rank, message);
      return;
    }
    const peer = peers.get(target);
    const comm = { type: 'comm', group: group.id, from: group.rank, to, data: message } as const;
    if (peer === undefined) {
      port.postMessage(comm satisfies FromWorker);
      return;
    }
    peer.port.postMessage(comm satisfies ToWorker);
    wake(peer.control);
  },
  receive: (group, rank, from) => mailboxes.receive(group, rank, from),
  maxMessageBytes: data.maxMessageBytes,
  maxQueuedMessageBytes: data.maxQueuedMessageBytes,
});

const suspended = new Map<number, Suspended>();
let results: InvokeOutcome[] = [];
/** The usage of each success in `results`, in order (packed into the batch at flush). */
let usages: Usage[] = [];
let logs: WorkerLog[] = [];
let flushScheduled = false;
let lastFlush = performance.now();
let idleScheduled = false;
/** Set when a message settled a promise whose reactions must run before the worker blocks. */
let needsEventLoop = false;

const hooks: SuspendHooks = {
  suspended(ctx: GuestContext) {
    endSlice(ctx.meter, ctx.invocationId, interrupt);
    // Only if it still names this call: when several suspended instances become ready in one
    // turn, their resume hooks all run before the first of them continues, so another call
    // may already be named here and must stay so (the pool stops a worker that spins only
    // through RUNNING).
    Atomics.compareExchange(control, Control.RUNNING, ctx.invocationId, 0);
  },
  resumed(ctx: GuestContext) {
    if (ctx.cancelled) {
      throw new TimeoutError(ErrorCode.TIMEOUT, `function '${ctx.fn}' was cancelled while suspended`, { function: ctx.fn });
    }
    startSlice(ctx.meter, ctx.invocationId, interrupt);
    Atomics.store(control, Control.RUNNING, ctx.invocationId);
  },
};

function flush(): void {
  flushScheduled = false;
  lastFlush = performance.now();
  if (results.length === 0 && logs.length === 0) return;
  const batch = results;
  const usage = new Float64Array(usages.length * USAGE_FIELDS.length);
  for (let i = 0; i < usages.length; i++) packUsage(usages[i]!, usage, i * USAGE_FIELDS.length);
  const message: FromWorker = { type: 'results', batch, usage, logs };
  results = [];
  usages = [];
  logs = [];
  const transfer: ArrayBuffer[] = [usage.buffer];
  for (const r of batch) if ('output' in r && r.output !== undefined) transfer.push(r.output.buffer as ArrayBuffer);
  port.postMessage(message, transfer);
  outcomeLog.clear();
}

/**
 * Records a call's outcome for the next batch, and in the outcome log until that batch is
 * posted (runtime/outcome-log.ts): if the worker is stopped meanwhile, the pool still answers
 * the call. An outcome the log has no room for is posted at once, with those before it.
 */
function finished(outcome: InvokeOutcome, usage?: Usage): void {
  const logged = outcomeLog.append(outcome, usage);
  if (!logged) flush();
  results.push(outcome);
  if (usage !== undefined) usages.push(usage);
  if (!logged && !outcomeLog.append(outcome, usage)) flush();
}

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

function fail(id: number, error: WireError): void {
  finished({ id, error });
  if (id < 0) answerLocal(id, { error });
}

/** Answers the caller of a chained call this worker ran itself (the pool learns of it from the results). */
function answerLocal(id: number, outcome: { returnCode?: number; output?: Uint8Array; error?: WireError }): void {
  const call = localChains.get(id);
  if (call === undefined) return;
  localChains.delete(id);
  // The caller resumes in a promise reaction: the event loop must get a turn.
  needsEventLoop = true;
  settleChain(call, outcome);
}

configureWasi(sharedFileBudget(new Int32Array(data.wasiFileCounts), data.lockHolder));
await loadCapabilities();
const host = workerImports(hooks);
const interrupt = wrapInterrupt(data.interrupt);

function newEnv(fn: string): InstanceEnv {
  const log = (message: string): void => {
    logs.push({ fn, message });
    scheduleFlush();
  };
  return {
    limits: { maxOutputBytes: data.maxOutputBytes, maxLogBytes: data.maxLogBytes },
    dirty,
    log,
    host,
    admit,
    onDispose: () => {
      Atomics.sub(memoryCounts, data.lockHolder, 1);
    },
    interrupt,
  };
}

/**
 * Counts a new instance in, or throws E_INSTANCE_LIMIT. At the limit, this worker's idle
 * instances (of any function) are released first to make room.
 */
function admit(fn: string): void {
  for (let attempt = 0; ; attempt++) {
    Atomics.add(memoryCounts, data.lockHolder, 1);
    // Plain reads: the sum only needs to be about right (two workers at the limit at once
    // may both back off).
    let total = 0;
    for (let i = 0; i < memoryCounts.length; i++) total += memoryCounts[i]!;
    if (total <= data.maxInstances) break;
    Atomics.sub(memoryCounts, data.lockHolder, 1);
    if (attempt > 0 || releaseIdle(() => true) === 0) {
      throw instanceLimitError(fn, `the runtime already holds maxInstances=${data.maxInstances} live instances`);
    }
  }
}

/** Drops spare memories and disposes idle instances for which `expired(since)` holds; returns how many. */
function releaseIdle(expired: (since: number) => boolean): number {
  let released = 0;
  for (const entry of functions.values()) {
    // Oldest first: both lists are in the order things went idle.
    let n = 0;
    while (n < entry.spare.length && expired(entry.spare[n]!.since)) n++;
    entry.spare.splice(0, n);
    for (let i = 0; i < n; i++) dropSpare(entry);
    released += n;
    n = 0;
    while (n < entry.idle.length && expired(entry.idle[n]!.since)) n++;
    for (const { instance } of entry.idle.splice(0, n)) instance.dispose();
    released += n;
  }
  return released;
}

/** Accounts for a spare memory of `entry` let go (the garbage collector frees it). */
function dropSpare(entry: FunctionEntry): void {
  Atomics.store(control, Control.SPARES, --sparesHere);
  entry.env.onDispose();
}

/** Scale to zero: releases instances idle for longer than idleTimeoutMs. */
function expireIdle(): void {
  const now = wallClock();
  if (now < nextExpiry) return;
  nextExpiry = now + Math.min(1000, data.idleTimeoutMs / 4);
  const cutoff = now - data.idleTimeoutMs;
  releaseIdle((since) => since <= cutoff);
}

function newInstance(entry: FunctionEntry): GuestInstance {
  const spare = entry.spare.pop();
  if (spare !== undefined) Atomics.store(control, Control.SPARES, --sparesHere);
  return GuestInstance.restore(entry.spec, entry.env, spare?.memory);
}

function release(entry: FunctionEntry, instance: GuestInstance): void {
  if (functions.get(entry.spec.name) === entry && entry.idle.length < data.maxIdleInstances) {
    entry.idle.push({ instance, since: wallClock() });
  } else {
    instance.dispose();
  }
}

function complete(
  request: InvokeRequest,
  entry: FunctionEntry,
  instance: GuestInstance,
  returned: unknown,
  cold: boolean,
  began: number,
): void {
  if (typeof returned !== 'number') {
    instance.discard();
    // module-check rejects a `main` that is not `() -> i32`; this guards modules it could not parse.
    fail(request.id, makeError(ErrorCode.GUEST_TRAP, `function '${request.fn}': main returned ${typeof returned}, not an i32`).toWire());
    return;
  }
  const usage = usageOf(request, instance);
  const output = instance.finish();
  usage.bytesOut = output.byteLength;
  const result: InvokeSuccess = { id: request.id, returnCode: returned, cold, workerMs: 0 };
  if (request.local) {
    // The caller gets the output; the pool only needs the outcome (for stats and traces).
    answerLocal(request.id, { returnCode: returned, output });
  } else if (output.byteLength > 0) {
    result.output = output;
  }
  retire(entry, instance, true);
  // Results leave in the next flush, after the reset: the reset counts as the call's work.
  result.workerMs = performance.now() - began;
  usage.wallMs = result.workerMs;
  usage.gbSeconds = (usage.peakMemoryBytes / 2 ** 30) * (usage.wallMs / 1000);
  finished(result, usage);
}

/**
 * What the call `instance` runs has used so far, its running slice ended (bytesOut and the
 * times are set by the caller where they differ).
 */
function usageOf(request: InvokeRequest, instance: GuestInstance): Usage {
  const m = instance.ctx.meter;
  endSlice(m, instance.ctx.invocationId, interrupt);
  const peakMemoryBytes = instance.ctx.memory?.buffer.byteLength ?? 0;
  const usage: Usage = {
    wallMs: 0,
    cpuMs: m.cpuMicros / 1000,
    peakMemoryBytes,
    bytesIn: request.input?.byteLength ?? 0,
    bytesOut: 0,
    stateBytesRead: m.stateBytesRead,
    stateBytesWritten: m.stateBytesWritten,
    statePushedBytes: m.statePushedBytes,
    kernelMs: m.kernelMs,
    gbSeconds: 0,
    energyJoules: undefined,
  };
  const fuel = instance.fuelUsed();
  if (fuel !== undefined) usage.fuel = fuel;
  return usage;
}

/** `error` of a call that ran on `instance`, with what it used in `details.usage`. */
function withUsage(error: WireError, request: InvokeRequest, instance: GuestInstance, began: number): WireError {
  const usage = usageOf(request, instance);
  usage.wallMs = performance.now() - began;
  usage.gbSeconds = (usage.peakMemoryBytes / 2 ** 30) * (usage.wallMs / 1000);
  return { ...error, details: { ...error.details, usage } };
}

/**
 * Whether an instance may be reset and reused after its call threw `err`. Not after the call
 * stack ran out: every write is marked before it happens, but an instance that failed in an
 * unusual place is cheap to replace.
 */
function reusableAfter(err: unknown, instance: GuestInstance): boolean {
  // jco's glue keeps per-call bookkeeping (its current task) that a trap leaves half done.
  return !(err instanceof RangeError) && instance.spec.abi !== 'component';
}

/**
 * Where an instance goes after a call: back to the idle instances (reset to the snapshot,
 * unless the function keeps state, and even after a failed call: a reset undoes whatever it
 * did); else its memory, reset, to the spare memories; else away. An instance of a function
 * unregistered meanwhile is not reset: it is not used again.
 */
function retire(entry: FunctionEntry, instance: GuestInstance, ok: boolean, reusable = true): void {
  if (!ok) instance.failed();
  if (!reusable) return void instance.dispose();
  const now = wallClock();
  if (functions.get(entry.spec.name) === entry) {
    const roomIdle = entry.idle.length < data.maxIdleInstances;
    if (entry.spec.reuse === 'keep') {
      if (ok && roomIdle) return void entry.idle.push({ instance, since: now });
    } else {
      if (roomIdle && !instance.ctx.cancelled && instance.reset()) return void entry.idle.push({ instance, since: now });
      if (entry.spare.length < data.memoryPoolSize) {
        const memory = instance.recycle();
        if (memory !== undefined) {
          entry.spare.push({ memory, since: now });
          Atomics.store(control, Control.SPARES, ++sparesHere);
          return;
        }
      }
    }
  }
  instance.dispose();
}

/**
 * Starts one invocation. Returns, for a call that went through JSPI, a promise that settles
 * when its outcome is recorded, and whether the guest is suspended right now.
 */
function run(request: InvokeRequest): { settled: Promise<void>; suspendedNow: boolean } | undefined {
  const entry = functions.get(request.fn);
  if (entry === undefined || wallClock() > request.deadline || cancelledEarly.delete(request.id)) {
    if (!request.local) Atomics.add(control, Control.STARTED, 1);
    const error =
      entry === undefined
        ? makeError(ErrorCode.UNKNOWN_FUNCTION, `no function named '${request.fn}' is registered`, { function: request.fn })
        : makeError(ErrorCode.TIMEOUT, `function '${request.fn}' waited longer than timeoutMs=${request.timeoutMs} in its worker's queue`, {
            function: request.fn,
            timeoutMs: request.timeoutMs,
          });
    fail(request.id, error.toWire());
    return;
  }
  // RUNNING before STARTED: the pool treats a call named in RUNNING as started, so it never
  // sees this call as both begun and off the CPU while guest code (a cold start's start-up
  // code and init(), then main) runs.
  Atomics.store(control, Control.RUNNING, request.id);
  if (!request.local) Atomics.add(control, Control.STARTED, 1);
  const began = performance.now();
  let instance = entry.idle.pop()?.instance;
  const cold = instance === undefined;
  try {
    instance ??= newInstance(entry);
  } catch (err) {
    Atomics.store(control, Control.RUNNING, 0);
    fail(request.id, toWire(err, ErrorCode.INSTANTIATE_FAILED));
    return;
  }
  const inst = instance;
  let returned: number | Promise<number>;
  const suspensionsBefore = inst.ctx.suspensions;
  try {
    returned = inst.call(request.input ?? EMPTY, request.id, request.deadline, request.group);
  } catch (err) {
    endSlice(inst.ctx.meter, request.id, interrupt);
    fail(request.id, withUsage(inst.classify(err).toWire(), request, inst, began));
    retire(entry, inst, false, reusableAfter(err, inst));
    return;
  } finally {
    Atomics.store(control, Control.RUNNING, 0);
  }
  // Returned or suspended: its slice is over either way.
  endSlice(inst.ctx.meter, request.id, interrupt);
  if (!(returned instanceof Promise)) {
    complete(request, entry, inst, returned, cold, began);
    return;
  }
  const record: Suspended = {
    instance: inst,
    settled: false,
    request,
    began,
    ...(request.group ? { group: { id: request.group.id, rank: request.group.rank, fn: request.fn } } : {}),
  };
  suspended.set(request.id, record);
  const settled = returned
    .then(
      (code) => {
        if (!record.settled) complete(request, entry, inst, code, cold, began);
      },
      (err: unknown) => {
        if (record.settled) return;
        endSlice(inst.ctx.meter, request.id, interrupt);
        fail(request.id, withUsage(inst.classify(err).toWire(), request, inst, began));
        retire(entry, inst, false, reusableAfter(err, inst));
      },
    )
    .finally(() => {
      // The guest has left Wasm for good, whatever way it settled.
      if (Atomics.load(control, Control.RUNNING) === request.id) Atomics.store(control, Control.RUNNING, 0);
      record.settled = true;
      suspended.delete(request.id);
      scheduleFlush();
      scheduleIdle();
    });
  return { settled, suspendedNow: inst.ctx.suspensions !== suspensionsBefore };
}

const queue: InvokeRequest[] = [];
/** Ids cancelled while still queued here. */
const cancelledEarly = new Set<number>();
let queueHead = 0;
/** Control.CANCELS as last read: when it moved, cancels are waiting among the messages. */
let cancelsSeen = 0;
let processing = false;

/**
 * Runs queued invocations in the order they arrived. A JSPI call that returned without
 * suspending still settles only in a microtask; waiting that one microtask before the next
 * call lets the next call reuse the same warm instance instead of instantiating another.
 */
async function processQueue(): Promise<void> {
  if (processing) return;
  processing = true;
  try {
    while (queueHead < queue.length) {
      // A cancel for a call further down the queue lands before that call starts.
      const cancels = Atomics.load(control, Control.CANCELS);
      if (cancels !== cancelsSeen) {
        cancelsSeen = cancels;
        drain();
      }
      const request = queue[queueHead++]!;
      const pending = run(request);
      if (pending !== undefined && !pending.suspendedNow) await pending.settled;
      // Keep batching cheap calls, but do not hold finished results behind slow ones.
      if (results.length > 0 && performance.now() - lastFlush >= RESULT_FLUSH_MS) flush();
    }
    queue.length = 0;
    queueHead = 0;
  } finally {
    processing = false;
  }
  expireIdle();
  flush();
  scheduleIdle();
}

function register(spec: FunctionSpec, seq: number): void {
  const previous = functions.get(spec.name);
  if (previous) unregister(spec.name);
  const entry: FunctionEntry = {
    spec,
    idle: [],
    env: { ...newEnv(spec.name), restored: restoredState(spec, dirty) },
    prewarm: 0,
    spare: [],
    running: new Int32Array(spec.concurrency.running),
  };
  functions.set(spec.name, entry);
  // A replacement worker learns already registered functions lazily: its first call
  // restores an instance under that call's own timeout.
  if (seq === 0) return;
  let reply: FromWorker = { type: 'registered', seq };
  Atomics.store(control, Control.REGISTERING, seq);
  try {
    // One instance up front proves the snapshot restores here and leaves it warm.
    release(entry, newInstance(entry));
  } catch (err) {
    reply = { type: 'registered', seq, error: toWire(err, ErrorCode.INSTANTIATE_FAILED) };
  } finally {
    Atomics.store(control, Control.REGISTERING, 0);
  }
  flush();
  port.postMessage(reply);
}

/** Runs start-up code and init() once, under Control.REGISTERING, and answers with the snapshot. */
function boot(spec: FunctionSpec, segments: DataSegment[], seq: number): void {
  let reply: FromWorker;
  Atomics.store(control, Control.REGISTERING, seq);
  try {
    const instance = GuestInstance.boot(spec, segments, newEnv(spec.name), startUpId(seq));
    const snapshot = instance.capture();
    instance.dispose();
    reply = { type: 'booted', seq, snapshot };
  } catch (err) {
    reply = { type: 'booted', seq, error: toWire(err, ErrorCode.INSTANTIATE_FAILED) };
  } finally {
    Atomics.store(control, Control.REGISTERING, 0);
  }
  flush();
  port.postMessage(reply);
}

function unregister(name: string): void {
  const entry = functions.get(name);
  if (entry === undefined) return;
  functions.delete(name);
  for (const { instance } of entry.idle) instance.dispose();
  entry.idle.length = 0;
  const spares = entry.spare.splice(0).length;
  for (let i = 0; i < spares; i++) dropSpare(entry);
  const { globalsArea } = entry.env.restored!;
  dirty.release(globalsArea, Math.max(8, 8 * entry.spec.layout.globalTypes.length));
  const hash = entry.spec.component?.hash;
  if (hash !== undefined && ![...functions.values()].some((f) => f.spec.component?.hash === hash)) dropGlue(hash);
}

/** Restores one instance for a pending `prewarm`; returns false when none is pending. */
function prewarmOne(): boolean {
  for (const entry of functions.values()) {
    if (entry.idle.length >= Math.min(entry.prewarm, data.maxIdleInstances)) {
      entry.prewarm = 0;
      continue;
    }
    try {
      release(entry, newInstance(entry));
    } catch (err) {
      entry.prewarm = 0;
      logs.push({ fn: entry.spec.name, message: `nuvola: prewarming failed: ${(err as Error).message}` });
    }
    return true;
  }
  return false;
}

function handle(message: ToWorker): void {
  switch (message.type) {
    case 'invoke':
      for (const request of message.batch) queue.push(request);
      void processQueue();
      break;
    case 'register':
      register(message.spec, message.seq);
      break;
    case 'boot':
      boot(message.spec, message.segments, message.seq);
      break;
    case 'prewarm': {
      const entry = functions.get(message.fn);
      if (entry) entry.prewarm = Math.max(entry.prewarm, message.count);
      break;
    }
    case 'unregister':
      unregister(message.name);
      break;
    case 'comm':
      needsEventLoop = true;
      mailboxes.deliver(message.group, message.to, message.from, message.data);
      break;
    case 'commAbort': {
      needsEventLoop = true;
      mailboxes.abort(message.group, message.error);
      // Ranks of the group suspended in something other than a receive (a sleep, a lock): the
      // pool cancels those it saw off the CPU; one that was on the CPU then is stopped here.
      for (const [id, record] of suspended) {
        if (record.settled || record.group?.id !== message.group) continue;
        record.settled = true;
        suspended.delete(id);
        record.instance.cancel();
        fail(id, abortedError(message.error, record.group.rank, record.group.fn).toWire());
      }
      scheduleFlush();
      break;
    }
    case 'commEnd':
      mailboxes.end(message.group);
      break;
    case 'peer': {
      peers.get(message.index)?.port.close();
      const peerPort = message.port;
      peerPort.on('message', (m: ToWorker) => {
        handle(m);
        scheduleIdle();
      });
      peerPort.unref();
      peers.set(message.index, { port: peerPort, control: new Int32Array(message.control) });
      break;
    }
    case 'chainResult': {
      needsEventLoop = true;
      const call = chains.get(message.callId);
      chains.delete(message.callId);
      if (call) settleChain(call, message);
      break;
    }
    case 'reply':
      needsEventLoop = true;
      rpcs[message.capability].settle(message);
      break;
    case 'cancel': {
      needsEventLoop = true;
      const record = suspended.get(message.id);
      if (record && !record.settled) {
        record.settled = true;
        suspended.delete(message.id);
        const error = withUsage(message.error, record.request, record.instance, record.began);
        record.instance.cancel();
        fail(message.id, error);
        scheduleFlush();
      } else if (queue.slice(queueHead).some((r) => r.id === message.id)) {
        // Not started yet: drop it when it comes up.
        cancelledEarly.add(message.id);
      }
      break;
    }
    default:
      unknownMessage(message);
  }
}

function drain(): boolean {
  let any = false;
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    handle(m.message as ToWorker);
    any = true;
  }
  for (const peer of peers.values()) {
    for (let m = receiveMessageOnPort(peer.port); m !== undefined; m = receiveMessageOnPort(peer.port)) {
      handle(m.message as ToWorker);
      any = true;
    }
  }
  return any;
}

/**
 * While nothing is suspended, wait for work on Control.SIGNAL instead of in the event loop:
 * spin up to `spinMicros`, then block in `Atomics.wait`. Return to the event loop as soon as
 * an invocation suspends (its host call needs it), and every IDLE_WAIT_MS anyway.
 */
function idle(): void {
  idleScheduled = false;
  for (;;) {
    drain();
    // Prewarming is done only when no call waits.
    if (!processing && queueHead >= queue.length && prewarmOne()) continue;
    expireIdle();
    flush();
    // Promise reactions (a state reply, a deferred lock release) run only in the event loop.
    if (processing || awaitingReplies() > 0 || needsEventLoop) {
      const answered = needsEventLoop;
      needsEventLoop = false;
      // Come back to watch for answers once the reactions (resumed instances) have run.
      if (answered && suspended.size > 0 && !processing) spinSoon();
      return;
    }
    if (suspended.size > 0) {
      // Instances wait on host calls (a chained call, a message, a state reply) answered by
      // messages that often come within a round trip: watch for them briefly instead of
      // leaving them to the event loop's slower wake-up; then the event loop takes over.
      if (wakeMicros > SPIN_WHEN_WAKE_ABOVE_MICROS) {
        const seen = Atomics.load(control, Control.SIGNAL);
        const spinUntil = performance.now() + data.spinMicros / 1000;
        while (Atomics.load(control, Control.SIGNAL) === seen && performance.now() < spinUntil) pause();
        if (Atomics.load(control, Control.SIGNAL) !== seen && drain()) {
          needsEventLoop = false;
          spinSoon();
        }
      }
      return;
    }
    const seen = Atomics.load(control, Control.SIGNAL);
    Atomics.store(control, Control.IDLE, 1);
    // A message posted before IDLE was visible is already in the port: take it now.
    if (drain()) {
      Atomics.store(control, Control.IDLE, 0);
      continue;
    }
    // Spin briefly first when wake-ups are slow: a caller awaiting one result usually sends
    // the next call within a main-thread round trip, and catching it here saves the wake-up.
    // When wake-ups are fast (an idle machine), spinning only takes CPU from the main thread.
    if (wakeMicros > SPIN_WHEN_WAKE_ABOVE_MICROS) {
      const spinUntil = performance.now() + data.spinMicros / 1000;
      while (Atomics.load(control, Control.SIGNAL) === seen && performance.now() < spinUntil) pause();
    }
    if (Atomics.load(control, Control.SIGNAL) !== seen) {
      Atomics.store(control, Control.IDLE, 0);
      continue;
    }
    const woke = Atomics.wait(control, Control.SIGNAL, seen, IDLE_WAIT_MS);
    Atomics.store(control, Control.IDLE, 0);
    if (woke === 'timed-out') break;
    if (woke === 'ok') {
      const took = (clockMicros() - Atomics.load(control, Control.NOTIFIED_AT)) | 0;
      if (took >= 0 && took < 1_000_000) wakeMicros += (took - wakeMicros) / 8;
    }
  }
  scheduleIdle();
}

/** Runs idle() again after the event loop's pending reactions, even with instances suspended. */
function spinSoon(): void {
  if (idleScheduled) return;
  idleScheduled = true;
  setImmediate(idle);
}

function scheduleIdle(): void {
  if (idleScheduled || suspended.size > 0 || processing || awaitingReplies() > 0) return;
  idleScheduled = true;
  setImmediate(idle);
}

port.on('message', (message: ToWorker) => {
  handle(message);
  scheduleIdle();
});
port.postMessage({ type: 'ready' } satisfies FromWorker);
scheduleIdle();
