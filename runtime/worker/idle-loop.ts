/**
 * Worker thread. How an idle worker waits for work: on Control.SIGNAL rather than in the event
 * loop, spinning briefly first while wake-ups are slow, then blocking in `Atomics.wait`. The
 * whole wait policy is here, in {@link IdleLoop.run}; what it waits for comes in as {@link IdleWork}.
 */
import { Control, clockMicros } from '../protocol.js';

/** How long an idle worker blocks before giving its event loop a turn, in milliseconds. */
const IDLE_WAIT_MS = 50;
/** Spin before blocking only while wake-ups take longer than this on average, in microseconds. */
const SPIN_WHEN_WAKE_ABOVE_MICROS = 25;

/** A CPU hint that this thread is spinning (`Atomics.pause`, V8 13.3+). */
const pause = (Atomics as unknown as { pause: () => void }).pause;

/** What the idle loop asks of the rest of the worker. */
export interface IdleWork {
  /** Handles every message waiting on the ports; returns whether there was one. */
  drain(): boolean;
  /** Whether a batch of calls is being run now. */
  processing(): boolean;
  /** Whether calls wait in the queue. */
  queued(): boolean;
  /** How many calls are suspended in a host import. */
  suspended(): number;
  /** Requests to the main thread and the kernel thread not answered yet. */
  awaitingReplies(): number;
  /** Restores one instance for a pending `prewarm`; returns false when none is pending. */
  prewarmOne(): boolean;
  /** Upkeep on every round: idle instances expired, results flushed. */
  upkeep(): void;
}

export class IdleLoop {
  /** Set when a message settled a promise whose reactions must run before the worker blocks. */
  needsEventLoop = false;
  private scheduled = false;
  /** Moving average of how long a notify takes to wake this worker, in microseconds. */
  private wakeMicros = SPIN_WHEN_WAKE_ABOVE_MICROS;

  constructor(
    private readonly control: Int32Array,
    /** How long to spin before blocking (WorkerData.spinMicros). */
    private readonly spinMicros: number,
    private readonly work: IdleWork,
  ) {}

  /** Runs the loop after the event loop's pending reactions, unless calls are running or waiting. */
  schedule(): void {
    const { work } = this;
    if (this.scheduled || work.suspended() > 0 || work.processing() || work.awaitingReplies() > 0) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /** Runs the loop again after the event loop's pending reactions, even with instances suspended. */
  private spinSoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /**
   * While nothing is suspended, wait for work on Control.SIGNAL instead of in the event loop:
   * spin up to `spinMicros`, then block in `Atomics.wait`. Return to the event loop as soon as
   * an invocation suspends (its host call needs it), and every IDLE_WAIT_MS anyway.
   */
  private readonly run = (): void => {
    const { control, work } = this;
    this.scheduled = false;
    for (;;) {
      work.drain();
      // Prewarming is done only when no call waits.
      if (!work.processing() && !work.queued() && work.prewarmOne()) continue;
      work.upkeep();
      // Promise reactions (a state reply, a deferred lock release) run only in the event loop.
      if (work.processing() || work.awaitingReplies() > 0 || this.needsEventLoop) {
        const answered = this.needsEventLoop;
        this.needsEventLoop = false;
        // Come back to watch for answers once the reactions (resumed instances) have run.
        if (answered && work.suspended() > 0 && !work.processing()) this.spinSoon();
        return;
      }
      if (work.suspended() > 0) {
        // Instances wait on host calls (a chained call, a message, a state reply) answered by
        // messages that often come within a round trip: watch for them briefly instead of
        // leaving them to the event loop's slower wake-up; then the event loop takes over.
        if (this.wakeMicros > SPIN_WHEN_WAKE_ABOVE_MICROS) {
          const seen = Atomics.load(control, Control.SIGNAL);
          const spinUntil = performance.now() + this.spinMicros / 1000;
          while (Atomics.load(control, Control.SIGNAL) === seen && performance.now() < spinUntil) pause();
          if (Atomics.load(control, Control.SIGNAL) !== seen && work.drain()) {
            this.needsEventLoop = false;
            this.spinSoon();
          }
        }
        return;
      }
      const seen = Atomics.load(control, Control.SIGNAL);
      Atomics.store(control, Control.IDLE, 1);
      // A message posted before IDLE was visible is already in the port: take it now.
      if (work.drain()) {
        Atomics.store(control, Control.IDLE, 0);
        continue;
      }
      // Spin briefly first when wake-ups are slow: a caller awaiting one result usually sends
      // the next call within a main-thread round trip, and catching it here saves the wake-up.
      // When wake-ups are fast (an idle machine), spinning only takes CPU from the main thread.
      if (this.wakeMicros > SPIN_WHEN_WAKE_ABOVE_MICROS) {
        const spinUntil = performance.now() + this.spinMicros / 1000;
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
        if (took >= 0 && took < 1_000_000) this.wakeMicros += (took - this.wakeMicros) / 8;
      }
    }
    this.schedule();
  };
}
