/**
 * Main thread. The two pieces of cluster mode a runtime needs before (or without) joining a
 * cluster, apart from the rest of `cluster/` so that loading the package does not load it:
 * the content hash modules are stored under, and an outcome as its caller sees it.
 */
import { createHash } from 'node:crypto';
import { fromWire } from '../runtime/errors.js';
import type { Outcome } from './codec.js';

/** The content hash the cluster stores a module's bytes under. */
export function moduleHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** An outcome as the caller sees it: the result, or the rebuilt error thrown. */
export function settle(outcome: Outcome): { output: Uint8Array; returnCode: number; host?: string } {
  if ('error' in outcome) throw fromWire(outcome.error);
  return outcome;
}
