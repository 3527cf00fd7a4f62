/**
 * Main thread. The runtime's deadline watchdog: one small thread (watchdog-thread.ts) that
 * interrupts a call looping on its worker's CPU at its deadline, without waiting for the main
 * thread's event loop. The pool tells it which workers there are; the workers publish their
 * running call's deadline to it themselves (worker/deadline-watch.ts).
 *
 * Until the thread is up, or if it cannot start, the pool's deadline timer does the same on the
 * main thread, as precisely as Node's timers allow (deadline-timer.ts): nothing depends on the
 * watchdog but how soon the interrupt word is set.
 */
import type { Worker } from 'node:worker_threads';
import type { ToWatchdog } from './protocol.js';
import { newWatchCell, wakeWatchdog, type WatchCell } from './worker/deadline-watch.js';

const ENTRY = new URL('./watchdog-thread.js', import.meta.url);

export class Watchdog {
  readonly cell: WatchCell = newWatchCell();
  private thread: Worker | undefined;
  private up = false;

  constructor(
    /** Starts a thread with the process's flags that threads accept (pool-workers.ts). */
    start: (entry: URL, workerData: unknown) => Worker,
    private readonly warn: (message: string) => void,
  ) {
    const thread = start(ENTRY, { cell: this.cell.buffer });
    // It must not keep the process alive: the pool's sweeper does while calls are outstanding.
    thread.unref();
    thread.on('online', () => {
      if (this.thread === thread) this.up = true;
    });
    thread.on('error', (err) => {
      this.warn(`the deadline watchdog failed (${err.message}); deadlines are kept by the main thread's timer`);
    });
    thread.on('exit', () => {
      this.up = false;
      if (this.thread === thread) this.thread = undefined;
    });
    this.thread = thread;
  }

  /** Whether the thread runs: the pool's timer leaves calls on a CPU to it. */
  get running(): boolean {
    return this.up;
  }

  /** A worker (new, or the replacement of the one at its index) to watch. */
  watch(index: number, control: SharedArrayBuffer, interrupt: WebAssembly.Memory): void {
    this.send({ type: 'watch', index, control, interrupt });
  }

  /** Stops the thread (the pool closes, or a benchmark measures without it). */
  async close(): Promise<void> {
    const thread = this.thread;
    if (thread === undefined) return;
    this.send({ type: 'close' });
    this.thread = undefined;
    this.up = false;
    await thread.terminate();
  }

  private send(message: ToWatchdog): void {
    if (this.thread === undefined) return;
    this.thread.postMessage(message);
    wakeWatchdog(this.cell);
  }
}
