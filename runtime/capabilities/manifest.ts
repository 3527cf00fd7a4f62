/**
 * Worker and main thread. The ABI as data: what a capability declares — its import module,
 * each function's Wasm signature and whether it may suspend the guest — and what `register`
 * derives from all of them (registry.ts lists them). Loads no capability's implementation:
 * the main thread checks modules without loading the workers' code.
 */
import type { GuestCapability } from './capability.js';

/** One host function: its signature as {@link formatSignature} writes it, and whether it may suspend. */
export interface ImportSpec {
  /** `(params) -> (results)`, e.g. `(i32, i32) -> (i32)`. */
  readonly signature: string;
  /** Whether the guest may suspend in it (then `main` runs through JSPI). */
  readonly suspends: boolean;
}

/** A capability as data. Its worker half (`guest`) is loaded only where instances run. */
export interface CapabilityManifest {
  /** The Wasm import module, e.g. `nuvola:io`. */
  readonly module: string;
  readonly imports: Readonly<Record<string, ImportSpec>>;
  /** Its worker half (guest.ts), loaded by the worker entry: see runtime/capabilities/guest.ts. */
  readonly guest: () => Promise<{ default: GuestCapability<unknown, unknown> }>;
}

/** An import that answers at once. `signature`: `(params) -> (results)`. */
export function fn(signature: string): ImportSpec {
  return { signature, suspends: false };
}

/** An import that may suspend the guest until its answer comes. */
export function waits(signature: string): ImportSpec {
  return { signature, suspends: true };
}
