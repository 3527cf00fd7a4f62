/**
 * Every failure the runtime reports is a {@link NuvolaError} with a stable `code`. Match on
 * `err.code` (or `instanceof` the class), never on the message text, which may improve.
 * Errors that cross a thread travel as {@link WireError} and are rebuilt by {@link fromWire}.
 */

/** The closed set of error codes. A code, once published, keeps its meaning. */
export const ErrorCode = {
  /** An option is missing, mistyped or out of range; `details.path` names it. */
  INVALID_OPTION: 'E_INVALID_OPTION',
  /** The bytes are not a WebAssembly module, or it does not compile. */
  INVALID_MODULE: 'E_INVALID_MODULE',
  /** The module imports names the ABI does not provide; `details.imports` lists them. */
  UNKNOWN_IMPORT: 'E_UNKNOWN_IMPORT',
  /** The module lacks a required export (`main`, `memory`) or it has the wrong kind. */
  MISSING_EXPORT: 'E_MISSING_EXPORT',
  /** The module is larger than `maxModuleBytes`. */
  MODULE_TOO_LARGE: 'E_MODULE_TOO_LARGE',
  /** An AssemblyScript guest failed to compile; `details.diagnostics` has the compiler's output. */
  BUILD_FAILED: 'E_BUILD_FAILED',
  /** The module compiled, but instantiating it (or running its start code) failed. */
  INSTANTIATE_FAILED: 'E_INSTANTIATE_FAILED',
  /** A function with this name is already registered. */
  ALREADY_REGISTERED: 'E_ALREADY_REGISTERED',
  /** No function is registered under this name. */
  UNKNOWN_FUNCTION: 'E_UNKNOWN_FUNCTION',
  /** The input is larger than `maxInputBytes`. */
  INPUT_TOO_LARGE: 'E_INPUT_TOO_LARGE',
  /** The guest produced more output than `maxOutputBytes`. */
  OUTPUT_TOO_LARGE: 'E_OUTPUT_TOO_LARGE',
  /** The guest trapped (`unreachable`, out-of-bounds access, stack overflow, ...). */
  GUEST_TRAP: 'E_GUEST_TRAP',
  /** The guest called AssemblyScript's `abort` (a failed assertion, a thrown error). */
  GUEST_ABORT: 'E_GUEST_ABORT',
  /** A rank sent to or received from a rank that does not exist, itself, or outside a group. */
  COMM_RANK: 'E_COMM_RANK',
  /** Another rank of the group failed while this one was communicating; the group is over. */
  COMM_ABORTED: 'E_COMM_ABORTED',
  /** A message larger than `maxMessageBytes`. */
  MESSAGE_TOO_LARGE: 'E_MESSAGE_TOO_LARGE',
  /**
   * The receiving rank already has `maxQueuedMessageBytes` of messages sent to it and not yet
   * received; the sender's call fails. Receive sooner, send less at once, or raise the option.
   */
  QUEUE_FULL: 'E_QUEUE_FULL',
  /**
   * A chained call's output would make its caller hold more than `maxChainedOutputBytes` of
   * chained outputs; the caller sees that call fail (`CHAIN_FAILED`).
   */
  CHAIN_OUTPUT_LIMIT: 'E_CHAIN_OUTPUT_LIMIT',
  /** The guest used a chain id its invocation did not get from `chain.call`. */
  CHAIN_ID: 'E_CHAIN_ID',
  /** The guest's chain.call named a function outside its `callees` (see register()). */
  CHAIN_DENIED: 'E_CHAIN_DENIED',
  /** The guest passed a host import a pointer or length outside its own memory. */
  GUEST_POINTER: 'E_GUEST_POINTER',
  /** The guest needed more memory than `memoryLimitPages` allows. */
  MEMORY_LIMIT: 'E_MEMORY_LIMIT',
  /**
   * A new instance was needed but the process holds as many as it can (`maxInstances`, or the
   * engine's own limit of about 16k Wasm memories per process). Nothing ran; retry later.
   */
  INSTANCE_LIMIT: 'E_INSTANCE_LIMIT',
  /**
   * The call used more CPU than its function's `cpuLimitMs` (time suspended in host calls not
   * counted); it was stopped at its next check and its worker went on. `details.cpuMs` is what it used.
   */
  CPU_LIMIT: 'E_CPU_LIMIT',
  /**
   * The call consumed its function's `fuel` budget (one unit per function entry and loop
   * iteration, the same on every machine); it was stopped there and its worker went on.
   */
  FUEL_EXHAUSTED: 'E_FUEL_EXHAUSTED',
  /** The invocation ran longer than its `timeoutMs`. */
  TIMEOUT: 'E_TIMEOUT',
  /** The caller aborted the invocation (`invoke(…, { signal })`); it was stopped or never started. */
  CANCELLED: 'E_CANCELLED',
  /** The worker running the invocation died or was stopped because another call on it hung. */
  WORKER_LOST: 'E_WORKER_LOST',
  /** The runtime was closed. */
  CLOSED: 'E_CLOSED',
  /** The global state tier (Redis) is unreachable; local state is kept, dirty data stays dirty. */
  STATE_UNAVAILABLE: 'E_STATE_UNAVAILABLE',
  /** A state read or write past the end of the value. */
  STATE_BOUNDS: 'E_STATE_BOUNDS',
  /** A state lock misused (unlocking one not held, writing under a read lock) or not obtained in time. */
  STATE_LOCK: 'E_STATE_LOCK',
  /** A write under a global lock whose lease expired or was superseded (fencing). */
  STATE_LEASE: 'E_STATE_LEASE',
  /** The function may not touch this state key (see `stateKeys` in register()). */
  STATE_DENIED: 'E_STATE_DENIED',
  /** A state key that is empty or longer than 1024 bytes. */
  STATE_BAD_KEY: 'E_STATE_BAD_KEY',
  /** The write would make the function hold more of the local state tier than its `stateQuota` (bytes or keys). */
  STATE_QUOTA: 'E_STATE_QUOTA',
  /** A host handler (see `registerHandler`) threw something that is not a nuvola error. */
  HANDLER_FAILED: 'E_HANDLER_FAILED',
  /** A skeleton's stage failed on an item; `details` name the function, the item and the cause. */
  SKELETON_STAGE: 'E_SKELETON_STAGE',
  /** A skeleton is malformed (bad arity, a bad partition, a non-positive replica count). */
  INVALID_SKELETON: 'E_INVALID_SKELETON',
  /** A rewrite rule does not apply: its side condition fails; `details.condition` says which. */
  REWRITE_REFUSED: 'E_REWRITE_REFUSED',
  /** A kernel's arguments do not fit: mismatched dimensions, lengths that overflow, bad sizes. */
  KERNEL_ARGS: 'E_KERNEL_ARGS',
  /** A registered kernel's WGSL does not compile; `details.messages` has the compiler's messages. */
  KERNEL_COMPILE: 'E_KERNEL_COMPILE',
  /** No kernel is registered under this name. */
  KERNEL_UNKNOWN: 'E_KERNEL_UNKNOWN',
  /** The GPU device was lost during the call; the next call creates a new one. */
  KERNEL_DEVICE_LOST: 'E_KERNEL_DEVICE_LOST',
  /** A kernel ran longer than `maxKernelMs`; the device is replaced. */
  KERNEL_TIMEOUT: 'E_KERNEL_TIMEOUT',
  /** A GPU was required (`mode: 'gpu'`, or a WGSL kernel) and none is available. */
  KERNEL_UNAVAILABLE: 'E_KERNEL_UNAVAILABLE',
  /** A component does not implement nuvola's function world; `details.expected` is the world, `details.world` the component's. */
  COMPONENT_WORLD: 'E_COMPONENT_WORLD',
  /** Cluster mode: Redis is unreachable, or no live host takes calls; the call was not sent. */
  CLUSTER_UNAVAILABLE: 'E_CLUSTER_UNAVAILABLE',
  /**
   * Cluster mode: what a host read from Redis failed verification — a registry entry without a
   * valid MAC under the cluster's secret, or module bytes that do not match their content hash.
   * It was not used; the call did not run.
   */
  CLUSTER_INTEGRITY: 'E_CLUSTER_INTEGRITY',
  /**
   * Cluster mode: a function fetched from the cluster's registry asks for host resources
   * (`wasi.dirs`, `wasi.env`) that this host's `cluster.grants` does not give; it did not run here.
   */
  CLUSTER_GRANT: 'E_CLUSTER_GRANT',
  /** Cluster mode: an idempotency key already names a call of this function with another input. */
  IDEMPOTENCY_CONFLICT: 'E_IDEMPOTENCY_CONFLICT',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Structured, JSON- and clone-safe extra facts about an error. */
export type ErrorDetails = Record<string, unknown>;

/** The form in which an error crosses a thread boundary. */
export interface WireError {
  code: ErrorCode;
  message: string;
  details: ErrorDetails;
}

/** Base class of every error nuvola throws or rejects with. */
export class NuvolaError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** An option failed validation. Nothing was started or changed. */
export class InvalidOptionError extends NuvolaError {}
/** A module was rejected at `register`: malformed, wrong imports or exports, too large. */
export class ModuleError extends NuvolaError {}
/** A function name was unknown or already taken. */
export class RegistryError extends NuvolaError {}
/** An input, output or memory limit was exceeded. */
export class LimitError extends NuvolaError {}
/** The guest trapped, aborted or misused a host import; its instance was reset (or, with reuse 'keep', discarded). */
export class GuestError extends NuvolaError {}
/** The invocation exceeded its `timeoutMs`. */
export class TimeoutError extends NuvolaError {}
/** The caller aborted the invocation through its `AbortSignal`. */
export class CancelledError extends NuvolaError {}
/** The worker running the invocation was lost; the call may or may not have taken effect. */
export class WorkerLostError extends NuvolaError {}
/** The runtime is closed. */
export class RuntimeClosedError extends NuvolaError {}
/** A state operation failed: tier unavailable, bounds, locks, leases, access control. */
export class StateError extends NuvolaError {}
/** A host handler failed with an error of its own (the original is `cause`). */
export class HandlerError extends NuvolaError {}
/** A skeleton was malformed, refused a rewrite, or one of its stages failed (`cause` holds the stage's error). */
export class SkeletonError extends NuvolaError {}
/** A GPU kernel call failed: bad arguments, a kernel that does not compile, a lost device, a timeout. */
export class KernelError extends NuvolaError {}
/**
 * Cluster mode: the cluster's Redis or hosts are not there to take a call, what was read from
 * Redis failed verification, a host does not grant what a function asks, or an idempotency key
 * was reused with another input.
 */
export class ClusterError extends NuvolaError {}

const classOf: Record<ErrorCode, new (code: ErrorCode, message: string, details?: ErrorDetails) => NuvolaError> = {
  E_INVALID_OPTION: InvalidOptionError,
  E_INVALID_MODULE: ModuleError,
  E_UNKNOWN_IMPORT: ModuleError,
  E_MISSING_EXPORT: ModuleError,
  E_MODULE_TOO_LARGE: ModuleError,
  E_INSTANTIATE_FAILED: ModuleError,
  E_BUILD_FAILED: ModuleError,
  E_ALREADY_REGISTERED: RegistryError,
  E_UNKNOWN_FUNCTION: RegistryError,
  E_INPUT_TOO_LARGE: LimitError,
  E_OUTPUT_TOO_LARGE: LimitError,
  E_MEMORY_LIMIT: LimitError,
  E_INSTANCE_LIMIT: LimitError,
  E_GUEST_TRAP: GuestError,
  E_GUEST_ABORT: GuestError,
  E_GUEST_POINTER: GuestError,
  E_CHAIN_ID: GuestError,
  E_CHAIN_DENIED: GuestError,
  E_COMM_RANK: GuestError,
  E_COMM_ABORTED: GuestError,
  E_MESSAGE_TOO_LARGE: LimitError,
  E_QUEUE_FULL: LimitError,
  E_CHAIN_OUTPUT_LIMIT: LimitError,
  E_CPU_LIMIT: LimitError,
  E_FUEL_EXHAUSTED: LimitError,
  E_TIMEOUT: TimeoutError,
  E_CANCELLED: CancelledError,
  E_WORKER_LOST: WorkerLostError,
  E_CLOSED: RuntimeClosedError,
  E_STATE_UNAVAILABLE: StateError,
  E_STATE_BOUNDS: StateError,
  E_STATE_LOCK: StateError,
  E_STATE_LEASE: StateError,
  E_STATE_DENIED: StateError,
  E_STATE_BAD_KEY: StateError,
  E_STATE_QUOTA: LimitError,
  E_HANDLER_FAILED: HandlerError,
  E_SKELETON_STAGE: SkeletonError,
  E_INVALID_SKELETON: SkeletonError,
  E_REWRITE_REFUSED: SkeletonError,
  E_KERNEL_ARGS: KernelError,
  E_KERNEL_COMPILE: KernelError,
  E_KERNEL_UNKNOWN: KernelError,
  E_KERNEL_DEVICE_LOST: KernelError,
  E_KERNEL_TIMEOUT: KernelError,
  E_KERNEL_UNAVAILABLE: KernelError,
  E_COMPONENT_WORLD: ModuleError,
  E_CLUSTER_UNAVAILABLE: ClusterError,
  E_CLUSTER_INTEGRITY: ClusterError,
  E_CLUSTER_GRANT: ClusterError,
  E_IDEMPOTENCY_CONFLICT: ClusterError,
};

/** Builds the error class that matches `code`. */
export function makeError(code: ErrorCode, message: string, details: ErrorDetails = {}): NuvolaError {
  return new classOf[code](code, message, details);
}

/** Rebuilds an error that crossed a thread. */
export function fromWire(wire: WireError): NuvolaError {
  return makeError(wire.code, wire.message, wire.details);
}

/** Converts anything thrown into the wire form, keeping nuvola errors (and state-store errors) as they are. */
export function toWire(err: unknown, fallback: ErrorCode = ErrorCode.GUEST_TRAP): WireError {
  if (err instanceof NuvolaError) return cloneable(err.toWire());
  const coded = err as { code?: unknown; message?: unknown; details?: unknown };
  if (typeof coded?.code === 'string' && coded.code in classOf && typeof coded.message === 'string') {
    return cloneable({ code: coded.code as ErrorCode, message: coded.message, details: (coded.details as ErrorDetails) ?? {} });
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: fallback, message, details: {} };
}

/** A wire error that can cross a thread: details that cannot be cloned (a function, say — host code may put anything there) are dropped. */
function cloneable(wire: WireError): WireError {
  try {
    structuredClone(wire.details);
    return wire;
  } catch {
    return { ...wire, details: {} };
  }
}

/** Rebuilds anything thrown as a NuvolaError (state-store errors keep their codes). */
export function asNuvolaError(err: unknown, fallback: ErrorCode = ErrorCode.GUEST_TRAP): NuvolaError {
  return err instanceof NuvolaError ? err : fromWire(toWire(err, fallback));
}
