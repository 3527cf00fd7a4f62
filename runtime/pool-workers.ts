/**
 * Main thread. The pool's workers over their lives: started (with the functions registered so
 * far and a direct channel to every other worker), posted to, stopped, parked after being
 * idle and started again when work comes, and replaced when lost — a lost worker's calls are
 * answered from its outcome log, sent again when they had not started, or failed.
 */
import { once } from 'node:events';
import { MessageChannel, Worker, type TransferListItem } from 'node:worker_threads';
import { ErrorCode, makeError } from './errors.js';
import { wake } from './wake.js';
import { newInterrupt } from './worker/interrupt.js';
import { OUTCOME_LOG_BYTES, unsentOutcomes } from './outcome-log.js';
import { MAX_HOLDERS } from '../state/key-state.js';
import { Control, wallClock, type FromWorker, type InvokeOutcome, type ToWorker, type WorkerData } from './protocol.js';
import type { LogEntry } from './options.js';
import type { Pending, PoolCore, PoolOptions, Slot } from './pool-types.js';
import type { Registrations } from './pool-registration.js';
import type { Watchdog } from './watchdog.js';

const WORKER_ENTRY = new URL('./worker/entry.js', import.meta.url);
/**
 * Longest `close()` waits for its workers to exit. A thread blocked in a system call (a host
 * file that blocks) never exits, and Node cannot interrupt it: close resolves anyway.
 */
const CLOSE_WAIT_MS = 2000;

/** The process's flags that a worker accepts, worked out on the first spawn. */
let workerExecArgv: string[] | undefined;

/** Starts a thread running `entry` (a worker, the deadline watchdog) with the process's flags that threads accept. */
export function newThread(entry: URL, workerData: unknown): Worker {
  // The thread runs a module file: flags that only make sense for the main script (such as
  // `--input-type` of `node -e`) would stop it from loading.
  workerExecArgv ??= process.execArgv.filter((arg) => !/^--(input-type|eval|print)\b|^-[ep]$/.test(arg));
  try {
    return new Worker(entry, { workerData, execArgv: workerExecArgv });
  } catch (err) {
    // Per-process flags (`--expose-gc`, ...) are refused for a worker; they apply to it anyway.
    if ((err as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    const refused = new Set(((err as Error).message.split('flags: ')[1] ?? '').split(/,\s*/));
    workerExecArgv = workerExecArgv.filter((arg) => !refused.has(arg));
    return new Worker(entry, { workerData, execArgv: workerExecArgv });
  }
}

/** What the workers' lives need of the rest of the pool. */
export interface WorkerHost extends PoolCore {
  readonly closed: boolean;
  /** Whether the sweeper runs (the workers are referenced meanwhile, a new one too). */
  readonly holding: boolean;
  readonly registrations: Pick<Registrations, 'busy' | 'joinUnparked' | 'lost'>;
  /** Told of every worker started, which publishes its running call's deadline to it. */
  readonly watchdog: Watchdog;
  onMessage(slot: Slot, message: FromWorker): void;
  settle(slot: Slot, outcome: InvokeOutcome): void;
  dispatch(pending: Pending): void;
}

/** The settings every worker is started with, but those that differ per worker. */
export type SharedWorkerData = Omit<WorkerData, 'index' | 'control' | 'lockHolder' | 'outcomes' | 'interrupt' | 'watch'>;

/** Starts, parks, restarts and replaces the pool's workers (the slots in `host.slots`). */
export class Workers {
  /** Lock holder numbers not in use (1 is the main thread's). */
  private readonly freeHolders = Array.from({ length: MAX_HOLDERS - 2 }, (_, i) => i + 2);
  /** What every worker is started with. */
  readonly data: SharedWorkerData;
  /** Per lock holder number, the Wasm memories that worker holds (see WorkerData.memoryCounts). */
  readonly memoryCounts: Int32Array;
  /** Per lock holder number, the WASI host descriptors that worker holds (see WorkerData.wasiFileCounts). */
  private readonly wasiFileCounts: Int32Array;
  private readonly parkTimer: NodeJS.Timeout;

  constructor(
    private readonly host: WorkerHost,
    private readonly options: PoolOptions,
    data: Omit<SharedWorkerData, 'memoryCounts' | 'wasiFileCounts' | 'idleTimeoutMs'>,
    private readonly logger: (entry: LogEntry) => void,
    /**
     * Called with a lost worker's lock holder number once the requests it left running here
     * have finished, to give back the locks it held.
     */
    private readonly onLost: (holder: number) => void,
  ) {
    this.memoryCounts = new Int32Array(new SharedArrayBuffer(4 * MAX_HOLDERS));
    this.wasiFileCounts = new Int32Array(new SharedArrayBuffer(4 * MAX_HOLDERS));
    this.data = {
      ...data,
      idleTimeoutMs: options.idleTimeoutMs,
      memoryCounts: this.memoryCounts.buffer as SharedArrayBuffer,
      wasiFileCounts: this.wasiFileCounts.buffer as SharedArrayBuffer,
    };
    for (let i = 0; i < options.size; i++) host.slots.push(this.spawn(i));
    this.parkTimer = setInterval(() => this.parkIdle(), Math.max(10, Math.min(1000, options.idleTimeoutMs / 4)));
    this.parkTimer.unref();
  }

  spawn(index: number): Slot {
    const control = new SharedArrayBuffer(Control.LENGTH * 4);
    const outcomes = new SharedArrayBuffer(OUTCOME_LOG_BYTES);
    const holder = this.freeHolders.shift();
    if (holder === undefined) throw new Error('no state lock holder number left for a new worker');
    const interrupt = newInterrupt();
    const watchdog = this.host.watchdog;
    const data: WorkerData = {
      ...this.data,
      index,
      control,
      lockHolder: holder,
      outcomes,
      interrupt: interrupt.memory,
      watch: watchdog.cell.buffer,
    };
    const worker = newThread(WORKER_ENTRY, data);
    const slot: Slot = {
      index,
      worker,
      control: new Int32Array(control),
      outcomes,
      interrupt,
      inflight: new Map(),
      outbox: [],
      sent: 0,
      stopReason: undefined,
      ready: false,
      dead: false,
      zombie: undefined,
      freeSince: undefined,
      holder,
      stateInflight: new Set(),
      parked: false,
      lastActive: wallClock(),
    };
    watchdog.watch(index, control, interrupt.memory);
    worker.on('message', (message: FromWorker) => this.host.onMessage(slot, message));
    worker.on('error', (err) => {
      this.logger({ function: 'nuvola', level: 'warn', message: `worker ${index} failed: ${err.message}` });
    });
    worker.on('exit', () => this.onExit(slot));
    if (!this.host.holding) worker.unref();
    for (const spec of this.host.functions.values()) post(slot, { type: 'register', spec, seq: 0 });
    // A direct channel to every other running worker, for messages between group ranks.
    for (const other of this.host.slots) {
      if (other.index === index || other.parked || other.dead || other.stopReason !== undefined) continue;
      const { port1, port2 } = new MessageChannel();
      post(slot, { type: 'peer', index: other.index, port: port1, control: other.control.buffer as SharedArrayBuffer }, [port1]);
      post(other, { type: 'peer', index, port: port2, control }, [port2]);
    }
    return slot;
  }

  /**
   * Scale to zero: stops workers that have had nothing to do for idleTimeoutMs (their idle
   * instances have expired by then too), keeping minWorkers running.
   */
  parkIdle(): void {
    if (this.host.closed) return;
    const now = wallClock();
    let running = this.host.slots.filter((slot) => !slot.parked && !slot.dead).length;
    const busy = this.host.registrations.busy();
    for (const slot of this.host.slots) {
      if (slot.parked || slot.dead || slot.stopReason !== undefined || !slot.ready) continue;
      if (slot.inflight.size > 0 || slot.stateInflight.size > 0 || busy.has(slot)) {
        slot.lastActive = now;
        continue;
      }
      if (running <= this.options.minWorkers || now - slot.lastActive < this.options.idleTimeoutMs) continue;
      running--;
      slot.parked = true;
      slot.stopReason = 'parked after being idle';
      this.host.counters.parked++;
      void slot.worker.terminate();
    }
  }

  unpark(slot: Slot): Slot {
    const fresh = this.spawn(slot.index);
    this.host.slots[slot.index] = fresh;
    this.host.registrations.joinUnparked(fresh);
    return fresh;
  }

  private onExit(slot: Slot): void {
    // The thread is gone: what it held is freed, so it no longer counts against maxInstances.
    Atomics.store(this.memoryCounts, slot.holder, 0);
    Atomics.store(this.wasiFileCounts, slot.holder, 0);
    if (this.host.closed) return;
    // Its locks are given back only once the requests it left running here (which may run
    // under those locks) are done; until then its holder number stays taken.
    const release = (): void => {
      this.onLost(slot.holder);
      this.freeHolders.push(slot.holder);
    };
    if (slot.stateInflight.size === 0) release();
    else void Promise.allSettled([...slot.stateInflight]).then(release);
    // A slot that was parked and started again already has its new worker.
    if (slot.parked) return;
    const reason = slot.stopReason ?? 'the worker thread exited unexpectedly';
    const started = Atomics.load(slot.control, Control.STARTED);
    let replacement: Slot | undefined;
    if (slot.ready || slot.stopReason !== undefined) {
      this.host.counters.restarts++;
      replacement = this.spawn(slot.index);
      this.host.slots[slot.index] = replacement;
    } else {
      slot.dead = true;
      this.logger({ function: 'nuvola', level: 'warn', message: `worker ${slot.index} died while loading; it is not restarted` });
    }
    this.host.registrations.lost(slot, replacement);
    // Calls that finished with their outcome not yet posted are answered from the worker's log.
    const unsent = unsentOutcomes(slot.outcomes);
    for (const pending of slot.inflight.values()) {
      if (pending.settled) continue;
      const outcome = unsent.get(pending.request.id);
      if (outcome !== undefined) {
        this.host.settle(slot, outcome);
      } else if (pending.position >= started) {
        this.host.dispatch(pending);
      } else {
        this.host.fail(
          pending,
          makeError(
            ErrorCode.WORKER_LOST,
            `function '${pending.request.fn}' was running on worker ${slot.index}, which was lost (${reason}); the call may have run in part or in full — retry it only if it is idempotent`,
            { function: pending.request.fn, worker: slot.index, mayHaveCompleted: true },
          ),
        );
      }
    }
    slot.inflight.clear();
  }

  /** Resolves once every worker thread is up; rejects if one fails to start. */
  async ready(): Promise<void> {
    await Promise.all(
      this.host.slots.map(async (slot) => {
        const loaded = new Promise<void>((resolve) => {
          const check = (message: FromWorker): void => {
            if (message.type !== 'ready') return;
            slot.worker.off('message', check);
            resolve();
          };
          slot.worker.on('message', check);
        });
        const failed = once(slot.worker, 'error').then(([err]) => Promise.reject(err as Error));
        const exited = once(slot.worker, 'exit').then(([code]) =>
          Promise.reject(new Error(`worker ${slot.index} exited with code ${code} while loading`)),
        );
        await Promise.race([loaded, failed, exited]);
      }),
    );
  }

  /** Test hook: stops a worker as if it had crashed. */
  crash(index: number): void {
    const slot = this.host.slots[index];
    if (slot && !slot.parked) void slot.worker.terminate();
  }

  /**
   * The runtime closes: stops every worker, waiting no longer than CLOSE_WAIT_MS; one still
   * there is stuck for good and must not keep the process alive either.
   */
  async close(): Promise<void> {
    clearInterval(this.parkTimer);
    for (const slot of this.host.slots) slot.worker.ref();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.host.slots.map((slot) => slot.worker.terminate())),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    for (const slot of this.host.slots) slot.worker.unref();
  }
}

/** Posts `message` to a worker and wakes it. */
export function post(slot: Slot, message: ToWorker, transfer?: readonly TransferListItem[]): void {
  slot.lastActive = wallClock();
  slot.worker.postMessage(message, transfer);
  wake(slot.control);
}

/** Stops a worker; its replacement is started from the exit handler. */
export async function stop(slot: Slot, reason: string): Promise<void> {
  if (slot.stopReason !== undefined) return;
  slot.stopReason = reason;
  await slot.worker.terminate();
}
