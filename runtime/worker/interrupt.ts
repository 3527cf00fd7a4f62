/**
 * Any thread. A worker's interrupt word (runtime/snapshot/layout.ts, IMPORT_INTERRUPT): one
 * shared Wasm page, created by the pool (which writes the id of a call to stop) and imported by
 * every instance on the worker (whose code checks it at function entries and loop headers).
 * Guest code reads only this word; the page's next words carry the running call's CPU figures
 * (meter.ts, words 1–4) and its deadline for the deadline watchdog (deadline-watch.ts, word 8
 * and the Float64 at byte 40).
 */
import { NO_INTERRUPT } from '../snapshot/layout.js';

export interface Interrupt {
  readonly memory: WebAssembly.Memory;
  /** Its first i32: the id of the call to stop, or NO_INTERRUPT. */
  readonly word: Int32Array;
}

/** A new interrupt word naming no call. */
export function newInterrupt(): Interrupt {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  return wrapInterrupt(memory);
}

/** The word of an interrupt memory received from another thread. */
export function wrapInterrupt(memory: WebAssembly.Memory): Interrupt {
  const word = new Int32Array(memory.buffer, 0, 1);
  // A fresh page reads 0, which an unarmed instance (armed id 0) would take as meant for it.
  Atomics.compareExchange(word, 0, 0, NO_INTERRUPT);
  return { memory, word };
}

/** Whether the word names call `id` (which then trapped because of it). */
export function interrupted(interrupt: Interrupt, id: number): boolean {
  return id !== 0 && Atomics.load(interrupt.word, 0) === id;
}
