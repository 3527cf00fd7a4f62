/**
 * Worker thread. One Instance of a guest function: its memory, its host-import context, and
 * how to run its entry point. Instances whose module can suspend run `main` through
 * `WebAssembly.promising`; the others are called directly, which is cheaper and lets the
 * instance go back to the warm pool the moment `main` returns.
 */
import * as abi from '../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError, LimitError, ModuleError, NuvolaError } from '../errors.js';
import type { GuestContext } from '../host/context.js';
import { buildImports } from '../host/imports.js';
import { newGuestState, releaseState } from '../host/state.js';
import type { FunctionSpec } from '../protocol.js';

export interface SuspendHooks {
  /** Called when the guest suspends in a host import. */
  suspended(ctx: GuestContext): void;
  /** Called right before the guest resumes. */
  resumed(ctx: GuestContext): void;
}

export interface InstanceLimits {
  maxOutputBytes: number;
  /** Log bytes allowed per invocation (and for start-up together). */
  maxLogBytes: number;
}

export class GuestInstance {
  readonly ctx: GuestContext;
  readonly spec: FunctionSpec;
  private readonly maxLogBytes: number;
  private readonly entry: () => number | Promise<number>;

  constructor(spec: FunctionSpec, limits: InstanceLimits, log: (message: string) => void, hooks: SuspendHooks) {
    this.spec = spec;
    this.maxLogBytes = limits.maxLogBytes;
    this.ctx = {
      fn: spec.name,
      memory: undefined,
      input: EMPTY,
      output: undefined,
      maxOutputBytes: limits.maxOutputBytes,
      log,
      logBudget: limits.maxLogBytes,
      invocationId: 0,
      suspensions: 0,
      cancelled: false,
      cancelWaiters: new Set(),
      stateKeys: spec.stateKeys,
      deadline: 0,
      state: newGuestState(),
    };
    const imports = buildImports(this.ctx, hooks);
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(spec.module, imports);
    } catch (err) {
      throw instantiateError(spec.name, err);
    }
    const exports = instance.exports;
    this.ctx.memory = exports[abi.EXPORT_MEMORY] as WebAssembly.Memory;
    try {
      if (spec.hasStart) (exports[abi.EXPORT_START] as () => void)();
      if (spec.hasInit) (exports[abi.EXPORT_INIT] as () => void)();
    } catch (err) {
      throw instantiateError(spec.name, err, this);
    }
    const main = exports[abi.EXPORT_MAIN] as () => number;
    this.entry = spec.suspends ? WebAssembly.promising(main) : main;
  }

  /** Runs `main` once; returns its code, or a promise of it when the module can suspend. */
  call(input: Uint8Array, invocationId: number, deadline: number): number | Promise<number> {
    this.ctx.deadline = deadline;
    this.ctx.input = input;
    this.ctx.output = undefined;
    this.ctx.invocationId = invocationId;
    this.ctx.logBudget = this.maxLogBytes;
    return this.entry();
  }

  /** Releases what a failed invocation held; the instance is not used again. */
  discard(): void {
    releaseState(this.ctx, false);
  }

  /** Stops a suspended invocation for good: waiting host calls return, and the guest traps before it could run again. */
  cancel(): void {
    this.discard();
    this.ctx.cancelled = true;
    for (const wake of [...this.ctx.cancelWaiters]) wake();
  }

  /** Takes the output of the finished call and clears the per-call context. */
  finish(): Uint8Array {
    releaseState(this.ctx, true);
    const output = this.ctx.output ?? new Uint8Array(0);
    this.ctx.input = EMPTY;
    this.ctx.output = undefined;
    this.ctx.invocationId = 0;
    return output;
  }

  /** Turns anything the guest threw into a coded error, recognising a hit memory limit. */
  classify(err: unknown): NuvolaError {
    if (err instanceof NuvolaError) return err;
    const fn = this.spec.name;
    const pages = (this.ctx.memory?.buffer.byteLength ?? 0) / abi.PAGE_SIZE;
    const message = err instanceof Error ? err.message : String(err);
    const frames = wasmFrames(err);
    // AssemblyScript's allocator first tries to double the memory, then to grow by what it
    // needs, and executes `unreachable` when both fail; the engine refuses any growth past the
    // cap set at register. So an `unreachable` with over half the cap in use is, in practice,
    // the allocator running out of room. (A guest's own `unreachable` at that size is
    // reported the same way; the trap text stays in the details.)
    if (err instanceof WebAssembly.RuntimeError && /unreachable/.test(message) && pages * 2 > this.spec.memoryLimitPages) {
      return new LimitError(
        ErrorCode.MEMORY_LIMIT,
        `function '${fn}' trapped (${message}) with its memory at memoryLimitPages=${this.spec.memoryLimitPages}; raise memoryLimitPages in register() if it needs more`,
        { function: fn, trap: message, pages, memoryLimitPages: this.spec.memoryLimitPages, frames },
      );
    }
    if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
      const trap = err instanceof RangeError ? 'call stack exhausted' : message;
      return new GuestError(ErrorCode.GUEST_TRAP, `function '${fn}' trapped: ${trap}`, { function: fn, trap, pages, frames });
    }
    return new GuestError(ErrorCode.GUEST_TRAP, `function '${fn}' failed: ${message}`, { function: fn, trap: message, frames });
  }
}

const EMPTY = new Uint8Array(0);

function wasmFrames(err: unknown): string[] {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  return stack
    .split('\n')
    .filter((line) => line.includes('wasm://'))
    .slice(0, 8)
    .map((line) => line.trim());
}

function instantiateError(fn: string, err: unknown, instance?: GuestInstance): NuvolaError {
  const cause = instance ? instance.classify(err) : undefined;
  const message = cause?.message ?? (err instanceof Error ? err.message : String(err));
  return new ModuleError(ErrorCode.INSTANTIATE_FAILED, `function '${fn}' could not be instantiated: ${message}`, {
    function: fn,
    cause: cause?.toWire(),
  });
}
