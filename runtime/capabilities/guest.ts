/**
 * Worker thread. The capabilities' worker halves, each loaded the first time a module that
 * imports it is seen ({@link loadCapabilities}; a worker that only ever runs `nuvola:io`
 * guests never loads WASI), and what instances need of them: the import object (suspending
 * imports wrapped for JSPI), the slots of a new context for the capabilities its module
 * imports, and the end of a call.
 */
import { ErrorCode, TimeoutError } from '../errors.js';
import type { FunctionSpec } from '../protocol.js';
import type { CallEnd, CapabilityDeps, GuestCapability } from './capability.js';
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

/** Each capability's worker half once loaded, by its index in the registry (per thread: code, not state). */
const loaded: (GuestCapability<unknown, unknown> | undefined)[] = CAPABILITIES.map(() => undefined);

/** The registry indices of the capabilities a module imports, worked out once per module. */
const usedBy = new WeakMap<WebAssembly.Module, readonly number[]>();

/** The registry indices of the capabilities `module` imports, in registry order. */
export function capabilitiesOf(module: WebAssembly.Module): readonly number[] {
  let used = usedBy.get(module);
  if (used === undefined) {
    const modules = new Set(WebAssembly.Module.imports(module).map((i) => i.module));
    used = CAPABILITIES.flatMap((c, i) => (modules.has(c.module) ? [i] : []));
    usedBy.set(module, used);
  }
  return used;
}

/**
 * Loads the worker halves of the capabilities `module` imports (every capability when
 * `module` is undefined) that this thread has not loaded yet. Returns undefined when there is
 * nothing to load, so a worker goes on at once with a module it has seen the like of.
 */
export function loadCapabilities(module?: WebAssembly.Module): Promise<void> | undefined {
  const wanted = module === undefined ? CAPABILITIES.map((_, i) => i) : capabilitiesOf(module);
  const missing = wanted.filter((i) => loaded[i] === undefined);
  if (missing.length === 0) return undefined;
  return Promise.all(
    missing.map(async (i) => {
      loaded[i] ??= (await CAPABILITIES[i]!.guest()).default;
    }),
  ).then(() => undefined);
}

function capability(index: number): GuestCapability<unknown, unknown> {
  const guest = loaded[index];
  if (guest === undefined) throw new Error(`nuvola: the capability '${CAPABILITIES[index]!.module}' is used before it was loaded`);
  return guest;
}

/**
 * Adds to `imports` the module of every loaded capability it lacks, bound to `ref` and to the
 * worker's `deps`; suspending imports are wrapped for JSPI. A binding that does not provide
 * exactly its manifest's names is nuvola's own fault, found here rather than at a guest's
 * first call. Returns `imports`.
 */
export function buildImports(
  ref: ContextRef,
  hooks: SuspendHooks,
  deps: CapabilityDeps,
  imports: WebAssembly.Imports = {},
): WebAssembly.Imports {
  loaded.forEach((guest, index) => {
    const manifest: CapabilityManifest = CAPABILITIES[index]!;
    if (guest === undefined || imports[manifest.module] !== undefined) return;
    const bound = guest.bind(ref, (ctx) => ctx.slots[index], deps[manifest.module]);
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

/**
 * The slots of a new instance's context, by registry index: one for each capability its
 * module imports (the others' hooks never run for it).
 */
export function newSlots(spec: FunctionSpec, deps: CapabilityDeps): unknown[] {
  const slots: unknown[] = [];
  for (const index of capabilitiesOf(spec.module)) {
    slots[index] = capability(index).newSlot?.(spec, deps[CAPABILITIES[index]!.module]);
  }
  return slots;
}

/** Tells every capability the instance uses that its call is over, so it releases what the call held. */
export function endCall(ctx: GuestContext, how: CallEnd): void {
  for (const index of ctx.capabilities) loaded[index]!.endCall?.(ctx, ctx.slots[index], how);
}

/** Whether a capability's host work may still write the instance's memory. */
export function busy(ctx: GuestContext): boolean {
  return ctx.capabilities.some((index) => loaded[index]!.busy?.(ctx.slots[index]) === true);
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
