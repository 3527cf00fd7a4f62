/**
 * Every failure the runtime reports is a {@link NuvolaError} with a stable `code`. Match on
 * `err.code` (or `instanceof` the class), never on the message text, which may improve.
 * Errors that cross a thread travel as {@link WireError} and are rebuilt by {@link fromWire}.
 *
 * {@link ERRORS} is the one source of truth: each code's class, when it happens and what to do.
 * `ErrorCode`, the class each code is built as, and the errors table in
 * `docs/reference/errors.md` (`npm run docs`) all come from it. A leaf: it imports nothing,
 * so every layer (`state/` included) may use it.
 *
 * Why it is this long: the table is the documentation of every code (when, what to do),
 * and the classes, wire form and builder must sit beside it to stay in step with it.
 */

/** The classes an error can be, by name (each declared below). */
export type ErrorClassName =
  | 'InvalidOptionError'
  | 'ModuleError'
  | 'RegistryError'
  | 'LimitError'
  | 'GuestError'
  | 'TimeoutError'
  | 'CancelledError'
  | 'WorkerLostError'
  | 'RuntimeClosedError'
  | 'StateError'
  | 'HandlerError'
  | 'SkeletonError'
  | 'KernelError'
  | 'ClusterError'
  | 'ServeError';

/** One code: the class it is built as, when it happens, and what the caller should do. */
export interface ErrorSpec {
  class: ErrorClassName;
  when: string;
  todo: string;
}

/**
 * The closed set of error codes, in the order the docs list them. A code, once published,
 * keeps its meaning and its class. Markdown in `when` and `todo` goes into the docs as is.
 */
export const ERRORS = {
  E_INVALID_OPTION: {
    class: 'InvalidOptionError',
    when: 'an option or argument is wrong',
    todo: 'fix the option named in `details.path`',
  },
  E_INVALID_MODULE: {
    class: 'ModuleError',
    when: 'not Wasm, malformed, unreadable path, not exactly one unshared 32-bit memory, or a module nuvola cannot snapshot (`details.reason`)',
    todo: 'rebuild with `nuvola build`',
  },
  E_UNKNOWN_IMPORT: {
    class: 'ModuleError',
    when: 'imports neither the ABI nor WASI preview 1 provides (`details.imports` lists them)',
    todo: 'import host capabilities only via the `"nuvola"` SDK or WASI',
  },
  E_MISSING_EXPORT: {
    class: 'ModuleError',
    when: 'no `main` function (`_start` for a WASI command) or `memory` export, or `main`/`init`/`_start` with the wrong signature',
    todo: 'export `function main(): i32` (and `init(): void`)',
  },
  E_MODULE_TOO_LARGE: {
    class: 'ModuleError',
    when: 'module over `maxModuleBytes`',
    todo: 'raise it',
  },
  E_BUILD_FAILED: {
    class: 'ModuleError',
    when: 'an AssemblyScript guest does not compile (`details.diagnostics`)',
    todo: 'fix the source',
  },
  E_INSTANTIATE_FAILED: {
    class: 'ModuleError',
    when: 'start-up code or `init()` trapped at register',
    todo: "fix the guest's start-up",
  },
  E_ALREADY_REGISTERED: {
    class: 'RegistryError',
    when: 'name taken',
    todo: '`unregister` first or rename',
  },
  E_UNKNOWN_FUNCTION: {
    class: 'RegistryError',
    when: 'no such function',
    todo: '`register` it',
  },
  E_INPUT_TOO_LARGE: {
    class: 'LimitError',
    when: 'input over `maxInputBytes`',
    todo: 'raise it or send less',
  },
  E_OUTPUT_TOO_LARGE: {
    class: 'LimitError',
    when: 'guest output over `maxOutputBytes`',
    todo: 'raise it',
  },
  E_MEMORY_LIMIT: {
    class: 'LimitError',
    when: 'the guest ran out of memory under `memoryLimitPages` (also at register if its initial memory is larger)',
    todo: 'raise `memoryLimitPages`',
  },
  E_INSTANCE_LIMIT: {
    class: 'LimitError',
    when: "a call needed a new instance but the process holds `maxInstances` memories (or V8's own ~16k); or a call mapped more than 16 regions at once (`details.limit`)",
    todo: 'lower `maxIdleInstances`/`idleTimeoutMs`, limit concurrency, or use more processes; map fewer keys per call',
  },
  E_CPU_LIMIT: {
    class: 'LimitError',
    when: 'a call used more CPU than its `cpuLimitMs` (`details.cpuMs`, `details.cpuLimitMs`); it alone was stopped, its worker went on',
    todo: 'raise `cpuLimitMs`, or do less per call',
  },
  E_FUEL_EXHAUSTED: {
    class: 'LimitError',
    when: 'a call consumed its `fuel` budget (`details.fuel`); it alone was stopped, its worker went on',
    todo: 'raise `fuel`, or do less per call',
  },
  E_GUEST_TRAP: {
    class: 'GuestError',
    when: "`unreachable`, out-of-bounds access, stack overflow… at the guest's `file.ts:line:col` (`details.trap`, `details.frames`)",
    todo: 'fix the guest',
  },
  E_GUEST_ABORT: {
    class: 'GuestError',
    when: "AssemblyScript `abort` — failed `assert`, uncaught `throw`, at the guest's line (`details.message/file/line/column/frames`)",
    todo: 'fix the guest',
  },
  E_GUEST_POINTER: {
    class: 'GuestError',
    when: 'the guest passed a host import a range outside its memory',
    todo: 'fix the guest',
  },
  E_TIMEOUT: {
    class: 'TimeoutError',
    when: "a call (or register's start-up) exceeded `timeoutMs`",
    todo: 'raise `timeoutMs`',
  },
  E_CANCELLED: {
    class: 'CancelledError',
    when: 'the caller aborted the call through `options.signal` (`details.reason`)',
    todo: 'nothing: it was asked for',
  },
  E_WORKER_LOST: {
    class: 'WorkerLostError',
    when: 'the worker running the call died or was replaced before the call finished; a group over hosts lost a host mid-run',
    todo: 'it may have run (`details.mayHaveCompleted`): retry only if idempotent',
  },
  E_CLOSED: {
    class: 'RuntimeClosedError',
    when: 'the runtime is closed',
    todo: 'create a new one',
  },
  E_CHAIN_ID: {
    class: 'GuestError',
    when: 'the guest used a chain id its invocation did not get from `chain.call`',
    todo: 'fix the guest',
  },
  E_CHAIN_DENIED: {
    class: 'GuestError',
    when: "the guest's `chain.call` named a function outside its `callees`",
    todo: 'register it with the callee in `callees`',
  },
  E_COMM_RANK: {
    class: 'GuestError',
    when: 'a send/recv to a rank that does not exist, to itself, or outside a group',
    todo: 'fix the guest',
  },
  E_COMM_ABORTED: {
    class: 'GuestError',
    when: 'another rank of the group failed while this one was communicating (`details.cause`)',
    todo: 'see the first failure (`invokeGroup` rejects with it)',
  },
  E_MESSAGE_TOO_LARGE: {
    class: 'LimitError',
    when: 'a message over `maxMessageBytes`',
    todo: 'raise it or send parts',
  },
  E_QUEUE_FULL: {
    class: 'LimitError',
    when: 'a send to a rank that already has `maxQueuedMessageBytes` it has not received; or `invoke` past `maxQueue` calls waiting to start',
    todo: 'receive sooner, or raise `maxQueuedMessageBytes`; for `maxQueue`, retry later or raise it',
  },
  E_CHAIN_OUTPUT_LIMIT: {
    class: 'LimitError',
    when: "(in the caller's chain output) a callee's output would make the caller hold over `maxChainedOutputBytes`",
    todo: 'return less (large results through state), or raise it',
  },
  E_COMPONENT_WORLD: {
    class: 'ModuleError',
    when: 'a component that does not implement `wit/nuvola-function.wit` (`details.expected`, `details.world`, `details.imports`)',
    todo: 'build it against that world',
  },
  E_CLUSTER_UNAVAILABLE: {
    class: 'ClusterError',
    when: 'cluster mode: Redis is unreachable (joining, registering, sending a call), or no live host takes calls; the call was not sent',
    todo: 'start Redis or a host; retry (with an idempotency key a retry never completes twice)',
  },
  E_CLUSTER_INTEGRITY: {
    class: 'ClusterError',
    when: 'cluster mode: a registry entry without a valid MAC, or module bytes not matching their hash; not used, the call did not run',
    todo: 'register the function again; check who may write to Redis',
  },
  E_CLUSTER_GRANT: {
    class: 'ClusterError',
    when: "cluster mode: a function from the registry asks for `wasi.dirs`/`wasi.env` this host's `cluster.grants` does not give (`details.refused`)",
    todo: 'grant it on the host, or register without it',
  },
  E_IDEMPOTENCY_CONFLICT: {
    class: 'ClusterError',
    when: 'cluster mode: the idempotency key already names a call of this function with another input',
    todo: 'use a new key for a new input',
  },
  E_STATE_UNAVAILABLE: {
    class: 'StateError',
    when: 'the global tier (Redis) is unreachable; local state is kept',
    todo: 'retry; see `state/README.md`',
  },
  E_STATE_BOUNDS: {
    class: 'StateError',
    when: 'a state read or write past the end of the value',
    todo: 'fix the offset',
  },
  E_STATE_LOCK: {
    class: 'StateError',
    when: 'a state lock misused or not obtained in time',
    todo: 'fix the lock use',
  },
  E_STATE_LEASE: {
    class: 'StateError',
    when: 'a write under a global lock whose lease expired or was superseded',
    todo: 'take the lock again',
  },
  E_STATE_DENIED: {
    class: 'StateError',
    when: "a key outside the function's `stateKeys`",
    todo: 'register with the key',
  },
  E_STATE_BAD_KEY: {
    class: 'StateError',
    when: 'an empty, non-UTF-8 or over-1024-byte key',
    todo: 'fix the key',
  },
  E_STATE_MAPPED: {
    class: 'StateError',
    when: 'deleting a key, or resizing it beyond its block (`write`, `pull`, a larger map), while guest calls or host views map it (`details.maps`)',
    todo: 'retry when those calls end or the views are released; map it at its largest size first',
  },
  E_STATE_QUOTA: {
    class: 'LimitError',
    when: 'the write would make the function hold more of the local state tier than its `stateQuota` (`details.quota`)',
    todo: 'delete keys it no longer needs, or raise `stateQuota`',
  },
  E_HANDLER_FAILED: {
    class: 'HandlerError',
    when: 'a host handler threw (the original error is `cause`)',
    todo: 'fix the handler',
  },
  E_SKELETON_STAGE: {
    class: 'SkeletonError',
    when: "a skeleton's stage failed on an item (`details.function`, `details.item`, `details.where`, `details.cause`)",
    todo: "see `cause`, the stage's own error",
  },
  E_INVALID_SKELETON: {
    class: 'SkeletonError',
    when: 'a malformed skeleton (bad replica count, not a skeleton) or framed list',
    todo: "fix the construction or the function's output",
  },
  E_REWRITE_REFUSED: {
    class: 'SkeletonError',
    when: "a rewrite rule's side condition fails (`details.rule`, `details.condition`)",
    todo: 'keep the original form',
  },
  E_KERNEL_ARGS: {
    class: 'KernelError',
    when: "a kernel's arguments do not fit: mismatched dimensions, lengths that overflow, bad sizes",
    todo: 'fix the arguments',
  },
  E_KERNEL_COMPILE: {
    class: 'KernelError',
    when: "a registered kernel's WGSL does not compile (`details.messages` has the compiler's messages)",
    todo: 'fix the WGSL',
  },
  E_KERNEL_UNKNOWN: {
    class: 'KernelError',
    when: 'no kernel is registered under this name',
    todo: '`rt.kernels.registerKernel` it first',
  },
  E_KERNEL_DEVICE_LOST: {
    class: 'KernelError',
    when: 'the GPU device was lost during the call',
    todo: 'retry: the next call creates a new device',
  },
  E_KERNEL_TIMEOUT: {
    class: 'KernelError',
    when: 'a kernel ran longer than `kernels.maxKernelMs`; the device is replaced',
    todo: 'give it less work at once, or raise `kernels.maxKernelMs`',
  },
  E_KERNEL_UNAVAILABLE: {
    class: 'KernelError',
    when: "a GPU was required (`kernels.mode: 'gpu'`, or a WGSL kernel without a `cpu` version) and none is available",
    todo: "run where a GPU adapter (or Mesa) is, give the kernel a `cpu` version, or use `kernels.mode: 'auto'`",
  },
  E_INVALID_TRIGGER: {
    class: 'InvalidOptionError',
    when: '`nuvola serve`: a cron schedule that does not parse, or a trigger config that is not valid (`details.path`, `details.trigger`)',
    todo: 'fix the trigger named in `details.path` (cron: five or six fields, e.g. `*/5 * * * * name`)',
  },
  E_UNAUTHORIZED: {
    class: 'ServeError',
    when: '`nuvola serve`: a request without the bearer token the server was started with, or with another one (HTTP 401)',
    todo: 'send `Authorization: Bearer <token>`',
  },
  E_ROUTE_NOT_FOUND: {
    class: 'ServeError',
    when: '`nuvola serve`: no such endpoint (HTTP 404), or a method the endpoint does not take (HTTP 405, `details.allow`)',
    todo: 'see docs/guides/serving.md for the endpoints',
  },
  E_REQUEST_TIMEOUT: {
    class: 'ServeError',
    when: "`nuvola serve`: the client sent a request's headers or body slower than `headersTimeoutMs`/`requestTimeoutMs` allow (HTTP 408); the connection is closed",
    todo: 'send the whole request at once, or raise the time-outs',
  },
  E_BAD_REQUEST: {
    class: 'ServeError',
    when: '`nuvola serve`: a request the server cannot read — a malformed header or query (`details.header`), a body on a route that takes none, a broken chunked body (HTTP 400)',
    todo: 'fix the request',
  },
} as const satisfies Record<`E_${string}`, ErrorSpec>;

type Table = typeof ERRORS;
/** `E_TIMEOUT` → `TIMEOUT`. */
type NameOf<C> = C extends `E_${infer N}` ? N : never;

/** Every code by name: `ErrorCode.TIMEOUT === 'E_TIMEOUT'`. What each means: {@link ERRORS}. */
export const ErrorCode = Object.freeze(Object.fromEntries(Object.keys(ERRORS).map((code) => [code.slice(2), code]))) as {
  readonly [C in keyof Table as NameOf<C>]: C;
};

export type ErrorCode = keyof Table;

/** The codes an error class is built with: `CodeOf<'StateError'>` is `'E_STATE_UNAVAILABLE' | …`. */
export type CodeOf<N extends ErrorClassName> = { [C in keyof Table]: Table[C]['class'] extends N ? C : never }[keyof Table];

/** Structured, JSON- and clone-safe extra facts about an error. */
export type ErrorDetails = Record<string, unknown>;

/** The form in which an error crosses a thread boundary. */
export interface WireError {
  code: ErrorCode;
  message: string;
  details: ErrorDetails;
}

/**
 * Base class of every error nuvola throws or rejects with. Build one with its subclass (whose
 * constructor takes only that class's codes) or with {@link makeError}, which picks the class
 * from the code; a code built as another class than {@link ERRORS} says is refused.
 */
export class NuvolaError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  protected constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    const spec: ErrorSpec | undefined = ERRORS[code];
    if (spec === undefined || !(this instanceof classes[spec.class])) {
      throw new TypeError(
        `${new.target.name} cannot carry ${String(code)}: ${spec === undefined ? 'no such code' : `it is a ${spec.class}`}`,
      );
    }
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** An option failed validation. Nothing was started or changed. */
export class InvalidOptionError extends NuvolaError {
  declare readonly code: CodeOf<'InvalidOptionError'>;
  constructor(code: CodeOf<'InvalidOptionError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** A module was rejected at `register`: malformed, wrong imports or exports, too large. */
export class ModuleError extends NuvolaError {
  declare readonly code: CodeOf<'ModuleError'>;
  constructor(code: CodeOf<'ModuleError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** A function name was unknown or already taken. */
export class RegistryError extends NuvolaError {
  declare readonly code: CodeOf<'RegistryError'>;
  constructor(code: CodeOf<'RegistryError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** An input, output, memory, queue or quota limit was exceeded. */
export class LimitError extends NuvolaError {
  declare readonly code: CodeOf<'LimitError'>;
  constructor(code: CodeOf<'LimitError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** The guest trapped, aborted or misused a host import; its instance was reset (or, with reuse 'keep', discarded). */
export class GuestError extends NuvolaError {
  declare readonly code: CodeOf<'GuestError'>;
  constructor(code: CodeOf<'GuestError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** The invocation exceeded its `timeoutMs`. */
export class TimeoutError extends NuvolaError {
  declare readonly code: CodeOf<'TimeoutError'>;
  constructor(code: CodeOf<'TimeoutError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** The caller aborted the invocation through its `AbortSignal`. */
export class CancelledError extends NuvolaError {
  declare readonly code: CodeOf<'CancelledError'>;
  constructor(code: CodeOf<'CancelledError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** The worker running the invocation was lost; the call may or may not have taken effect. */
export class WorkerLostError extends NuvolaError {
  declare readonly code: CodeOf<'WorkerLostError'>;
  constructor(code: CodeOf<'WorkerLostError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** The runtime is closed. */
export class RuntimeClosedError extends NuvolaError {
  declare readonly code: CodeOf<'RuntimeClosedError'>;
  constructor(code: CodeOf<'RuntimeClosedError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** A state operation failed: tier unavailable, bounds, locks, leases, access control, a bad key. */
export class StateError extends NuvolaError {
  declare readonly code: CodeOf<'StateError'>;
  constructor(code: CodeOf<'StateError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** A host handler failed with an error of its own (the original is `cause`). */
export class HandlerError extends NuvolaError {
  declare readonly code: CodeOf<'HandlerError'>;
  constructor(code: CodeOf<'HandlerError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** A skeleton was malformed, refused a rewrite, or one of its stages failed (`cause` holds the stage's error). */
export class SkeletonError extends NuvolaError {
  declare readonly code: CodeOf<'SkeletonError'>;
  constructor(code: CodeOf<'SkeletonError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** A GPU kernel call failed: bad arguments, a kernel that does not compile, a lost device, a timeout. */
export class KernelError extends NuvolaError {
  declare readonly code: CodeOf<'KernelError'>;
  constructor(code: CodeOf<'KernelError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
/** Cluster mode: the cluster's Redis or hosts are not there to take a call, what was read from
 * Redis failed verification, a host does not grant what a function asks, or an idempotency key
 * was reused with another input. */
export class ClusterError extends NuvolaError {
  declare readonly code: CodeOf<'ClusterError'>;
  constructor(code: CodeOf<'ClusterError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

/** `nuvola serve` refused an HTTP request: no or a wrong token, an unknown route, a client too slow, a malformed request. */
export class ServeError extends NuvolaError {
  declare readonly code: CodeOf<'ServeError'>;
  constructor(code: CodeOf<'ServeError'>, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

type ErrorClass = new (code: never, message: string, details?: ErrorDetails, options?: { cause?: unknown }) => NuvolaError;

const classes: Record<ErrorClassName, ErrorClass> = {
  InvalidOptionError,
  ModuleError,
  RegistryError,
  LimitError,
  GuestError,
  TimeoutError,
  CancelledError,
  WorkerLostError,
  RuntimeClosedError,
  StateError,
  HandlerError,
  SkeletonError,
  KernelError,
  ClusterError,
  ServeError,
};

/** Builds the error class that matches `code`. */
export function makeError(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }): NuvolaError {
  return new (
    classes[ERRORS[code].class] as new (
      code: ErrorCode,
      message: string,
      details?: ErrorDetails,
      options?: { cause?: unknown },
    ) => NuvolaError
  )(code, message, details, options);
}

/** Rebuilds an error that crossed a thread. */
export function fromWire(wire: WireError): NuvolaError {
  return makeError(wire.code, wire.message, wire.details);
}

/** Converts anything thrown into the wire form, keeping nuvola errors (and plain objects with a nuvola code) as they are. */
export function toWire(err: unknown, fallback: ErrorCode = ErrorCode.GUEST_TRAP): WireError {
  if (err instanceof NuvolaError) return cloneable(err.toWire());
  const coded = err as { code?: unknown; message?: unknown; details?: unknown };
  if (typeof coded?.code === 'string' && Object.hasOwn(ERRORS, coded.code) && typeof coded.message === 'string') {
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

/** Rebuilds anything thrown as a NuvolaError (anything with a nuvola code keeps it). */
export function asNuvolaError(err: unknown, fallback: ErrorCode = ErrorCode.GUEST_TRAP): NuvolaError {
  return err instanceof NuvolaError ? err : fromWire(toWire(err, fallback));
}
