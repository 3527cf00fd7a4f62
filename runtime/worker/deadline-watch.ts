/**
 * Any thread. What the deadline watchdog (runtime/watchdog-entry.ts) and the workers share, so
 * that a call looping on its worker's CPU is interrupted at its deadline by a thread that does
 * nothing else — not by the main thread's timer, which goes off late while its event loop is
 * busy.
 *
 * A worker publishes, in its interrupt page (interrupt.ts), the deadline of the call it puts on
 * its CPU, before it names the call in Control.RUNNING. The watchdog sleeps in `Atomics.wait`
 * until the nearest such deadline; a worker wakes it only when a call's deadline comes before
 * the time the watchdog plans to wake (a shorter timeout, or a watchdog with nothing to watch),
 * so calls with the same timeout, started in deadline order, cost their worker three stores and
 * two loads each and no wake-up. At the deadline the watchdog writes the call's id into the
 * worker's interrupt word itself; the pool learns of it from the call's answer.
 */
import type { Interrupt } from './interrupt.js';

/** Int32 words of the watchdog's cell. */
const Cell = {
  /** Bumped by whoever wakes the watchdog (a worker, or the pool with news); it waits on it. */
  SIGNAL: 0,
  /** Bumped by the watchdog after each plan it publishes (orders the plan with the workers' reads). */
  PLANNED: 1,
} as const;
/** Byte offset of the Float64 the watchdog publishes: when it will wake ({@link wallClock} ms), Infinity for never. */
const WAKE_AT_BYTE = 8;
const CELL_BYTES = 16;

/** Int32 word of the interrupt page holding the id whose deadline is published (0 while it is rewritten). */
const OWNER_WORD = 8;
/** Byte offset of the published deadline (Float64) in the interrupt page. */
const DEADLINE_BYTE = 40;

/** The watchdog's cell, as one thread sees it. */
export interface WatchCell {
  readonly buffer: SharedArrayBuffer;
  readonly words: Int32Array;
  readonly wakeAt: Float64Array;
}

export function newWatchCell(): WatchCell {
  const cell = wrapWatchCell(new SharedArrayBuffer(CELL_BYTES));
  cell.wakeAt[0] = Infinity;
  return cell;
}

export function wrapWatchCell(buffer: SharedArrayBuffer): WatchCell {
  return { buffer, words: new Int32Array(buffer, 0, 2), wakeAt: new Float64Array(buffer, WAKE_AT_BYTE, 1) };
}

/** A worker's published deadline, as one thread sees it. */
export interface DeadlineSlot {
  readonly owner: Int32Array;
  readonly deadline: Float64Array;
}

const slots = new WeakMap<Interrupt, DeadlineSlot>();

export function deadlineSlot(interrupt: Interrupt): DeadlineSlot {
  let slot = slots.get(interrupt);
  if (slot === undefined) {
    slot = {
      owner: new Int32Array(interrupt.memory.buffer, 0, OWNER_WORD + 1),
      deadline: new Float64Array(interrupt.memory.buffer, DEADLINE_BYTE, 1),
    };
    slots.set(interrupt, slot);
  }
  return slot;
}

/**
 * Worker side, before the call is named in Control.RUNNING (as it starts or resumes): its
 * deadline (Infinity for code without interruption checks, which only its worker's loss can
 * stop, as before). Then, once RUNNING names it, {@link remindWatchdog}.
 */
export function publishDeadline(slot: DeadlineSlot, id: number, deadline: number): void {
  // A seqlock of one word: the watchdog takes the deadline only if the owner it read before and
  // after it is the same id, so it never pairs one call's id with another call's deadline.
  Atomics.store(slot.owner, OWNER_WORD, 0);
  slot.deadline[0] = deadline;
  Atomics.store(slot.owner, OWNER_WORD, id);
}

/**
 * Worker side, after Control.RUNNING names the call: wakes the watchdog when it plans to wake
 * later than the call's deadline. After, not before: woken earlier, the watchdog could scan,
 * find nothing running yet, and plan a second ahead.
 */
export function remindWatchdog(cell: WatchCell, deadline: number): void {
  // The load orders the read of the plan after the watchdog's last publication of it (the
  // watchdog scans the workers again after publishing, so one of the two sees the other).
  Atomics.load(cell.words, Cell.PLANNED);
  if (deadline < cell.wakeAt[0]!) wakeWatchdog(cell);
}

/** Wakes the watchdog: a deadline earlier than it planned for, or news from the pool. */
export function wakeWatchdog(cell: WatchCell): void {
  Atomics.add(cell.words, Cell.SIGNAL, 1);
  Atomics.notify(cell.words, Cell.SIGNAL, 1);
}

/** Watchdog side: the published deadline of call `id`, or undefined when `id` has none published. */
export function publishedDeadline(slot: DeadlineSlot, id: number): number | undefined {
  if (id === 0 || Atomics.load(slot.owner, OWNER_WORD) !== id) return undefined;
  const deadline = slot.deadline[0]!;
  return Atomics.load(slot.owner, OWNER_WORD) === id ? deadline : undefined;
}

/** Watchdog side: the signal as it is now (read before a scan, waited on after it). */
export function watchSignal(cell: WatchCell): number {
  return Atomics.load(cell.words, Cell.SIGNAL);
}

/** Watchdog side: publishes when it will wake next. */
export function publishPlan(cell: WatchCell, wakeAt: number): void {
  cell.wakeAt[0] = wakeAt;
  Atomics.add(cell.words, Cell.PLANNED, 1);
}

/** Watchdog side: sleeps until `wakeAt` ({@link wallClock} ms) or a wake-up after `seen`. */
export function sleepUntil(cell: WatchCell, seen: number, wakeAt: number, now: number): void {
  Atomics.wait(cell.words, Cell.SIGNAL, seen, wakeAt === Infinity ? Infinity : Math.max(0, wakeAt - now));
}
