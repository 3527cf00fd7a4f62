/**
 * Main thread. What the cluster needs from the runtime of its host: a port the cluster
 * declares and `runtime/runtime.ts` adapts (the cluster imports nothing of the pool or the
 * runtime; the pool's own group-part type has the same shape as {@link RemotePart}).
 */
import type { NuvolaError } from '../runtime/errors.js';

/** Where a group's ranks run when some are on other hosts: the ranks this host runs. */
export interface RemotePart {
  /** The ranks that run on this host's pool; messages to the others go through `send`. */
  ranks: number[];
  /** Carries a message to a rank on another host. */
  send(from: number, to: number, data: SharedArrayBuffer): void;
  /** Called once when a rank here fails and ends the group (not for an abort from elsewhere). */
  aborted(error: NuvolaError): void;
  /** Set by the pool when the part starts: the id `deliver` and `abortPart` take. */
  id?: number;
}

/** What the cluster needs from the runtime of its host. */
export interface LocalHost {
  workers: number;
  /** The timeout of a function registered without one, in ms (`FUNCTION_DEFAULTS.timeoutMs`). */
  defaultTimeoutMs: number;
  /** The content hash of `name`'s code when it is registered here as a module, else undefined. */
  hashOf(name: string): string | undefined;
  /**
   * Registers code fetched from the cluster's registry; with `replace`, in place of code
   * fetched before under the name (never of code registered on this host).
   */
  registerFetched(name: string, bytes: Uint8Array, options: Record<string, unknown>, replace: boolean): Promise<void>;
  /** Whether this host's local state tier holds `key`. */
  holds(key: string): boolean;
  /** Runs a registered function on this host's pool. */
  run(name: string, input: Uint8Array, timeoutMs: number): Promise<{ output: Uint8Array; returnCode: number }>;
  /** Runs some ranks of a group whose other ranks are on other hosts. */
  runPart(
    name: string,
    size: number,
    input: Uint8Array,
    timeoutMs: number,
    part: RemotePart,
  ): Promise<{ output: Uint8Array; returnCode: number }[]>;
  /** A message from a rank on another host to a rank of the part `id`. */
  deliver(id: number, from: number, to: number, data: SharedArrayBuffer): void;
  /** A rank on another host failed: the part `id` stops. */
  abortPart(id: number, error: NuvolaError): void;
  log(level: 'info' | 'warn', message: string): void;
}
