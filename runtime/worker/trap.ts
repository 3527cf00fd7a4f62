/**
 * Worker thread. The errors an Instance ends with: a guest's trap, exit or thrown error turned
 * into a coded error (an interruption at the deadline or for CPU, fuel run out, a memory limit
 * hit, a trap with its guest source position), and the errors of instantiation and of the
 * instance limit.
 */
import * as abi from '../../guest/sdk/nuvola/abi.js';
import { mapFrames, ownFrame } from '../source-map.js';
import { ErrorCode, GuestError, LimitError, ModuleError, NuvolaError, TimeoutError } from '../errors.js';
import type { GuestContext } from '../capabilities/context.js';
import { WasiExit } from '../capabilities/wasi/exit.js';
import type { FunctionSpec } from '../protocol.js';
import { interrupted, type Interrupt } from './interrupt.js';
import { stoppedForCpu } from './meter.js';

/** What {@link classifyTrap} looks at of the instance the error came from. */
export interface TrapSite {
  spec: FunctionSpec;
  interrupt: Interrupt;
  ctx: GuestContext;
  /** The fuel counter, for a function registered with `fuel`. */
  fuel: WebAssembly.Global | undefined;
  /** Whether the instance was in a call (not in start-up code). */
  calling: boolean;
}

/** Turns anything the guest threw into a coded error, recognising a hit memory limit. */
export function classifyTrap(err: unknown, site: TrapSite): NuvolaError {
  if (err instanceof NuvolaError) return err;
  const fn = site.spec.name;
  // The interruption check trapped: the pool asked this call to stop at its deadline (a
  // component's glue may hand the trap on as another error).
  if (!(err instanceof WasiExit) && interrupted(site.interrupt, site.ctx.invocationId)) {
    if (stoppedForCpu(site.interrupt, site.ctx.invocationId)) {
      const cpuMs = site.ctx.meter.cpuMicros / 1000;
      const limit = site.spec.cpuLimitMs;
      return new LimitError(
        ErrorCode.CPU_LIMIT,
        `function '${fn}' used more than cpuLimitMs=${limit} of CPU (${cpuMs.toFixed(1)} ms when it was stopped); raise cpuLimitMs in register() or do less per call. Its worker goes on`,
        { function: fn, cpuLimitMs: limit, cpuMs },
      );
    }
    return new TimeoutError(ErrorCode.TIMEOUT, `function '${fn}' ran past its deadline and was interrupted; its worker goes on`, {
      function: fn,
      interrupted: true,
    });
  }
  // The fuel counter went below zero: the rewritten code trapped (`unreachable`).
  if (site.fuel !== undefined && (site.fuel.value as bigint) < 0n && !(err instanceof WasiExit)) {
    return new LimitError(
      ErrorCode.FUEL_EXHAUSTED,
      `function '${fn}' consumed its fuel=${site.spec.fuel} (one unit per function entry and loop iteration); raise fuel in register() or do less per call`,
      { function: fn, fuel: site.spec.fuel },
    );
  }
  if (err instanceof WasiExit) {
    const where = site.calling
      ? "in a call: only a WASI command (abi 'wasi') ends a call with proc_exit; an SDK guest returns its code from main()"
      : 'during start-up (its start function or init()), which cannot end with an exit code';
    return new GuestError(ErrorCode.GUEST_TRAP, `function '${fn}' called proc_exit(${err.code}) ${where}`, {
      function: fn,
      exitCode: err.code,
    });
  }
  const pages = (site.ctx.memory?.buffer.byteLength ?? 0) / abi.PAGE_SIZE;
  const message = err instanceof Error ? err.message : String(err);
  const frames = mapFrames(err instanceof Error ? (err.stack ?? '') : '', site.spec.sources);
  const own = ownFrame(frames);
  const at = own === undefined ? '' : ` at ${own}`;
  // AssemblyScript's allocator first tries to double the memory, then to grow by what it
  // needs, and executes `unreachable` when both fail; the engine refuses any growth past the
  // cap set at register. So an `unreachable` with over half the cap in use is, in practice,
  // the allocator running out of room. (A guest's own `unreachable` at that size is
  // reported the same way; the trap text stays in the details.)
  if (err instanceof WebAssembly.RuntimeError && /unreachable/.test(message) && pages * 2 > site.spec.memoryLimitPages) {
    return new LimitError(
      ErrorCode.MEMORY_LIMIT,
      `function '${fn}' trapped (${message}) with its memory at memoryLimitPages=${site.spec.memoryLimitPages}; raise memoryLimitPages in register() if it needs more`,
      { function: fn, trap: message, pages, memoryLimitPages: site.spec.memoryLimitPages, frames },
    );
  }
  if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
    const trap = err instanceof RangeError ? 'call stack exhausted' : message;
    return new GuestError(ErrorCode.GUEST_TRAP, `function '${fn}' trapped: ${trap}${at}`, { function: fn, trap, pages, frames });
  }
  return new GuestError(ErrorCode.GUEST_TRAP, `function '${fn}' failed: ${message}${at}`, { function: fn, trap: message, frames });
}

/** V8's message when Wasm calls a suspending import outside `WebAssembly.promising` (start-up code, `init`). */
const SUSPEND_OUTSIDE_PROMISING = /trying to suspend without WebAssembly\.promising/;

export function instantiateError(fn: string, err: unknown, instance?: { classify(err: unknown): NuvolaError }): NuvolaError {
  const raw = err instanceof Error ? err.message : String(err);
  if (SUSPEND_OUTSIDE_PROMISING.test(raw)) {
    return new ModuleError(
      ErrorCode.INSTANTIATE_FAILED,
      `function '${fn}' could not be instantiated: its init() or top-level code called a host function that waits ` +
        '(sleep, a state pull, push or lock, chain.wait, a message or a kernel), which cannot suspend while the function is registered; ' +
        'do that in main(), or give the value to init() some other way',
      { function: fn, reason: 'suspended-in-init' },
    );
  }
  const cause = instance ? instance.classify(err) : undefined;
  const message = cause?.message ?? raw;
  return new ModuleError(ErrorCode.INSTANTIATE_FAILED, `function '${fn}' could not be instantiated: ${message}`, {
    function: fn,
    cause: cause?.toWire(),
  });
}

export function instanceLimitError(fn: string, why: string): LimitError {
  return new LimitError(
    ErrorCode.INSTANCE_LIMIT,
    `function '${fn}' needs a new instance, but ${why}. Each live instance holds a Wasm memory and a process holds about 16k; ` +
      'lower maxIdleInstances or idleTimeoutMs so idle instances are released sooner, limit concurrent calls, or spread the load over more processes',
    { function: fn },
  );
}
