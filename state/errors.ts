/**
 * Errors of the state store. The store is a library of its own, so it carries its own small
 * error type; the runtime maps `code` onto its public error classes unchanged.
 */
export const StateErrorCode = {
  /** The global tier (Redis) cannot be reached; the local tier keeps working and dirty data stays dirty. */
  UNAVAILABLE: 'E_STATE_UNAVAILABLE',
  /** A read or write past the end of the value. */
  BOUNDS: 'E_STATE_BOUNDS',
  /** A lock misused: unlocking one not held, or asking for one already held. */
  LOCK: 'E_STATE_LOCK',
  /** A write under a global lock whose lease expired, or that a newer holder's fence supersedes. */
  LEASE: 'E_STATE_LEASE',
  /** The function may not touch this key. */
  DENIED: 'E_STATE_DENIED',
  /** A key name that is empty or too long. */
  BAD_KEY: 'E_STATE_BAD_KEY',
  /** The owner would hold more local bytes or keys than its quota allows. */
  QUOTA: 'E_STATE_QUOTA',
} as const;

export type StateErrorCode = (typeof StateErrorCode)[keyof typeof StateErrorCode];

export class StateError extends Error {
  readonly code: StateErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: StateErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'StateError';
    this.code = code;
    this.details = details;
  }
}
