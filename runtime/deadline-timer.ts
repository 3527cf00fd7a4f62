/**
 * Main thread. One timer for the nearest deadline of the pool's calls, so that a call looping
 * on its worker's CPU is interrupted at its deadline rather than at the next sweep (every 5 ms).
 *
 * It costs one compare per call: a call whose deadline is later than the one the timer is set
 * for (the usual case: calls with the same timeout arrive in deadline order) leaves it alone.
 * When the timer goes off, the pool handles the calls past their deadline and names the next
 * deadline of a call still unanswered; calls answered meanwhile need nothing.
 */
import { wallClock } from './protocol.js';

/**
 * Node's timers count whole milliseconds of a clock read at the start of each turn of the event
 * loop, so one may go off up to a millisecond early or late: the timer is set this much short
 * of the deadline and, for a call on its worker's CPU, the rest is waited out in short sleeps
 * between turns of the event loop (milliseconds).
 */
const EARLY_MS = 1;
/**
 * While waiting out that last millisecond, the main thread sleeps this long at a time between
 * turns of the event loop (milliseconds): short enough for other answers to go on being handled,
 * and the CPU stays free for the worker that is to trap — on a 2-core machine, spinning instead
 * made the p99 from deadline to answer 2–4× worse.
 */
const SLICE_MS = 0.2;
const SLEEP = new Int32Array(new SharedArrayBuffer(4));

/** What the pool says when the timer goes off. */
export interface NextDeadline {
  /** The earliest deadline of a call still unanswered ({@link wallClock} time), or Infinity. */
  at: number;
  /**
   * Whether that call is on its worker's CPU now: only then is the last millisecond waited out
   * in short sleeps between turns of the event loop (a looping call is what must trap on time; a suspended or queued
   * call's answer does not need the main thread busy for it).
   */
  onCpu: boolean;
}

export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** The deadline the timer is set for ({@link wallClock} time), or Infinity. */
  private at = Infinity;

  /**
   * `due(now)` handles the calls whose deadline is at or before `now` and says what comes next.
   * `precise()`: whether this thread must interrupt a call on its worker's CPU on time itself —
   * not while the deadline watchdog runs (watchdog.ts), which does it without the event loop;
   * the last millisecond is then not waited out here, and the timer only answers the caller.
   */
  constructor(
    private readonly due: (now: number) => NextDeadline,
    private readonly precise: () => boolean = () => true,
  ) {}

  /** Makes sure the timer goes off at `deadline` (or earlier). */
  watch(deadline: number): void {
    if (deadline < this.at) this.set(deadline);
  }

  stop(): void {
    this.set(Infinity);
  }

  private set(at: number, precise = true): void {
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
    this.timer = this.immediate = undefined;
    this.at = at;
    if (at === Infinity) return;
    const left = at - wallClock();
    if (left - EARLY_MS >= 1 || !precise) {
      this.timer = setTimeout(this.fire, precise ? Math.floor(left - EARLY_MS) : Math.max(1, Math.ceil(left)));
      // The pool's sweeper keeps the process alive while calls are outstanding.
      this.timer.unref();
    } else {
      if (left > 0) Atomics.wait(SLEEP, 0, 0, Math.min(left, SLICE_MS));
      // Referenced: an unreferenced immediate lets the event loop block in its poll phase.
      this.immediate = setImmediate(this.fire);
    }
  }

  private readonly fire = (): void => {
    this.timer = this.immediate = undefined;
    this.at = Infinity;
    const next = this.due(wallClock());
    // `due` may have watched a deadline of its own (a call it dispatched again).
    if (this.at < next.at) this.set(this.at);
    else this.set(next.at, next.onCpu && this.precise());
  };
}
