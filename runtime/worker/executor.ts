/**
 * Worker thread. Runs the calls queued on this worker, in the order they arrived: one instance
 * per call (warm from the {@link InstanceCache}, or restored), JSPI suspension and resumption,
 * cancellation, what each call used; and sends the outcomes to the pool in batches, logged in
 * the outcome log until posted.
 */
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, makeError, TimeoutError, toWire, type WireError } from '../errors.js';
import type { GuestContext } from '../capabilities/context.js';
import type { OutcomeLog } from '../outcome-log.js';
import { packUsage, USAGE_FIELDS, type Usage } from '../metering.js';
import {
  Control,
  wallClock,
  type FromWorker,
  type InvokeOutcome,
  type InvokeRequest,
  type InvokeSuccess,
  type WorkerLog,
} from '../protocol.js';
import { abortedError } from './mailbox.js';
import { endSlice, startSlice } from './meter.js';
import type { Interrupt } from './interrupt.js';
import { deadlineSlot, publishDeadline, remindWatchdog, type DeadlineSlot, type WatchCell } from './deadline-watch.js';
import type { GuestInstance, SuspendHooks } from './instance.js';
import type { FunctionEntry, InstanceCache } from './instance-cache.js';
import type { ChainCalls } from './chains.js';

const EMPTY = new Uint8Array(0);
/** A batch that has run this long sends the results it has so far before running more. */
const RESULT_FLUSH_MS = 1;

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

export interface ExecutorDeps {
  port: MessagePort;
  control: Int32Array;
  outcomeLog: OutcomeLog;
  interrupt: Interrupt;
  /** The deadline watchdog's cell. */
  watch: WatchCell;
  cache: InstanceCache;
  chains: ChainCalls;
  /** Handles every message waiting on the ports (cancels among them); returns whether there was one. */
  drain: () => boolean;
  /** Lets the idle loop run once the worker has nothing to do. */
  scheduleIdle: () => void;
}

export class Executor {
  /** Calls suspended in a host import, by request id. */
  readonly suspended = new Map<number, Suspended>();
  private readonly queue: InvokeRequest[] = [];
  private queueHead = 0;
  /** Ids cancelled while still queued here. */
  private readonly cancelledEarly = new Set<number>();
  /** Control.CANCELS as last read: when it moved, cancels are waiting among the messages. */
  private cancelsSeen = 0;
  private running = false;
  private results: InvokeOutcome[] = [];
  /** The usage of each success in `results`, in order (packed into the batch at flush). */
  private usages: Usage[] = [];
  private logs: WorkerLog[] = [];
  private flushScheduled = false;
  /**
   * Since when the results held began to wait: the last flush, or the start of the run when none
   * were held then ({@link RESULT_FLUSH_MS} is counted from there).
   */
  private lastFlush = performance.now();

  /** Hooks the instances call as a call suspends in a host import and resumes. */
  readonly hooks: SuspendHooks;
  /** Where the running call's deadline is published for the watchdog. */
  private readonly published: DeadlineSlot;

  constructor(private readonly deps: ExecutorDeps) {
    const { control, interrupt, cache } = deps;
    const published = deadlineSlot(interrupt);
    this.published = published;
    this.hooks = {
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
        const deadline = cache.get(ctx.fn)?.spec.layout.interruptible === true ? ctx.deadline : Infinity;
        publishDeadline(published, ctx.invocationId, deadline);
        Atomics.store(control, Control.RUNNING, ctx.invocationId);
        remindWatchdog(deps.watch, deadline);
      },
    };
  }

  /** Whether a batch of calls is being run now. */
  get processing(): boolean {
    return this.running;
  }

  /** Whether calls wait in the queue. */
  get queued(): boolean {
    return this.queueHead < this.queue.length;
  }

  /** Queues calls and runs them, unless a batch is running already (it takes them). */
  enqueue(requests: Iterable<InvokeRequest>): void {
    for (const request of requests) this.queue.push(request);
    void this.processQueue();
  }

  /** Queues a call that will run after the current one, in a microtask when nothing runs. */
  enqueueSoon(request: InvokeRequest): void {
    this.queue.push(request);
    if (!this.running) queueMicrotask(() => void this.processQueue());
  }

  /** A guest's log line, sent with the next batch. */
  log(fn: string, message: string): void {
    this.logs.push({ fn, message });
    this.scheduleFlush();
  }

  /** The pool cancels call `id`: stops it if suspended, drops it when it comes up if still queued. */
  cancel(id: number, error: WireError): void {
    const record = this.suspended.get(id);
    if (record && !record.settled) {
      record.settled = true;
      this.suspended.delete(id);
      const withIt = this.withUsage(error, record.request, record.instance, record.began);
      record.instance.cancel();
      this.fail(id, withIt);
      this.scheduleFlush();
    } else if (this.queue.slice(this.queueHead).some((r) => r.id === id)) {
      // Not started yet: drop it when it comes up.
      this.cancelledEarly.add(id);
    }
  }

  /**
   * Group `group` was aborted. Ranks of the group suspended in something other than a receive (a
   * sleep, a lock): the pool cancels those it saw off the CPU; one that was on the CPU then is
   * stopped here.
   */
  abortGroup(group: number, error: WireError): void {
    for (const [id, record] of this.suspended) {
      if (record.settled || record.group?.id !== group) continue;
      record.settled = true;
      this.suspended.delete(id);
      record.instance.cancel();
      this.fail(id, abortedError(error, record.group.rank, record.group.fn).toWire());
    }
    this.scheduleFlush();
  }

  flush = (): void => {
    this.flushScheduled = false;
    this.lastFlush = performance.now();
    if (this.results.length === 0 && this.logs.length === 0) return;
    const batch = this.results;
    const { usages, logs } = this;
    const usage = new Float64Array(usages.length * USAGE_FIELDS.length);
    for (let i = 0; i < usages.length; i++) packUsage(usages[i]!, usage, i * USAGE_FIELDS.length);
    const message: FromWorker = { type: 'results', batch, usage, logs };
    this.results = [];
    this.usages = [];
    this.logs = [];
    const transfer: ArrayBuffer[] = [usage.buffer];
    for (const r of batch) if ('output' in r && r.output !== undefined) transfer.push(r.output.buffer as ArrayBuffer);
    this.deps.port.postMessage(message, transfer);
    this.deps.outcomeLog.clear();
  };

  /**
   * Records a call's outcome for the next batch, and in the outcome log until that batch is
   * posted (runtime/outcome-log.ts): if the worker is stopped meanwhile, the pool still answers
   * the call. An outcome the log has no room for is posted at once, with those before it.
   */
  private finished(outcome: InvokeOutcome, usage?: Usage): void {
    const { outcomeLog } = this.deps;
    const logged = outcomeLog.append(outcome, usage);
    if (!logged) this.flush();
    this.results.push(outcome);
    if (usage !== undefined) this.usages.push(usage);
    if (!logged && !outcomeLog.append(outcome, usage)) this.flush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private fail(id: number, error: WireError): void {
    this.finished({ id, error });
    if (id < 0) this.deps.chains.answerLocal(id, { error });
  }

  /**
   * Runs queued invocations in the order they arrived. A JSPI call that returned without
   * suspending still settles only in a microtask; waiting that one microtask before the next
   * call lets the next call reuse the same warm instance instead of instantiating another.
   */
  private async processQueue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    // Time spent idle before this run is no reason to send its first result alone (one
    // message per call, which slowed the main thread, which left workers idle longer).
    if (this.results.length === 0) this.lastFlush = performance.now();
    const { control } = this.deps;
    try {
      while (this.queueHead < this.queue.length) {
        // A cancel for a call further down the queue lands before that call starts.
        const cancels = Atomics.load(control, Control.CANCELS);
        if (cancels !== this.cancelsSeen) {
          this.cancelsSeen = cancels;
          this.deps.drain();
        }
        const request = this.queue[this.queueHead++]!;
        const pending = this.run(request);
        if (pending !== undefined && !pending.suspendedNow) await pending.settled;
        // Keep batching cheap calls, but do not hold finished results behind slow ones.
        if (this.results.length > 0 && performance.now() - this.lastFlush >= RESULT_FLUSH_MS) this.flush();
      }
      this.queue.length = 0;
      this.queueHead = 0;
    } finally {
      this.running = false;
    }
    this.deps.cache.expireIdle();
    this.flush();
    this.deps.scheduleIdle();
  }

  /**
   * Starts one invocation. Returns, for a call that went through JSPI, a promise that settles
   * when its outcome is recorded, and whether the guest is suspended right now.
   */
  private run(request: InvokeRequest): { settled: Promise<void>; suspendedNow: boolean } | undefined {
    const { control, cache, interrupt } = this.deps;
    const entry = cache.get(request.fn);
    if (entry === undefined || wallClock() > request.deadline || this.cancelledEarly.delete(request.id)) {
      if (!request.local) Atomics.add(control, Control.STARTED, 1);
      const error =
        entry === undefined
          ? makeError(ErrorCode.UNKNOWN_FUNCTION, `no function named '${request.fn}' is registered`, { function: request.fn })
          : makeError(
              ErrorCode.TIMEOUT,
              `function '${request.fn}' waited longer than timeoutMs=${request.timeoutMs} in its worker's queue`,
              {
                function: request.fn,
                timeoutMs: request.timeoutMs,
              },
            );
      this.fail(request.id, error.toWire());
      return;
    }
    // RUNNING before STARTED: the pool treats a call named in RUNNING as started, so it never
    // sees this call as both begun and off the CPU while guest code (a cold start's start-up
    // code and init(), then main) runs.
    // The deadline watchdog (deadline-watch.ts) interrupts it there, if its code has checks.
    const deadline = entry.spec.layout.interruptible ? request.deadline : Infinity;
    publishDeadline(this.published, request.id, deadline);
    Atomics.store(control, Control.RUNNING, request.id);
    remindWatchdog(this.deps.watch, deadline);
    if (!request.local) Atomics.add(control, Control.STARTED, 1);
    const began = performance.now();
    let instance = cache.takeIdle(entry);
    const cold = instance === undefined;
    try {
      instance ??= cache.newInstance(entry);
    } catch (err) {
      Atomics.store(control, Control.RUNNING, 0);
      this.fail(request.id, toWire(err, ErrorCode.INSTANTIATE_FAILED));
      return;
    }
    const inst = instance;
    let returned: number | Promise<number>;
    const suspensionsBefore = inst.ctx.suspensions;
    try {
      returned = inst.call(request.input ?? EMPTY, request.id, request.deadline, request.group);
    } catch (err) {
      endSlice(inst.ctx.meter, request.id, interrupt);
      this.fail(request.id, this.withUsage(inst.classify(err).toWire(), request, inst, began));
      cache.retire(entry, inst, false, reusableAfter(err, inst));
      return;
    } finally {
      Atomics.store(control, Control.RUNNING, 0);
    }
    // Returned or suspended: its slice is over either way.
    endSlice(inst.ctx.meter, request.id, interrupt);
    if (!(returned instanceof Promise)) {
      this.complete(request, entry, inst, returned, cold, began);
      return;
    }
    const record: Suspended = {
      instance: inst,
      settled: false,
      request,
      began,
      ...(request.group ? { group: { id: request.group.id, rank: request.group.rank, fn: request.fn } } : {}),
    };
    this.suspended.set(request.id, record);
    const settled = returned
      .then(
        (code) => {
          if (!record.settled) this.complete(request, entry, inst, code, cold, began);
        },
        (err: unknown) => {
          if (record.settled) return;
          endSlice(inst.ctx.meter, request.id, interrupt);
          this.fail(request.id, this.withUsage(inst.classify(err).toWire(), request, inst, began));
          cache.retire(entry, inst, false, reusableAfter(err, inst));
        },
      )
      .finally(() => {
        // The guest has left Wasm for good, whatever way it settled.
        if (Atomics.load(control, Control.RUNNING) === request.id) Atomics.store(control, Control.RUNNING, 0);
        record.settled = true;
        this.suspended.delete(request.id);
        this.scheduleFlush();
        this.deps.scheduleIdle();
      });
    return { settled, suspendedNow: inst.ctx.suspensions !== suspensionsBefore };
  }

  private complete(
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
      this.fail(
        request.id,
        makeError(ErrorCode.GUEST_TRAP, `function '${request.fn}': main returned ${typeof returned}, not an i32`).toWire(),
      );
      return;
    }
    const usage = this.usageOf(request, instance);
    const output = instance.finish();
    usage.bytesOut = output.byteLength;
    const result: InvokeSuccess = { id: request.id, returnCode: returned, cold, workerMs: 0 };
    if (request.local) {
      // The caller gets the output; the pool only needs the outcome (for stats and traces).
      this.deps.chains.answerLocal(request.id, { returnCode: returned, output });
    } else if (output.byteLength > 0) {
      result.output = output;
    }
    this.deps.cache.retire(entry, instance, true);
    // Results leave in the next flush, after the reset: the reset counts as the call's work.
    result.workerMs = performance.now() - began;
    usage.wallMs = result.workerMs;
    usage.gbSeconds = (usage.peakMemoryBytes / 2 ** 30) * (usage.wallMs / 1000);
    this.finished(result, usage);
  }

  /**
   * What the call `instance` runs has used so far, its running slice ended (bytesOut and the
   * times are set by the caller where they differ).
   */
  private usageOf(request: InvokeRequest, instance: GuestInstance): Usage {
    const m = instance.ctx.meter;
    endSlice(m, instance.ctx.invocationId, this.deps.interrupt);
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
  private withUsage(error: WireError, request: InvokeRequest, instance: GuestInstance, began: number): WireError {
    const usage = this.usageOf(request, instance);
    usage.wallMs = performance.now() - began;
    usage.gbSeconds = (usage.peakMemoryBytes / 2 ** 30) * (usage.wallMs / 1000);
    return { ...error, details: { ...error.details, usage } };
  }
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
