/**
 * Hooks for tests of nuvola itself (package entry `nuvola/testing`). Not for production use.
 */
import type { Runtime } from './runtime.js';

/** Stops worker `index` abruptly, as a crash would. */
export function crashWorker(rt: Runtime, index: number): void {
  rt.crashWorkerForTesting(index);
}
