/**
 * Deadline watchdog thread (its own build entry: dist/runtime/watchdog-thread.js, one per
 * runtime, started by runtime/watchdog.ts). It sleeps in `Atomics.wait` until the nearest
 * deadline of a call on a worker's CPU and then writes that call's id into the worker's
 * interrupt word, so that the call traps at its next check however busy the main thread's
 * event loop is. It does nothing else: the pool still answers the call (E_TIMEOUT, from the
 * worker's answer), counts the interrupt, and stops a worker whose call reaches no check.
 * The shared words are described in runtime/worker/deadline-watch.ts.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { Control, wallClock, type ToWatchdog } from './protocol.js';
import { NO_INTERRUPT } from './snapshot/layout.js';
import { wrapInterrupt, type Interrupt } from './worker/interrupt.js';
import {
  deadlineSlot,
  publishedDeadline,
  publishPlan,
  sleepUntil,
  watchSignal,
  wrapWatchCell,
  type DeadlineSlot,
} from './worker/deadline-watch.js';

/**
 * The longest the watchdog sleeps while calls with later deadlines run, in ms: a worker wakes it
 * only for a deadline before its planned wake-up, so a plan never reaches further than this and
 * calls with long timeouts (the default 30 s) wake nobody as they start.
 */
const LEASE_MS = 1000;

interface Watched {
  control: Int32Array;
  interrupt: Interrupt;
  slot: DeadlineSlot;
  /** The call this watchdog last interrupted on the worker: not written again, not planned for. */
  done: number;
}

const port = parentPort!;
const cell = wrapWatchCell((workerData as { cell: SharedArrayBuffer }).cell);
const workers = new Map<number, Watched>();

function handle(message: ToWatchdog): boolean {
  if (message.type === 'close') return false;
  const interrupt = wrapInterrupt(message.interrupt);
  workers.set(message.index, { control: new Int32Array(message.control), interrupt, slot: deadlineSlot(interrupt), done: 0 });
  return true;
}

/** Interrupts the calls past their deadline; returns the nearest deadline still to come. */
function scan(now: number): number {
  let next = now + LEASE_MS;
  for (const w of workers.values()) {
    const id = Atomics.load(w.control, Control.RUNNING);
    if (id === 0 || id === w.done) continue;
    const deadline = publishedDeadline(w.slot, id);
    if (deadline === undefined) continue;
    if (deadline > now) {
      if (deadline < next) next = deadline;
      continue;
    }
    w.done = id;
    const word = w.interrupt.word;
    Atomics.store(word, 0, id);
    // It left the CPU meanwhile (finished, or suspended): the word must not outlive it — the
    // pool clears it when the call's answer arrives, which may have come already. A call that
    // resumes publishes its deadline again and is interrupted then.
    if (Atomics.load(w.control, Control.RUNNING) !== id) {
      Atomics.compareExchange(word, 0, id, NO_INTERRUPT);
      w.done = 0;
    }
  }
  return next;
}

for (;;) {
  let open = true;
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) open &&= handle(m.message as ToWatchdog);
  if (!open) break;
  const seen = watchSignal(cell);
  const now = wallClock();
  const next = scan(now);
  publishPlan(cell, next);
  // A call put on a CPU while the plan was made may have read the old plan: this scan sees it.
  if (scan(wallClock()) < next) continue;
  sleepUntil(cell, seen, next, wallClock());
}
