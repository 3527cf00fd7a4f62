/**
 * Main thread. The pool's figures for `rt.stats()`: workers, instances and spare memories
 * (from the workers' shared counts), calls in flight, and the pool's running counts.
 */
import { Control } from './protocol.js';
import type { PoolCounters, PoolStats, Slot } from './pool-types.js';

/** `PoolStats` now; `memoryCounts` is the Wasm memories per lock holder number (WorkerData.memoryCounts). */
export function poolStats(slots: readonly Slot[], counters: PoolCounters, memoryCounts: Int32Array, queuedMessageBytes: number): PoolStats {
  let inflight = 0;
  let workers = 0;
  let instances = 0;
  let spareMemories = 0;
  for (const slot of slots) {
    for (const pending of slot.inflight.values()) if (!pending.settled) inflight++;
    if (slot.parked || slot.dead) continue;
    workers++;
    const spares = Atomics.load(slot.control, Control.SPARES);
    instances += Atomics.load(memoryCounts, slot.holder) - spares;
    spareMemories += spares;
  }
  return {
    workers,
    workersParked: counters.parked,
    workerRestarts: counters.restarts,
    interrupts: counters.interrupts,
    timeoutTerminations: counters.terminations,
    instances,
    spareMemories,
    coldStarts: counters.coldStarts,
    warmStarts: counters.warmStarts,
    inflight,
    completed: counters.completed,
    failed: counters.failed,
    queuedMessageBytes,
  };
}
