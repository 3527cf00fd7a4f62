/**
 * Worker and main thread. The registry of host capabilities: what the ABI provides (checked
 * at `register`), which imports may suspend (those make `main` run through JSPI), and the
 * import object of one instance.
 */
import { ErrorCode, GuestError } from '../errors.js';
import type { ContextRef } from './context.js';
import type { SuspendHooks } from '../worker/instance.js';
import { chainImports } from './chain/guest.js';
import { commImports } from './comm/guest.js';
import { env } from './env/guest.js';
import { io } from './io/guest.js';
import { kernelImports } from './kernels/guest.js';
import { stateImports } from './state/guest.js';
import { wasiImports } from './wasi/guest.js';

/** One import module: its function names (true where the import may suspend) and their binding. */
export interface Capability {
  module: string;
  functions: Record<string, boolean>;
  /** The import functions, bound once per worker: each reads `ref.ctx` when called. */
  bind(ref: ContextRef): Record<string, (...args: never[]) => unknown>;
}

const CAPABILITIES: readonly Capability[] = [io, stateImports, chainImports, commImports, kernelImports, env, wasiImports];

export { PROVIDED_IMPORTS, SUSPENDING_IMPORTS } from './manifest.js';

/** The import object of every instance on a worker; suspending imports are wrapped for JSPI. */
export function buildImports(ref: ContextRef, hooks: SuspendHooks): WebAssembly.Imports {
  const imports: WebAssembly.Imports = {};
  for (const capability of CAPABILITIES) {
    const bound = capability.bind(ref);
    const moduleImports: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(bound)) {
      moduleImports[name] = capability.functions[name] ? suspending(ref, hooks, fn as (...args: unknown[]) => unknown) : fn;
    }
    imports[capability.module] = moduleImports as WebAssembly.ModuleImports;
  }
  return imports;
}

/**
 * Wraps a host call that may wait. When it answers synchronously the guest goes on without
 * suspending (JSPI only suspends on a promise); when it returns a promise the guest suspends
 * and, on resumption, traps instead if its invocation was cancelled meanwhile.
 */
function suspending(ref: ContextRef, hooks: SuspendHooks, fn: (...args: unknown[]) => unknown): WebAssembly.Suspending {
  return new WebAssembly.Suspending((...args: unknown[]) => {
    const ctx = ref.ctx;
    // A guest may catch the trap of its cancellation (a `catch_all` around the host call) and
    // call again: it must not suspend again, since nothing would resume it — its stack, its
    // instance and its memory would stay alive for good (one leak per timed-out call).
    if (ctx.cancelled) throw new GuestError(ErrorCode.TIMEOUT, `function '${ctx.fn}' was cancelled`, { function: ctx.fn });
    const value = fn(...args);
    // JSPI suspends on a plain value too (the guest resumes in a microtask, after run() has
    // returned): treat it like any other suspension.
    const result = value instanceof Promise ? value : Promise.resolve(value);
    ctx.suspensions++;
    hooks.suspended(ctx);
    return result.then(
      (value: unknown) => {
        hooks.resumed(ctx);
        return value;
      },
      (err: unknown) => {
        hooks.resumed(ctx);
        throw err;
      },
    );
  });
}
