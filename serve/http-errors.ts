/**
 * Any thread-free code. How a nuvola error is answered over HTTP: its status (the table
 * below, one place) and the body `{ code, message, details }`.
 */
import { asNuvolaError, ErrorCode, ERRORS, type NuvolaError } from '../runtime/errors.js';

/** Statuses by code; a code not listed gets its class's status (`BY_CLASS`), else 500. */
const BY_CODE: Partial<Record<ErrorCode, number>> = {
  E_UNKNOWN_FUNCTION: 404,
  E_ALREADY_REGISTERED: 409,
  E_INPUT_TOO_LARGE: 413,
  E_MODULE_TOO_LARGE: 413,
  E_TIMEOUT: 504,
  E_INSTANCE_LIMIT: 503,
  E_CLOSED: 503,
  E_CLUSTER_UNAVAILABLE: 503,
  E_STATE_UNAVAILABLE: 503,
  E_KERNEL_UNAVAILABLE: 503,
  E_IDEMPOTENCY_CONFLICT: 409,
  E_UNAUTHORIZED: 401,
  E_ROUTE_NOT_FOUND: 404,
  E_REQUEST_TIMEOUT: 408,
  E_BAD_REQUEST: 400,
  // A client that went away never reads it; nginx's "client closed request".
  E_CANCELLED: 499,
};

const BY_CLASS: Partial<Record<(typeof ERRORS)[ErrorCode]['class'], number>> = {
  InvalidOptionError: 400,
  ModuleError: 400,
  RegistryError: 404,
  // The call's own limits (queue full, CPU, fuel, memory, output): too much asked, back off.
  LimitError: 429,
  GuestError: 502,
  HandlerError: 502,
  SkeletonError: 502,
  KernelError: 502,
  TimeoutError: 504,
  WorkerLostError: 503,
  RuntimeClosedError: 503,
  StateError: 502,
  ClusterError: 503,
};

export function statusOf(code: ErrorCode): number {
  return BY_CODE[code] ?? BY_CLASS[ERRORS[code].class] ?? 500;
}

/** The JSON body of an error answer: the error's wire form, its details made JSON-safe. */
export function errorBody(err: NuvolaError): { code: ErrorCode; message: string; details: Record<string, unknown> } {
  let details: Record<string, unknown>;
  try {
    details = JSON.parse(JSON.stringify(err.details)) as Record<string, unknown>;
  } catch {
    details = {};
  }
  return { code: err.code, message: err.message, details };
}

/** Anything thrown as a nuvola error (unknown ones as `E_BAD_REQUEST` for a 4xx from the framework, else `E_HANDLER_FAILED`). */
export function asServedError(err: unknown): NuvolaError {
  const status = (err as { statusCode?: unknown })?.statusCode;
  const fallback = typeof status === 'number' && status >= 400 && status < 500 ? ErrorCode.BAD_REQUEST : ErrorCode.HANDLER_FAILED;
  return asNuvolaError(err, fallback);
}
