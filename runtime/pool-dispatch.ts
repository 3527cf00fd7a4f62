/**
 * Main thread. Dispatch: which worker a call goes to (the least loaded, the function's home on
 * a tie, a group's packed worker, a parked worker started when every running one is busy), and
 * the outboxes, sent as one batch per worker at the end of the turn. Prewarming picks workers
 * the same way.
 */
import { ErrorCode, makeError, type NuvolaError } from './errors.js';
import type { Group, Pending, PoolCore, Slot } from './pool-types.js';

/** What dispatch needs of the rest of the pool. */
export interface DispatchHost extends PoolCore {
  /** The running group `id`. */
  group(id: number): Group | undefined;
  /** Starts a parked worker again; returns its new slot. */
  unpark(slot: Slot): Slot;
}

export class Dispatch {
  /**
   * Per function, the worker that last ran it or was asked to prewarm it: it likely holds a
   * warm instance, so it wins a tie between equally loaded workers.
   */
  private readonly home = new Map<string, number>();
  /** Where the next prewarm goes, so that the stages of a chain spread over the workers. */
  private prewarmCursor = 0;
  private flushQueued = false;

  constructor(private readonly host: DispatchHost) {}

  /** `fn` was unregistered: it has no home any more. */
  forget(fn: string): void {
    this.home.delete(fn);
  }

  /**
   * Asks the running workers to restore `count` idle instances of `fn` each, in time they
   * have no call to run — ahead of a call the caller knows is coming. Starts a parked worker
   * when none runs.
   */
  prewarm(fn: string, count: number): void {
    if (!this.host.functions.has(fn)) return;
    if (this.live().length === 0) this.pick();
    const running = this.live();
    if (running.length === 0) return;
    // Spread `count` instances over the workers, starting where the last prewarm stopped;
    // the first one becomes the function's home, where its next call goes on a tie.
    const share = new Map<Slot, number>();
    for (let i = 0; i < count; i++) {
      const slot = running[(this.prewarmCursor + i) % running.length]!;
      share.set(slot, (share.get(slot) ?? 0) + 1);
    }
    this.home.set(fn, running[this.prewarmCursor % running.length]!.index);
    this.prewarmCursor = (this.prewarmCursor + 1) % running.length;
    for (const [slot, n] of share) this.host.post(slot, { type: 'prewarm', fn, count: n });
  }

  /**
   * Warms the later stages of a chain on the worker the first stage will run on, and makes it
   * every stage's home: a sequential chain then stays on one worker, which is awake (spinning
   * for the next call) when each stage arrives, and restores the next stages' instances in
   * the gaps between them.
   */
  prewarmChain(stages: string[]): void {
    const first = stages[0];
    if (first === undefined || !this.host.functions.has(first)) return;
    const slot = this.pick(first);
    if (slot === undefined) return;
    for (const fn of new Set(stages.slice(1))) {
      if (!this.host.functions.has(fn)) continue;
      this.home.set(fn, slot.index);
      this.host.post(slot, { type: 'prewarm', fn, count: 1 });
    }
  }

  /** Workers that can take work: running, and not being stopped unless all are. */
  live(): Slot[] {
    const alive = this.host.slots.filter((slot) => !slot.dead && !slot.parked);
    const healthy = alive.filter((slot) => slot.stopReason === undefined);
    return healthy.length > 0 ? healthy : alive;
  }

  noWorkers(): NuvolaError {
    return makeError(
      ErrorCode.WORKER_LOST,
      'no worker thread could start (each died before coming online); check the warnings in the log — the build in dist/ may be missing or broken',
    );
  }

  /**
   * The worker with the fewest calls in flight. A parked worker is started when none runs, or
   * when every running one is busy.
   */
  pick(fn?: string): Slot | undefined {
    // The common case, every worker healthy, without allocating; live() otherwise.
    let best: Slot | undefined;
    let healthy = true;
    let parked: Slot | undefined;
    for (const slot of this.host.slots) {
      if (slot.parked) parked ??= slot;
      else if (slot.dead || slot.stopReason !== undefined) healthy = false;
      else if (best === undefined || slot.inflight.size < best.inflight.size) best = slot;
    }
    if (!healthy || best === undefined) {
      for (const slot of this.live()) if (best === undefined || slot.inflight.size < best.inflight.size) best = slot;
    }
    if (parked !== undefined && (best === undefined || best.inflight.size > 0)) best = this.host.unpark(parked);
    if (fn !== undefined && best !== undefined) {
      const homeIndex = this.home.get(fn);
      const home = homeIndex === undefined ? undefined : this.host.slots[homeIndex];
      if (home !== undefined && home !== best && home.inflight.size <= best.inflight.size && this.healthy(home)) best = home;
      if (homeIndex !== best.index) this.home.set(fn, best.index);
    }
    return best;
  }

  healthy(slot: Slot): boolean {
    return !slot.parked && !slot.dead && slot.stopReason === undefined;
  }

  dispatch(pending: Pending): void {
    const packedGroup = pending.request.group === undefined ? undefined : this.host.group(pending.request.group.id);
    const packed = packedGroup?.packed;
    const best =
      packed !== undefined && this.healthy(packed) && this.host.slots[packed.index] === packed ? packed : this.pick(pending.request.fn);
    if (best === undefined) {
      this.host.fail(pending, this.noWorkers());
      return;
    }
    const group = pending.request.group;
    if (group !== undefined) {
      const state = this.host.group(group.id);
      // A rank moved to another worker (its first one was lost before it started) would miss
      // messages already routed there: the group fails instead.
      if (state === undefined || state.aborted || state.slots[group.rank] !== undefined) {
        this.host.fail(
          pending,
          makeError(ErrorCode.WORKER_LOST, `rank ${group.rank} of a group of '${pending.request.fn}' lost its worker before it started`, {
            function: pending.request.fn,
            rank: group.rank,
          }),
        );
        return;
      }
      state.slots[group.rank] = best;
      // Every rank's request shares this array; they are all sent after all are dispatched.
      group.workers[group.rank] = best.index;
    }
    pending.position = best.sent++;
    best.inflight.set(pending.request.id, pending);
    best.outbox.push(pending.request);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush(): void {
    this.flushQueued = false;
    for (const slot of this.host.slots) {
      if (slot.outbox.length === 0) continue;
      const batch = slot.outbox;
      slot.outbox = [];
      this.host.post(slot, { type: 'invoke', batch });
    }
  }
}
