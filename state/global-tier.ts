/**
 * The global tier: where values become durable and visible to every host. Two
 * implementations: {@link RedisTier} (state/redis-tier.ts) and {@link MemoryTier}
 * (state/memory-tier.ts, the single-host default). Both pass the same test suite.
 */

import { StateError, StateErrorCode } from './errors.js';

/** The error of an atomic counter operation on a value that is not an i64 (8 bytes). */
export function counterShape(key: string, op: string, size: number): StateError {
  return new StateError(
    StateErrorCode.BOUNDS,
    `${op} on '${key.length > 64 ? `${key.slice(0, 64)}…` : key}': the value is ${size} bytes, not an i64 (8 bytes); atomic counters need a key that holds one (or none)`,
    { key, op, size },
  );
}

/** A global lock held by one caller until `expiresAt` (ms since the epoch). */
export interface Lease {
  key: string;
  mode: 'read' | 'write';
  /** Identifies the holder; needed to release and to write under the lease. */
  token: string;
  /** Monotonic per key across all holders (write leases); a write carrying a smaller fence than one already seen is refused. */
  fence: number;
  expiresAt: number;
}

/** One contiguous piece of a value to write at `offset`. */
export interface Piece {
  offset: number;
  data: Uint8Array;
}

export interface GlobalTier {
  /** `"redis"` or `"memory"`. */
  readonly kind: string;
  /** Size of the value in bytes; 0 when the key is unknown. */
  size(key: string): Promise<number>;
  /** The whole value, or `undefined` when the key is unknown. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * The value's size and its first `length` bytes (fewer when it is shorter), in one round
   * trip: a key's first lookup then needs no second one for a read near its start.
   */
  head(key: string, length: number): Promise<{ size: number; bytes: Uint8Array }>;
  /** `length` bytes from `offset` (fewer at the end of the value). */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  /**
   * Replaces the value (`size` given) or writes pieces into it (extending it as needed) in one
   * atomic step; with a write lease, only if the lease is still held and its fence is the newest.
   */
  write(key: string, pieces: Piece[], replaceSize: number | undefined, lease?: Lease): Promise<void>;
  delete(key: string): Promise<void>;
  append(key: string, data: Uint8Array): Promise<void>;
  readAppended(key: string): Promise<Uint8Array[]>;
  clearAppended(key: string): Promise<void>;
  /**
   * Adds `delta` to the key's value read as a little-endian i64 (a missing key counts as 0),
   * wrapping like i64 arithmetic, in one atomic step; returns the new value. A value that is
   * not 8 bytes long is refused (E_STATE_BOUNDS) and left as it is. Not subject to the
   * global locks: it is atomic by itself.
   */
  increment(key: string, delta: bigint): Promise<bigint>;
  /**
   * Sets the key's value (an i64, as for `increment`) to `value` if it is `expected` now (a
   * missing key counts as 0), in one atomic step; returns whether it did.
   */
  compareAndSwap(key: string, expected: bigint, value: bigint): Promise<boolean>;
  /** Tries once to take a global lock; `undefined` when others hold it in a conflicting mode. */
  tryLock(key: string, mode: 'read' | 'write', leaseMs: number): Promise<Lease | undefined>;
  /** Releases a lease; releasing one that expired or was never held is a no-op returning false. */
  unlock(lease: Lease): Promise<boolean>;
  close(): Promise<void>;
}
