/**
 * Worker thread. Host imports of module `nuvola:chain`: a guest calling other registered
 * functions. `call` hands the request to the main thread's pool and returns an id at once;
 * `wait` and `output_size` suspend the caller (never its worker) until the callee is done.
 * A callee that fails reaches the caller as `CHAIN_FAILED` with "E_CODE: message" as output.
 * An invocation holds its callees' outputs until it ends; their total is capped by
 * `maxChainedOutputBytes` (the worker counts each output in as it arrives, see ChainBudget).
 */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError } from '../../errors.js';
import { guestBytes, guestWritable, type ContextRef, type GuestContext } from '../context.js';
import { guestCapability, type Slot } from '../capability.js';

/** A call this invocation made, as the worker tracks it. */
export interface ChildCall {
  /** Resolves when the callee's outcome has arrived. */
  readonly done: Promise<void>;
  settled: boolean;
  returnCode: number;
  output: Uint8Array;
}

/** The chained outputs one invocation holds, in bytes; shared by its calls. */
export interface ChainBudget {
  /** The calling function. */
  readonly fn: string;
  held: number;
}

/**
 * What the worker gives chaining: how to start `fn` for the invocation `parent`, whose
 * deadline (wall clock, ms) bounds the callee's; its output is counted into `budget`.
 */
export type ChainDeps = (fn: string, input: Uint8Array, parent: number, parentDeadline: number, budget: ChainBudget) => ChildCall;

const unavailable: ChainDeps = () => {
  throw new Error('chaining is not available in this thread');
};

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Most characters of a callee's name an error repeats (a registered name has at most 128). */
const MAX_NAME_ECHO = 128;

/** An instance's slot: the calls its current invocation made, by id, and their outputs' budget (created on first use). */
interface ChainSlot {
  calls: Map<number, ChildCall> | undefined;
  budget: ChainBudget | undefined;
}

function child(ctx: GuestContext, slot: Slot<ChainSlot>, id: number): ChildCall {
  const call = slot(ctx).calls?.get(id);
  if (call === undefined) {
    throw new GuestError(
      ErrorCode.CHAIN_ID,
      `function '${ctx.fn}' used chain id ${id}, which this invocation did not get from chain.call`,
      { function: ctx.fn, id },
    );
  }
  return call;
}

/** Waits for `call`, or until the invocation is cancelled (the guest then traps on resumption). */
function settled(ctx: GuestContext, call: ChildCall): Promise<void> {
  return new Promise((resolve) => {
    const wake = (): void => {
      ctx.cancelWaiters.delete(wake);
      resolve();
    };
    ctx.cancelWaiters.add(wake);
    void call.done.then(wake);
  });
}

export default guestCapability<ChainSlot, ChainDeps>({
  newSlot: () => ({ calls: undefined, budget: undefined }),
  endCall(_ctx, state) {
    state.calls = undefined;
    state.budget = undefined;
  },
  bind(ref: ContextRef, slot: Slot<ChainSlot>, start = unavailable) {
    return {
      [abi.CHAIN_CALL]: (namePtr: number, nameLen: number, inputPtr: number, inputLen: number): number => {
        const ctx = ref.ctx;
        let name: string;
        try {
          name = decoder.decode(guestBytes(ctx, namePtr, nameLen, 'chain.call'));
        } catch (err) {
          if (err instanceof TypeError)
            throw new GuestError(ErrorCode.GUEST_TRAP, `function '${ctx.fn}' passed chain.call a name that is not UTF-8`);
          throw err;
        }
        if (ctx.callees !== undefined && !ctx.callees.includes(name)) {
          const echo = name.length <= MAX_NAME_ECHO ? name : `${name.slice(0, MAX_NAME_ECHO)}…`;
          throw new GuestError(
            ErrorCode.CHAIN_DENIED,
            `function '${ctx.fn}' may not call '${echo}'; register it with callees including it`,
            { function: ctx.fn, callee: echo },
          );
        }
        const input = guestBytes(ctx, inputPtr, inputLen, 'chain.call').slice();
        const state = slot(ctx);
        state.calls ??= new Map();
        state.budget ??= { fn: ctx.fn, held: 0 };
        const id = state.calls.size + 1;
        state.calls.set(id, start(name, input, ctx.invocationId, ctx.deadline, state.budget));
        return id;
      },
      [abi.CHAIN_WAIT]: (id: number): number | Promise<number> => {
        const ctx = ref.ctx;
        const call = child(ctx, slot, id);
        if (call.settled) return call.returnCode;
        return settled(ctx, call).then(() => call.returnCode);
      },
      [abi.CHAIN_OUTPUT_SIZE]: (id: number): number | Promise<number> => {
        const ctx = ref.ctx;
        const call = child(ctx, slot, id);
        if (call.settled) return call.output.byteLength;
        return settled(ctx, call).then(() => call.output.byteLength);
      },
      [abi.CHAIN_OUTPUT_READ]: (id: number, ptr: number, len: number): number => {
        const ctx = ref.ctx;
        const call = child(ctx, slot, id);
        const n = call.settled ? Math.min(len >>> 0, call.output.byteLength) : 0;
        guestWritable(ctx, ptr, n, 'chain.output_read').set(call.output.subarray(0, n));
        return n;
      },
    };
  },
});
