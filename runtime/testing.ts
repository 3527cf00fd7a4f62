/**
 * Hooks for tests of nuvola itself (package entry `nuvola/testing`). Not for production use.
 */
import { POOL, type Runtime } from './runtime.js';

/** Stops worker `index` abruptly, as a crash would. */
export function crashWorker(rt: Runtime, index: number): void {
  rt[POOL].crashWorker(index);
}

/** Resolves once worker `index` is inside a registration (creating its warm instance). */
export async function whenRegistering(rt: Runtime, index: number): Promise<void> {
  while (!rt[POOL].isRegistering(index)) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** Resolves once `predicate` holds, checking every millisecond. */
export async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 1));
}
