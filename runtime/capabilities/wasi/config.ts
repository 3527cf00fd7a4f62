/**
 * Both threads. What a registration grants its WASI guest, as the main thread resolves it
 * (runtime/options.ts) and the worker's descriptor table uses it (fd-table.ts): plain data, so
 * the main thread reads it without loading the WASI implementation.
 */

/** A directory a registration grants: `host` (absolute, resolved) appears to the guest as `guest`. */
export interface WasiDir {
  host: string;
  guest: string;
  writable: boolean;
}

/** What a registration sets for its WASI guest (resolved and checked on the main thread). */
export interface WasiConfig {
  /** argv[1..]; argv[0] is the function's name. */
  args: string[];
  /** `NAME=value` pairs. */
  env: string[];
  dirs: WasiDir[];
}

export const NO_WASI: WasiConfig = { args: [], env: [], dirs: [] };
