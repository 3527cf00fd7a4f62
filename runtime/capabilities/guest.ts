/**
 * Worker thread. The capabilities' worker halves, loaded once per thread from the registry
 * ({@link loadCapabilities}), and what instances need of them: the import object (suspending
 * imports wrapped for JSPI), each capability's slot of a new context, and the end of a call.
 */
import { ErrorCode, TimeoutError } from '../errors.js';
import type { FunctionSpec } from '../protocol.js';
import type { CallEnd, GuestCapability } from './capability.js';
import type { ContextRef, GuestContext } from './context.js';
import type { CapabilityManifest } from './manifest.js';
import { CAPABILITIES } from './registry.js';

/** What the worker does when an instance suspends in a host import and resumes. */
export interface SuspendHooks {
  /** Called when the guest suspends in a host import. */
  suspended(ctx: GuestContext): void;
  /** Called right before the guest resumes. */
  resumed(ctx: GuestContext): void;
}

interface Loaded {
  manifest: CapabilityManifest;
  guest: GuestCapability<unknown>;
}

let loaded: readonly Loaded[] | undefined;

/**
 * Loads every capability's worker half. Awaited once by each thread that runs instances
 * before it creates any. A binding that does not provide exactly its manifest's names is
 * nuvola's own fault, found here rather than at a guest's first call.
 */
export async function loadCapabilities(): Promise<void> {
  if (loaded !== undefined) return;
  const guests = await Promise.all(CAPABILITIES.map((c) => c.guest()));
  loaded = CAPABILITIES.map((manifest, i) => ({ manifest, guest: guests[i]!.default as GuestCapability<unknown> }));
}

function capabilities(): readonly Loaded[] {
  if (loaded === undefined) throw new Error('nuvola: loadCapabilities() must finish before instances are created');
  return loaded;
}

/** The import object of instances on a worker; suspending imports are wrapped for JSPI. */
export function buildImports(ref: ContextRef, hooks: SuspendHooks): WebAssembly.Imports {
  const imports: WebAssembly.Imports = {};
  capabilities().forEach(({ manifest, guest }, index) => {
    const bound = guest.bind(ref, (ctx) => ctx.slots[index]);
    const names = Object.keys(manifest.imports);
    if (names.length !== Object.keys(bound).length || names.some((n) => bound[n] === undefined)) {
      throw new Error(`nuvola: the imports of '${manifest.module}' do not match its manifest`);
    }
    const moduleImports: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(manifest.imports)) {
      const fn = bound[name] as (...args: unknown[]) => unknown;
      moduleImports[name] = spec.suspends ? suspending(ref, hooks, fn) : fn;
    }
    imports[manifest.module] = moduleImports as WebAssembly.ModuleImports;
  });
  return imports;
}

/** Each capability's slot of a new instance's context, by its index in the registry. */
export function newSlots(spec: FunctionSpec): unknown[] {
  return capabilities().map(({ guest }) => guest.newSlot?.(spec));
}

/** Tells every capability that the instance's call is over, so it releases what the call held. */
export function endCall(ctx: GuestContext, how: CallEnd): void {
  capabilities().forEach(({ guest }, index) => guest.endCall?.(ctx, ctx.slots[index], how));
}

/** Whether a capability's host work may still write the instance's memory. */
export function busy(ctx: GuestContext): boolean {
  return capabilities().some(({ guest }, index) => guest.busy?.(ctx.slots[index]) === true);
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
    if (ctx.cancelled) throw new TimeoutError(ErrorCode.TIMEOUT, `function '${ctx.fn}' was cancelled`, { function: ctx.fn });
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
