/**
 * The state store's errors are the runtime's {@link StateError} (one class, from
 * `runtime/errors.ts`, a leaf that imports nothing); `StateErrorCode` names its codes the way
 * the store's files spell them. `E_STATE_QUOTA` is a `LimitError`: build it with `makeError`.
 */
import { ErrorCode } from '../runtime/errors.js';

export { StateError, makeError } from '../runtime/errors.js';

export const StateErrorCode = {
  /** The global tier (Redis) cannot be reached; the local tier keeps working and dirty data stays dirty. */
  UNAVAILABLE: ErrorCode.STATE_UNAVAILABLE,
  /** A read or write past the end of the value. */
  BOUNDS: ErrorCode.STATE_BOUNDS,
  /** A lock misused: unlocking one not held, or asking for one already held. */
  LOCK: ErrorCode.STATE_LOCK,
  /** A write under a global lock whose lease expired, or that a newer holder's fence supersedes. */
  LEASE: ErrorCode.STATE_LEASE,
  /** The function may not touch this key. */
  DENIED: ErrorCode.STATE_DENIED,
  /** A key name that is empty or too long. */
  BAD_KEY: ErrorCode.STATE_BAD_KEY,
  /** Deleting or resizing a key beyond its block while it is mapped (a region). */
  MAPPED: ErrorCode.STATE_MAPPED,
  /** The owner would hold more local bytes or keys than its quota allows (a `LimitError`). */
  QUOTA: ErrorCode.STATE_QUOTA,
} as const;

export type StateErrorCode = (typeof StateErrorCode)[keyof typeof StateErrorCode];
