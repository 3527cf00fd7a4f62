/**
 * Main thread. A registration's two steps across the workers — one worker boots the function
 * (start-up code, `init()`) and answers with the snapshot, then every running worker restores
 * from it — and what follows a registration in progress: a worker's answer, a worker started
 * (unparked or replacing a lost one) that must get the function too, and start-up code that
 * runs past `timeoutMs` (interrupted, or its worker replaced).
 */
import { ErrorCode, type NuvolaError } from './errors.js';
import { Control, type FromWorker, type FunctionSpec, type ToWorker } from './protocol.js';
import { NO_INTERRUPT, startUpId } from './snapshot/layout.js';
import { INTERRUPT_GRACE_MS } from './pool-deadlines.js';
import type { PoolCore, Registering, Slot } from './pool-types.js';

/** The registrations in progress, by `seq`. */
export class Registrations {
  private readonly states = new Map<number, Registering>();
  private nextSeq = 1;

  constructor(private readonly core: PoolCore) {}

  /** Whether any registration is in progress. */
  get active(): boolean {
    return this.states.size > 0;
  }

  /** Sends `message(seq)` to `slots` and waits until each has answered or was lost. */
  gather(
    spec: FunctionSpec,
    slots: Slot[],
    message: (seq: number) => ToWorker,
    timeoutMs: number,
    none: () => NuvolaError,
  ): Promise<Registering> {
    const seq = this.nextSeq++;
    return new Promise<Registering>((resolve) => {
      const state: Registering = {
        seq,
        spec,
        message: message(seq),
        snapshot: undefined,
        timeoutMs,
        waiting: new Set(slots),
        began: new Map(),
        error: undefined,
        done: () => resolve(state),
      };
      if (state.waiting.size === 0) {
        state.error = none().toWire();
        state.done();
        return;
      }
      this.states.set(seq, state);
      for (const slot of state.waiting) this.core.post(slot, state.message);
    });
  }

  /**
   * A worker is through with a registration (answered, or was lost). The caller is answered
   * when the last worker is through or, on a timeout, earlier; the state is kept until then so
   * that a worker that reaches a failed registration late is still timed out if it hangs.
   */
  private through(state: Registering, slot: Slot): void {
    state.waiting.delete(slot);
    if (state.waiting.size === 0) {
      this.states.delete(state.seq);
      state.done();
    }
  }

  private sweepOne(state: Registering, now: number): void {
    const stuck: Slot[] = [];
    let late = false;
    for (const slot of state.waiting) {
      // Being stopped already (the sweep comes back before it has exited).
      if (slot.stopReason !== undefined) continue;
      if (Atomics.load(slot.control, Control.REGISTERING) !== state.seq) continue;
      const began = state.began.get(slot) ?? now;
      state.began.set(slot, began);
      if (now - began <= state.timeoutMs) continue;
      late = true;
      // Start-up code (a start function, init()) past its time: instrumented code traps at its
      // next check, and the worker answers the boot and goes on. Otherwise — or when no check
      // comes within INTERRUPT_GRACE_MS — the worker is replaced.
      const id = startUpId(state.seq);
      if (state.message.type === 'boot' && state.spec.layout.interruptible && now - began <= state.timeoutMs + INTERRUPT_GRACE_MS) {
        if (Atomics.exchange(slot.interrupt.word, 0, id) !== id) this.core.counters.interrupts++;
        continue;
      }
      stuck.push(slot);
    }
    if (!late) return;
    const { name } = state.spec;
    const first = state.error === undefined;
    state.error ??= {
      code: ErrorCode.TIMEOUT,
      message: `function '${name}' did not finish starting up within timeoutMs=${state.timeoutMs}; its start-up code or init() may loop`,
      details: { function: name, timeoutMs: state.timeoutMs },
    };
    if (stuck.length === 0) return;
    this.core.counters.terminations += stuck.length;
    // Replace the stuck workers before answering, so the caller sees a pool that serves.
    const stopped = Promise.all(stuck.map((slot) => this.core.stop(slot, `registering '${name}' timed out`)));
    if (first) void stopped.then(state.done);
  }

  /** A worker's `booted` or `registered` answer. */
  answered(slot: Slot, message: Extract<FromWorker, { type: 'booted' | 'registered' }>): void {
    // Start-up code has left Wasm: a word still naming it (set as it finished) goes.
    if (message.type === 'booted') Atomics.compareExchange(slot.interrupt.word, 0, startUpId(message.seq), NO_INTERRUPT);
    const state = this.states.get(message.seq);
    if (state === undefined || !state.waiting.has(slot)) return;
    state.error ??= message.error;
    if (message.type === 'booted') state.snapshot ??= message.snapshot;
    this.through(state, slot);
  }

  /** Workers some registration waits for. */
  busy(): Set<Slot> {
    const busy = new Set<Slot>();
    for (const state of this.states.values()) for (const slot of state.waiting) busy.add(slot);
    return busy;
  }

  /** A worker started again after being parked: a registration between its boot and its end is not in `functions` yet, so it joins it. */
  joinUnparked(fresh: Slot): void {
    for (const state of this.states.values()) {
      if (state.error !== undefined || state.message.type !== 'register') continue;
      state.waiting.add(fresh);
      this.core.post(fresh, state.message);
    }
  }

  /**
   * A worker was lost: it will never answer (or answered for a thread that is gone); its
   * replacement, if any, gets the module too.
   */
  lost(slot: Slot, replacement: Slot | undefined): void {
    for (const state of this.states.values()) {
      // A boot is redone only if it was this worker's: start-up code must run once.
      const mine = state.message.type !== 'boot' || state.waiting.has(slot);
      if (replacement !== undefined && state.error === undefined && mine) {
        state.waiting.add(replacement);
        this.core.post(replacement, state.message);
      }
      if (state.waiting.has(slot)) this.through(state, slot);
    }
  }

  /** Times out the workers past a registration's `timeoutMs`. */
  sweep(now: number): void {
    for (const state of this.states.values()) this.sweepOne(state, now);
  }

  /** The runtime closed: every registration in progress fails with E_CLOSED. */
  close(): void {
    for (const state of this.states.values()) {
      state.error = { code: ErrorCode.CLOSED, message: 'the runtime closed during register()', details: {} };
      state.done();
    }
    this.states.clear();
  }
}
