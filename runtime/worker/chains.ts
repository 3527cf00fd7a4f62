/**
 * Worker thread. Chained calls (chain.call) a guest on this worker made and is waiting on:
 * those this worker runs itself, by their (negative) request id (those sent to the pool wait
 * on their request, runtime/rpc.ts); and how an outcome reaches the caller, its output counted
 * into the caller's maxChainedOutputBytes budget.
 */
import { ErrorCode } from '../errors.js';
import type { ChainOutcome } from '../capabilities/chain/api.js';
import type { ChainBudget, ChildCall } from '../capabilities/chain/guest.js';
import * as abi from '../../guest/sdk/nuvola/abi.js';

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/** A chained call as the worker tracks it: the callee, and the caller's budget its output counts into. */
export type PendingChild = ChildCall & { resolve: () => void; fn: string; budget: ChainBudget };

export class ChainCalls {
  /** Calls this worker runs itself, by their (negative) request id. */
  private readonly local = new Map<number, PendingChild>();
  private nextLocal = 1;

  constructor(
    private readonly limits: { maxChainedOutputBytes: number; lockHolder: number },
    /** Called when a caller's promise settles: its reaction runs only in the event loop. */
    private readonly answered: () => void,
  ) {}

  /** A new pending call of `fn`, not yet tracked. */
  create(fn: string, budget: ChainBudget): PendingChild {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    return { done, settled: false, returnCode: 0, output: EMPTY, resolve, fn, budget };
  }

  /** Tracks `call` as run on this worker; returns its request id. */
  trackLocal(call: PendingChild): number {
    // Negative, and unique per worker incarnation (the lock holder number is), within an i32.
    const id = -((this.nextLocal++ % 4_000_000) * 512 + this.limits.lockHolder);
    this.local.set(id, call);
    return id;
  }

  /** Answers the caller of a chained call this worker ran itself (the pool learns of it from the results). */
  answerLocal(id: number, outcome: ChainOutcome): void {
    const call = this.local.get(id);
    if (call === undefined) return;
    this.local.delete(id);
    this.answered();
    this.settle(call, outcome);
  }

  settle(call: PendingChild, outcome: ChainOutcome): void {
    const { maxChainedOutputBytes } = this.limits;
    call.settled = true;
    const bytes = outcome.output?.byteLength ?? 0;
    const { budget } = call;
    if (outcome.error === undefined && bytes > 0 && budget.held + bytes > maxChainedOutputBytes) {
      // Dropped here, before the caller can hold it: the caller sees the call fail instead.
      outcome = {
        error: {
          code: ErrorCode.CHAIN_OUTPUT_LIMIT,
          message: `the output of '${call.fn}' (${bytes} bytes) would make '${budget.fn}' hold ${budget.held + bytes} bytes of chained outputs, above maxChainedOutputBytes=${maxChainedOutputBytes}; raise it in createRuntime(), or have callees return less (large results can go through state)`,
          details: { function: budget.fn, callee: call.fn, bytes, heldBytes: budget.held, maxChainedOutputBytes },
        },
      };
    } else if (outcome.error === undefined) {
      budget.held += bytes;
    }
    if (outcome.error !== undefined) {
      call.returnCode = abi.CHAIN_FAILED;
      const message = outcome.error.message.startsWith(outcome.error.code)
        ? outcome.error.message
        : `${outcome.error.code}: ${outcome.error.message}`;
      call.output = encoder.encode(message);
    } else {
      call.returnCode = outcome.returnCode ?? 0;
      call.output = outcome.output ?? EMPTY;
    }
    call.resolve();
  }
}
