/**
 * Worker thread (types only). The worker half of a capability: how it binds its imports, and
 * the per-instance state it keeps in the context — its slot, which the context holds without
 * knowing its type — with the hook that clears it when a call ends.
 */
import type { FunctionSpec } from '../protocol.js';
import type { ContextRef, GuestContext } from './context.js';

/** Reads a capability's own slot from a context. */
export type Slot<S> = (ctx: GuestContext) => S;

/** How a call ended: `main` returned, it failed (a trap, an error), or it was cancelled while suspended. */
export type CallEnd = 'returned' | 'failed' | 'cancelled';

export interface GuestCapability<S = undefined> {
  /** The capability's state for one instance (its slot), created with the instance. */
  newSlot?(spec: FunctionSpec): S;
  /** The import functions, bound once per worker (or per suspending instance): each reads `ref.ctx` when called. */
  bind(ref: ContextRef, slot: Slot<S>): Record<string, (...args: never[]) => unknown>;
  /** The instance's call is over (also after start-up code, as `failed`): release what it held. */
  endCall?(ctx: GuestContext, state: S, how: CallEnd): void;
  /** Whether host work of this capability may still write the instance's memory (a request in flight). */
  busy?(state: S): boolean;
}

/** Declares a capability's worker half (`export default guestCapability({...})` in its guest.ts). */
export function guestCapability<S = undefined>(capability: GuestCapability<S>): GuestCapability<S> {
  return capability;
}
