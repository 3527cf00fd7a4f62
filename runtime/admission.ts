/**
 * Main thread. A function's `maxConcurrency`: how many of its calls run now — one Int32 shared
 * with every worker (FunctionSpec.concurrency), which takes a slot itself for a chained call it
 * runs — and the calls or groups waiting for slots, in the order they came. Only this side
 * gives slots back.
 */
import type { NuvolaError } from './errors.js';

/** What a waiting call or group is told. */
export interface AdmissionHandlers {
  grant(): void;
  /** Its deadline passed (`error` undefined: the caller reports its timeout), or the runtime closed. */
  expire(error?: NuvolaError): void;
}

interface Waiter extends AdmissionHandlers {
  /** Slots it needs: 1 for a call, a group's ranks for a group. */
  n: number;
  deadline: number;
  done: boolean;
}

/** One function's calls under its `maxConcurrency`. */
export interface ConcurrencyStats {
  /** Calls running now (holding a slot). */
  running: number;
  /** Calls (and groups, counted once) waiting for a slot. */
  waiting: number;
  maxConcurrency: number;
}

export class Admission {
  private readonly running: Int32Array;
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly limit: number,
    running: SharedArrayBuffer,
  ) {
    this.running = new Int32Array(running);
  }

  /** Takes `n` slots now if they are free and nobody waits before; false otherwise (nothing taken). */
  tryTake(n: number): boolean {
    if (this.waiting.length > 0) return false;
    for (;;) {
      const running = Atomics.load(this.running, 0);
      if (running + n > this.limit) return false;
      if (Atomics.compareExchange(this.running, 0, running, running + n) === running) return true;
    }
  }

  /** Queues a request for `n` slots until `deadline` ({@link wallClock} ms); see {@link tryTake} first. */
  wait(n: number, deadline: number, on: AdmissionHandlers): void {
    this.waiting.push({ n, deadline, done: false, grant: on.grant, expire: on.expire });
  }

  /** Gives back `n` slots and lets waiting requests in, in order. */
  give(n: number): void {
    Atomics.sub(this.running, 0, n);
    this.admitWaiting();
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0) {
      const head = this.waiting[0]!;
      if (!head.done) {
        const running = Atomics.load(this.running, 0);
        if (running + head.n > this.limit) return;
        if (Atomics.compareExchange(this.running, 0, running, running + head.n) !== running) continue;
      }
      this.waiting.shift();
      if (head.done) continue;
      head.done = true;
      head.grant();
    }
  }

  /** Expires requests whose deadline has passed, then lets those behind them in. */
  sweep(now: number): void {
    if (!this.waiting.some((w) => !w.done && now >= w.deadline)) return;
    for (const waiter of this.waiting.splice(0)) {
      if (waiter.done) continue;
      if (now < waiter.deadline) {
        this.waiting.push(waiter);
        continue;
      }
      waiter.done = true;
      waiter.expire();
    }
    this.admitWaiting();
  }

  /** Ends every waiting request: with `error`, or (undefined) by granting it without a slot — it will not need one. */
  drain(error?: NuvolaError): void {
    for (const waiter of this.waiting.splice(0)) {
      if (waiter.done) continue;
      waiter.done = true;
      if (error === undefined) waiter.grant();
      else waiter.expire(error);
    }
  }

  /** Calls (and groups, counted once) waiting for a slot. */
  get waitingCount(): number {
    let n = 0;
    for (const w of this.waiting) if (!w.done) n++;
    return n;
  }

  stats(): ConcurrencyStats {
    return {
      running: Atomics.load(this.running, 0),
      waiting: this.waiting.filter((w) => !w.done).length,
      maxConcurrency: this.limit,
    };
  }
}
