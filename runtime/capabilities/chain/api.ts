/**
 * Both threads. What a worker asks the main thread's pool on behalf of a guest's chain.call
 * (runtime/rpc.ts), answered by runtime/pool-requests.ts.
 */
import type { WireError } from '../../errors.js';

/** How a chained call ended: its return code and output, or the error the caller sees as `CHAIN_FAILED`. */
export interface ChainOutcome {
  returnCode?: number;
  /** Absent when empty. */
  output?: Uint8Array;
  error?: WireError;
}

export interface ChainApi {
  /** Runs `fn` with `input` for the invocation `parent` (its deadline bounds the callee's), anywhere. Never rejects. */
  call(fn: string, input: Uint8Array, parent: number): ChainOutcome;
  /**
   * A notice (no answer): the worker runs the chained call `id` of `fn` itself (an InvokeRequest
   * with `local`), so the pool watches its deadline, counts and traces it; the worker answers
   * the caller.
   */
  ranHere(id: number, fn: string, parent: number, deadline: number, timeoutMs: number, suspends: boolean): void;
}
