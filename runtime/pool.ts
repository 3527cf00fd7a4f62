/**
 * Main thread. The worker pool: starts workers, ships compiled modules to them, dispatches
 * invocations in batches to the least-loaded worker, enforces timeouts, and replaces a worker
 * that dies or has to be stopped — failing only the invocations that had started on it and
 * re-dispatching those that had not.
 *
 * `Pool` is the facade runtime.ts and the cluster use; it holds a call's life (invoke:
 * tracing, the caller's AbortSignal, admission under maxConcurrency, the answer) and composes
 * the parts, each acting on the pool's shared state through a narrow interface (`PoolCore`
 * in pool-types.ts and a host interface per part): the workers' lives (pool-workers.ts),
 * dispatch (pool-dispatch.ts), registration (pool-registration.ts), deadlines
 * (pool-deadlines.ts), groups (pool-groups.ts), a worker's requests (pool-requests.ts) and
 * the figures (pool-stats.ts). Its public members beyond that surface are those interfaces.
 *
 * Why it is this long: a call's life — made, admitted, dispatched, answered, aborted,
 * counted and traced — is one piece read top to bottom (`invoke`, `settle`, `fail`, `abort`),
 * plus the one-line delegations the parts' interfaces need.
 */
import type { TransferListItem } from 'node:worker_threads';
import { ErrorCode, fromWire, makeError, NuvolaError, type WireError } from './errors.js';
import { unknownMessage } from './rpc.js';
import { Admission, type AdmissionHandlers, type ConcurrencyStats } from './admission.js';
import { DeadlineTimer } from './deadline-timer.js';
import { deadlinesDue, sweepCalls, SWEEP_INTERVAL_MS, timeoutError } from './pool-deadlines.js';
import type {
  Adopted,
  CallLink,
  Group,
  GroupPart,
  Pending,
  PoolCore,
  PoolCounters,
  PoolOptions,
  PoolStats,
  RawResult,
  Slot,
  Trace,
} from './pool-types.js';
import { Registrations } from './pool-registration.js';
import { newThread, post as postTo, stop as stopWorker, Workers } from './pool-workers.js';
import { Watchdog } from './watchdog.js';
import { Dispatch } from './pool-dispatch.js';
import { Groups } from './pool-groups.js';
import { poolStats } from './pool-stats.js';
import { chain, serveCall } from './pool-requests.js';
import { EnergyMeter, FunctionMeters, unpackUsage, USAGE_FIELDS, withEnergy, type Usage } from './metering.js';
import { clearCpuStop } from './worker/meter.js';
import {
  Control,
  wallClock,
  type FromWorker,
  type FunctionSpec,
  type InvokeOutcome,
  type InvokeRequest,
  type ToWorker,
} from './protocol.js';
import type { LogEntry } from './options.js';
import { NO_INTERRUPT, type DataSegment } from './snapshot/layout.js';
import type { HostServices } from './protocol.js';

export type { CallLink, CallRecord, GroupPart, PoolOptions, PoolStats, RawResult } from './pool-types.js';

export class Pool implements PoolCore {
  readonly slots: Slot[] = [];
  readonly counters: PoolCounters = {
    restarts: 0,
    interrupts: 0,
    terminations: 0,
    parked: 0,
    completed: 0,
    failed: 0,
    coldStarts: 0,
    warmStarts: 0,
  };
  readonly functions = new Map<string, FunctionSpec>();
  readonly admissions = new Map<string, Admission>();
  /** Functions the runtime runs on this thread (host handlers): a guest's chain.call may name them. */
  external:
    ((fn: string, input: Uint8Array, timeoutMs: number) => Promise<{ output: Uint8Array; returnCode: number }> | undefined) | undefined;
  private readonly groups = new Groups(this);
  /** The trace of every call that belongs to a traced call tree, by call id. */
  private readonly traces = new Map<number, Trace>();
  readonly registrations = new Registrations(this);
  /** Per-function counts and distributions (`rt.stats().byFunction`). */
  readonly meters = new FunctionMeters();
  /** Energy attributed to calls, where RAPL counters are readable (`rt.stats().energy`). */
  readonly energy = new EnergyMeter();
  private readonly logger: (entry: LogEntry) => void;
  private nextId = 1;
  private outstanding = 0;
  private sweeper: NodeJS.Timeout | undefined;
  /** Sets the interrupt word of a call on a worker's CPU at its deadline, on a thread of its own. */
  readonly watchdog: Watchdog;
  /**
   * Goes off at the nearest deadline of a call in flight: a looping call is interrupted on time,
   * not at the next sweep — by this thread only while the watchdog does not run.
   */
  private readonly deadlines = new DeadlineTimer(
    (now) => deadlinesDue(this, now),
    () => !this.watchdog.running,
  );
  closed = false;
  private readonly workers: Workers;
  private readonly dispatcher = new Dispatch(this);

  constructor(
    options: PoolOptions,
    workerOptions: ConstructorParameters<typeof Workers>[2],
    logger: (entry: LogEntry) => void,
    /** The capabilities' main-thread services, which answer the workers' `call` messages. */
    readonly services: HostServices,
    /**
     * Called with a lost worker's lock holder number once the requests it left running here
     * have finished, to give back the locks it held.
     */
    onLost: (holder: number) => void,
  ) {
    this.logger = logger;
    this.watchdog = new Watchdog(newThread, (message) => logger({ function: 'nuvola', level: 'warn', message }));
    this.workers = new Workers(this, options, workerOptions, logger, onLost);
  }

  /** Whether the sweeper runs (see hold). */
  get holding(): boolean {
    return this.sweeper !== undefined;
  }

  post(slot: Slot, message: ToWorker, transfer?: readonly TransferListItem[]): void {
    postTo(slot, message, transfer);
  }

  stop(slot: Slot, reason: string): Promise<void> {
    return stopWorker(slot, reason);
  }

  dispatch(pending: Pending): void {
    this.dispatcher.dispatch(pending);
  }

  group(id: number): Group | undefined {
    return this.groups.byId.get(id);
  }

  pick(fn?: string): Slot | undefined {
    return this.dispatcher.pick(fn);
  }

  get maxQueuedMessageBytes(): number {
    return this.workers.data.maxQueuedMessageBytes;
  }

  /**
   * Starts `size` invocations of `fn` as ranks 0..size-1 of one group and resolves with their
   * results in rank order (see Groups.run).
   */
  invokeGroup(
    fn: string,
    size: number,
    input: Uint8Array,
    timeoutMs: number,
    placement: 'spread' | 'pack' = 'spread',
    part?: GroupPart,
  ): Promise<RawResult[]> {
    return this.groups.run(fn, size, input, timeoutMs, placement, part);
  }

  /** A message from a rank on another host to rank `to` of the group part `id`. */
  deliver(id: number, from: number, to: number, data: SharedArrayBuffer): void {
    this.groups.deliver(id, from, to, data);
  }

  /** A rank of the group part `id` failed on another host: the ranks here stop too. */
  abortPart(id: number, error: NuvolaError): void {
    this.groups.abortPart(id, error);
  }

  unpark(slot: Slot): Slot {
    return this.workers.unpark(slot);
  }

  /**
   * Asks the running workers to restore `count` idle instances of `fn` each, in time they
   * have no call to run — ahead of a call the caller knows is coming. Starts a parked worker
   * when none runs.
   */
  prewarm(fn: string, count: number): void {
    this.dispatcher.prewarm(fn, count);
  }

  /** Warms the later stages of a chain on the worker the first stage will run on (see Dispatch.prewarmChain). */
  prewarmChain(stages: string[]): void {
    this.dispatcher.prewarmChain(stages);
  }

  /**
   * Keeps the process alive and deadlines checked while anything is outstanding. The workers
   * are referenced while the sweeper runs; the sweeper stops itself (and unreferences them)
   * once a sweep finds nothing outstanding, so a run of one-at-a-time calls does not toggle
   * handles or timers per call.
   */
  private hold(): void {
    this.outstanding++;
    if (this.sweeper === undefined) {
      for (const slot of this.slots) slot.worker.ref();
      this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    }
  }

  private release(): void {
    this.outstanding--;
  }

  /**
   * Registers a function in two steps: one worker runs its start-up code and `init()` and
   * answers with the snapshot; then every running worker gets the function with the snapshot
   * and restores a warm instance from it. A worker that spends longer than `timeoutMs` in
   * either step (start-up code or `init()` in a loop) is replaced and the registration fails.
   * Resolves with the spec as registered (with its snapshot).
   */
  async register(spec: FunctionSpec, segments: DataSegment[], timeoutMs: number): Promise<FunctionSpec> {
    this.hold();
    try {
      const booter = this.dispatcher.pick();
      const booted = await this.registrations.gather(
        spec,
        booter ? [booter] : [],
        (seq) => ({ type: 'boot', spec, segments, seq }),
        timeoutMs,
        () => this.dispatcher.noWorkers(),
      );
      if (booted.error !== undefined) throw fromWire(booted.error);
      const registered: FunctionSpec = { ...spec, snapshot: booted.snapshot! };
      const done = await this.registrations.gather(
        registered,
        this.dispatcher.live(),
        (seq) => ({ type: 'register', spec: registered, seq }),
        timeoutMs,
        () => this.dispatcher.noWorkers(),
      );
      if (done.error !== undefined) {
        for (const slot of this.slots) if (!slot.parked) this.post(slot, { type: 'unregister', name: spec.name });
        throw fromWire(done.error);
      }
      this.functions.set(spec.name, registered);
      this.admissions.set(spec.name, new Admission(spec.concurrency.limit, spec.concurrency.running));
      return registered;
    } finally {
      this.release();
    }
  }

  unregister(name: string): void {
    // Calls accepted before the unregister must reach the workers before it does.
    this.dispatcher.flush();
    this.functions.delete(name);
    this.dispatcher.forget(name);
    this.meters.forget(name);
    // Calls waiting for a slot go on to the workers, which answer E_UNKNOWN_FUNCTION.
    this.admissions.get(name)?.drain();
    this.admissions.delete(name);
    for (const slot of this.slots) if (!slot.parked) this.post(slot, { type: 'unregister', name });
  }

  invoke(fn: string, input: Uint8Array, timeoutMs: number, link?: CallLink, adopted?: Adopted): Promise<RawResult> {
    return new Promise<RawResult>((resolve, reject) => {
      this.hold();
      // Ids travel as i32s (Control.RUNNING, __nuvola_arm, the interrupt word) and are never 0
      // or i32 min (NO_INTERRUPT): they wrap from 2^31-1 back to 1, long after that call settled.
      const id = adopted?.id ?? this.nextId;
      if (adopted === undefined) this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
      const request: InvokeRequest = {
        id,
        fn,
        deadline: adopted?.deadline ?? wallClock() + timeoutMs,
        timeoutMs,
        ...(input.byteLength > 0 ? { input } : {}),
      };
      this.deadlines.watch(request.deadline);
      if (link?.parent !== undefined) request.parent = link.parent;
      if (link?.group !== undefined) request.group = link.group;
      // Tracing costs nothing unless asked for: only traced trees are looked up.
      let trace: Trace | undefined;
      if (link?.trace === true) {
        trace = { start: wallClock(), records: [] };
        this.traces.set(id, trace);
      } else if (link?.parent !== undefined && this.traces.size > 0) {
        trace = this.traces.get(link.parent);
        if (trace !== undefined) this.traces.set(id, trace);
      }
      const started = trace === undefined ? 0 : wallClock();
      const invoked = performance.now();
      // Counted for the registration it was made to (see FunctionMeters.of).
      const meter = this.functions.has(fn) ? this.meters.of(fn) : undefined;
      const record = (worker: number, returnCode: number | undefined, error: string | undefined): void => {
        if (trace === undefined) return;
        this.traces.delete(id);
        const now = wallClock();
        trace.records.push({
          id,
          parent: link?.parent,
          function: fn,
          worker,
          startMs: started - trace.start,
          durationMs: now - started,
          returnCode,
          error,
        });
      };
      const pending: Pending = {
        request,
        resolve: (result) => {
          pending.unlisten?.();
          this.counters.completed++;
          meter?.record(performance.now() - invoked, result.usage, undefined);
          this.release();
          this.freeSlot(pending);
          record(result.worker, result.returnCode, undefined);
          // In the order they started (ids of calls a worker ran itself are negative).
          if (link?.trace === true && trace !== undefined) result.calls = [...trace.records].sort((a, b) => a.startMs - b.startMs);
          resolve(result);
        },
        reject: (error) => {
          pending.unlisten?.();
          this.counters.failed++;
          meter?.record(performance.now() - invoked, error.details['usage'] as Usage | undefined, error.code);
          this.release();
          this.freeSlot(pending);
          record(-1, undefined, error.code);
          reject(error);
        },
        position: 0,
        settled: false,
        cancelBy: undefined,
      };
      if (link?.group !== undefined) this.groups.enlist(pending);
      const signal = link?.signal;
      if (signal !== undefined) {
        if (signal.aborted) {
          this.fail(pending, cancelledError(fn, signal.reason, false));
          return;
        }
        const onAbort = (): void => this.abort(pending, cancelledError(fn, signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
        pending.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      const admission = this.admissions.get(fn);
      if (adopted === undefined) {
        if (admission === undefined) this.dispatcher.dispatch(pending);
        else if (link?.admitted !== undefined) {
          pending.admission = link.admitted;
          this.dispatcher.dispatch(pending);
        } else if (admission.tryTake(1)) {
          // The common case, without the closures a waiting call needs.
          pending.admission = admission;
          this.dispatcher.dispatch(pending);
        } else {
          this.admit(admission, 1, request.deadline, {
            grant: () => {
              pending.admission = admission;
              // Aborted while it waited: answered already; its slot goes back.
              if (pending.settled) this.freeSlot(pending);
              else this.dispatcher.dispatch(pending);
            },
            expire: (error) => this.fail(pending, error ?? this.waitedError(fn, timeoutMs, admission.limit)),
          });
        }
        return;
      }
      // Its worker took a slot for it (see takeSlot in worker/entry.ts).
      pending.admission = admission;
      // Already on its worker; position -1 counts as started (its worker's loss fails it).
      request.local = true;
      pending.position = -1;
      pending.suspends = adopted.suspends;
      adopted.slot.inflight.set(id, pending);
    });
  }

  /** Grants `n` slots of `admission` now if free and nobody waits before, else queues the request until `deadline`. */
  admit(admission: Admission, n: number, deadline: number, on: AdmissionHandlers): void {
    if (admission.tryTake(n)) return on.grant();
    // Keeps the sweeper, which expires waiting requests, running.
    this.hold();
    let held = true;
    const unhold = (): void => {
      if (held) this.release();
      held = false;
    };
    admission.wait(n, deadline, {
      grant: () => {
        unhold();
        on.grant();
      },
      expire: (error) => {
        unhold();
        on.expire(error);
      },
    });
  }

  /** Gives back the slot a call held (which lets waiting calls in). */
  /** The caller aborted `pending`: stopped like a call past its deadline, answered with `error`. */
  private abort(pending: Pending, error: NuvolaError): void {
    if (pending.settled || pending.aborted !== undefined) return;
    pending.aborted = error;
    const slot = this.slots.find((s) => s.inflight.get(pending.request.id) === pending);
    // Still waiting for a slot of its function's maxConcurrency: it never started.
    if (slot === undefined) return this.fail(pending, error);
    // Made in this turn: send it first, so that the cancel follows it to its worker.
    if (slot.outbox.includes(pending.request)) this.dispatcher.flush();
    sweepCalls(this, slot, wallClock());
  }

  private freeSlot(pending: Pending): void {
    const admission = pending.admission;
    if (admission === undefined) return;
    pending.admission = undefined;
    admission.give(1);
  }

  waitedError(fn: string, timeoutMs: number, limit: number, what = 'call'): NuvolaError {
    return makeError(
      ErrorCode.TIMEOUT,
      `a ${what} of '${fn}' waited timeoutMs=${timeoutMs} for a slot: maxConcurrency=${limit} calls of it were running all along (a recursive fan-out waits on itself this way); raise maxConcurrency in register() or make fewer calls at once`,
      { function: fn, timeoutMs, maxConcurrency: limit, started: false },
    );
  }

  onMessage(slot: Slot, message: FromWorker): void {
    slot.lastActive = wallClock();
    switch (message.type) {
      case 'ready':
        slot.ready = true;
        return;
      case 'results': {
        let k = 0;
        for (const outcome of message.batch) {
          // Handed over beside the outcome, not added to it (a shape change per result).
          this.settle(slot, outcome, 'error' in outcome ? undefined : unpackUsage(message.usage, k++ * USAGE_FIELDS.length));
        }
        for (const log of message.logs) this.logger({ function: log.fn, message: log.message, level: 'info' });
        return;
      }
      case 'chain':
        chain(this, slot, message);
        return;
      case 'chainLocal': {
        // Watched for timeouts, counted and traced; the worker answers the caller itself.
        const { id, fn, parent, deadline, timeoutMs, suspends } = message;
        this.invoke(fn, new Uint8Array(0), timeoutMs, { parent }, { slot, id, deadline, suspends }).catch(() => undefined);
        return;
      }
      case 'comm':
        this.groups.route(message);
        return;
      case 'call':
        serveCall(this, slot, message);
        return;
      case 'registered':
      case 'booted':
        this.registrations.answered(slot, message);
        return;
      default:
        unknownMessage(message);
    }
  }

  /** `usage`: a success's, when it did not travel in the outcome (a batch packs them apart). */
  settle(slot: Slot, outcome: InvokeOutcome, usage = 'error' in outcome ? undefined : outcome.usage): void {
    // The call has left Wasm for good: a word still naming it (its interrupt, or one set just
    // after it ended) must not stop a later call with the same id (a worker's own chained
    // calls reuse theirs) — nor outlive the classification, which the worker did before this.
    Atomics.compareExchange(slot.interrupt.word, 0, outcome.id, NO_INTERRUPT);
    const pending = slot.inflight.get(outcome.id);
    // Only sweepCpu sets the CPU-stop word, and it marks the call it stops.
    if (pending?.cpuStopped === true) clearCpuStop(slot.interrupt, outcome.id);
    if (pending === undefined) return;
    slot.inflight.delete(outcome.id);
    if (pending.settled) return;
    pending.settled = true;
    if ('error' in outcome) {
      // Stopped by its interrupt word: the same E_TIMEOUT as any other timeout, saying how.
      // An aborted call's worker answers the cancel (or the interrupt) in its own words. The
      // watchdog sets the word without this thread: a call it stopped is counted here.
      const interrupted =
        outcome.error.details?.['interrupted'] === true &&
        (pending.interruptedAt !== undefined || this.watchdogStopped(pending, outcome.error));
      if (interrupted && pending.interruptedAt === undefined) {
        pending.interruptedAt = wallClock();
        this.counters.interrupts++;
      }
      const error =
        pending.aborted ??
        (interrupted ? timeoutError(pending, 'interrupted on its worker, which went on serving its other calls') : fromWire(outcome.error));
      // What the call used travels in the worker's error; the pool's own keeps it too.
      const used = outcome.error.details?.['usage'] as Usage | undefined;
      if (used !== undefined) error.details['usage'] = withEnergy(used, this.energy);
      pending.reject(error);
    } else {
      if (outcome.cold) this.counters.coldStarts++;
      else this.counters.warmStarts++;
      pending.resolve({
        output: outcome.output ?? new Uint8Array(0),
        returnCode: outcome.returnCode,
        cold: outcome.cold,
        worker: slot.index,
        workerMs: outcome.workerMs,
        usage: withEnergy(usage!, this.energy),
      });
    }
  }

  /**
   * Whether the watchdog interrupted this call: its worker says the interrupt word stopped it
   * (E_TIMEOUT, not E_CPU_LIMIT) and its deadline had passed — only the watchdog and the sweep
   * set the word for a call still waited for.
   */
  private watchdogStopped(pending: Pending, error: WireError): boolean {
    // Within a millisecond: each thread reads the wall clock through its own origin.
    return error.code === ErrorCode.TIMEOUT && pending.aborted === undefined && wallClock() >= pending.request.deadline - 1;
  }

  fail(pending: Pending, error: NuvolaError): void {
    if (pending.settled) return;
    pending.settled = true;
    pending.reject(error);
  }

  private sweep(): void {
    if (this.outstanding === 0 && !this.registrations.active) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      // Once closed, the workers stay referenced until they have exited, so that an awaited
      // close() cannot be cut short by an empty event loop.
      if (!this.closed) for (const slot of this.slots) slot.worker.unref();
      return;
    }
    const now = wallClock();
    for (const slot of this.slots) {
      if (slot.stopReason === undefined && !slot.dead) sweepCalls(this, slot, now);
    }
    this.registrations.sweep(now);
    for (const admission of this.admissions.values()) admission.sweep(now);
  }

  /** Resolves once every worker thread is up; rejects if one fails to start. */
  async ready(): Promise<void> {
    this.hold();
    try {
      await this.workers.ready();
    } finally {
      this.release();
    }
  }

  /** Test hook: stops a worker as if it had crashed. */
  crashWorker(index: number): void {
    this.workers.crash(index);
  }

  /** Test hook: calls `listener` with the number of outcomes in each results message worker `index` sends. */
  onResultBatch(index: number, listener: (outcomes: number) => void): void {
    this.slots[index]?.worker.on('message', (message: FromWorker) => {
      if (message.type === 'results' && message.batch.length > 0) listener(message.batch.length);
    });
  }

  /** Test hook: whether worker `index` is creating an instance for a registration right now. */
  isRegistering(index: number): boolean {
    const slot = this.slots[index];
    return slot !== undefined && Atomics.load(slot.control, Control.REGISTERING) !== 0;
  }

  /**
   * Calls accepted and not started yet: sent to a worker that has not reached them, or waiting
   * for a slot of their function's `maxConcurrency`. What `maxQueue` bounds.
   */
  queued(): number {
    let n = 0;
    // `sent` counts a call once it is in the outbox; the worker bumps STARTED as it starts each.
    for (const slot of this.slots) n += Math.max(0, slot.sent - Atomics.load(slot.control, Control.STARTED));
    for (const admission of this.admissions.values()) n += admission.waitingCount;
    return n;
  }

  stats(): PoolStats {
    return poolStats(this.slots, this.counters, this.workers.memoryCounts, this.groups.queuedBytes());
  }

  /** Per registered function, its calls running and waiting under `maxConcurrency`. */
  concurrency(): Map<string, ConcurrencyStats> {
    const out = new Map<string, ConcurrencyStats>();
    for (const [name, admission] of this.admissions) out.set(name, admission.stats());
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.deadlines.stop();
    const watchdog = this.watchdog.close();
    // First, so that a slot given back below lets no waiting call through to a worker.
    const closed = makeError(ErrorCode.CLOSED, 'the runtime closed while the call waited for a slot under maxConcurrency');
    for (const admission of this.admissions.values()) admission.drain(closed);
    for (const slot of this.slots) {
      for (const pending of slot.inflight.values()) {
        const fn = pending.request.fn;
        this.fail(pending, makeError(ErrorCode.CLOSED, `function '${fn}' was still running when the runtime closed`, { function: fn }));
      }
      slot.inflight.clear();
    }
    this.registrations.close();
    await Promise.all([this.workers.close(), watchdog]);
  }
}

/** The error of a call its caller aborted; `started: false` when it never reached a worker. */
export function cancelledError(fn: string, reason: unknown, started = true): NuvolaError {
  const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
  return makeError(ErrorCode.CANCELLED, `the call of '${fn}' was cancelled by its caller (options.signal): ${why}`, {
    function: fn,
    reason: why,
    ...(started ? {} : { started: false }),
  });
}
