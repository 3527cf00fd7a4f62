/**
 * Worker thread (types only). The worker half of a capability: how it binds its imports to
 * what its worker gives it (its `deps`: a channel to its main-thread service, limits — passed
 * in, never set on the module), and the per-instance state it keeps in the context — its slot,
 * which the context holds without knowing its type — with the hook that clears it when a call ends.
 */
import type { FunctionSpec } from '../protocol.js';
import type { ContextRef, GuestContext } from './context.js';

/** Reads a capability's own slot from a context. */
export type Slot<S> = (ctx: GuestContext) => S;

/** How a call ended: `main` returned, it failed (a trap, an error), or it was cancelled while suspended. */
export type CallEnd = 'returned' | 'failed' | 'cancelled';

/**
 * `S`: its per-instance state (slot); `D`: what the worker gives it (runtime/worker/wiring.ts,
 * by import module), undefined where no worker serves it (instances on the main thread,
 * runtime/worker/local.ts).
 */
export interface GuestCapability<S = undefined, D = undefined> {
  /** The capability's state for one instance (its slot), created with the instance. */
  newSlot?(spec: FunctionSpec, deps: D | undefined): S;
  /** The import functions, bound once per worker (or per suspending instance): each reads `ref.ctx` when called. */
  bind(ref: ContextRef, slot: Slot<S>, deps: D | undefined): Record<string, (...args: never[]) => unknown>;
  /** The instance's call is over (also after start-up code, as `failed`): release what it held. */
  endCall?(ctx: GuestContext, state: S, how: CallEnd): void;
  /** Whether host work of this capability may still write the instance's memory (a request in flight). */
  busy?(state: S): boolean;
}

/** Declares a capability's worker half (`export default guestCapability({...})` in its guest.ts). */
export function guestCapability<S = undefined, D = undefined>(capability: GuestCapability<S, D>): GuestCapability<S, D> {
  return capability;
}

/** What a worker gives its capabilities' worker halves: each one's `deps`, by its import module. */
export type CapabilityDeps = Readonly<Record<string, unknown>>;
