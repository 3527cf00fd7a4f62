// The host/guest ABI, version 1. This file is compiled by both sides: the AssemblyScript SDK
// (guest/sdk/nuvola) and the TypeScript host (runtime/). Keep it portable: plain `const` numbers and
// strings only, no types that exist on one side alone.
//
// AssemblyScript's `@external(module, name)` decorator needs string literals, so the SDK
// repeats the module and import names below; test/abi.test.ts checks that both agree.

/** Bumped on any incompatible change to the names or signatures below. */
export const ABI_VERSION = 1;

/** Import module for input, output and logging. */
export const MODULE_IO = 'nuvola:io';
/** `input_size(): i32` — the length in bytes of the invocation's input. */
export const IO_INPUT_SIZE = 'input_size';
/** `input_read(ptr: i32, len: i32): i32` — copies up to `len` input bytes to `ptr`, returns the count. */
export const IO_INPUT_READ = 'input_read';
/** `output_write(ptr: i32, len: i32): void` — sets the invocation's output (replaces earlier output). */
export const IO_OUTPUT_WRITE = 'output_write';
/** `log(ptr: i32, len: i32): void` — writes a UTF-8 line to the runtime's log. */
export const IO_LOG = 'log';
/** `sleep(ms: i32): void` — suspends the calling instance (not its worker) for `ms` milliseconds. */
export const IO_SLEEP = 'sleep';
/** `remaining_ms(): i32` — milliseconds left before the invocation's deadline (0 when past it). */
export const IO_REMAINING_MS = 'remaining_ms';

/**
 * Import module for state. Every function takes the key as (ptr, len) of UTF-8 first. Any of
 * them may suspend the guest (a pull, a contended lock). Errors trap the invocation with an
 * E_STATE_* code.
 */
export const MODULE_STATE = 'nuvola:state';
/** `size(k): i32` — bytes in the value, 0 for an unknown key. */
export const STATE_SIZE = 'size';
/** `read(k, offset, ptr, len): i32` — copies `len` bytes from `offset`; past the end traps. */
export const STATE_READ = 'read';
/** `read_all(k): i32` — stages a snapshot of the whole value (size and bytes under one read lock); returns its size. */
export const STATE_READ_ALL = 'read_all';
/** `take(ptr, len)` — copies what the last `read_all` or `appended_load` staged. */
export const STATE_TAKE = 'take';
/** Older name of `take`, still provided so guests built before `read_all` keep working. */
export const STATE_APPENDED_TAKE = 'appended_take';
/** `write(k, ptr, len)` — replaces the whole value. */
export const STATE_WRITE = 'write';
/** `write_at(k, offset, ptr, len)` — writes inside the current value; past the end traps. */
export const STATE_WRITE_AT = 'write_at';
/** `append(k, ptr, len)` — adds an entry to the key's appended list (global tier). */
export const STATE_APPEND = 'append';
/** `appended_load(k): i32` — stages the appended list; returns the bytes of its encoding (u32 count, then u32 length + bytes each). */
export const STATE_APPENDED_LOAD = 'appended_load';
export const STATE_CLEAR_APPENDED = 'clear_appended';
export const STATE_PUSH = 'push';
export const STATE_PUSH_PARTIAL = 'push_partial';
export const STATE_PULL = 'pull';
export const STATE_DELETE = 'delete';
export const STATE_LOCK_READ = 'lock_read';
export const STATE_UNLOCK_READ = 'unlock_read';
export const STATE_LOCK_WRITE = 'lock_write';
export const STATE_UNLOCK_WRITE = 'unlock_write';
export const STATE_LOCK_GLOBAL_READ = 'lock_global_read';
export const STATE_UNLOCK_GLOBAL_READ = 'unlock_global_read';
export const STATE_LOCK_GLOBAL_WRITE = 'lock_global_write';
export const STATE_UNLOCK_GLOBAL_WRITE = 'unlock_global_write';
/** `(k, kl, delta: i64) → i64`: adds to the key's global i64 value atomically, returns the new value. */
export const STATE_INCREMENT_GLOBAL = 'increment_global';
/** `(k, kl, expected: i64, value: i64) → i32`: 1 if the global i64 value was `expected` and is now `value`, else 0. */
export const STATE_COMPARE_SWAP_GLOBAL = 'compare_swap_global';

/**
 * Import module for chaining: a guest calling other registered functions. Ids are per
 * invocation (1, 2, …); using an id this invocation did not get traps with E_CHAIN_ID.
 */
export const MODULE_CHAIN = 'nuvola:chain';
/**
 * `call(name_ptr, name_len, input_ptr, input_len): i32` — starts the call and returns its id at
 * once; a name outside the function's `callees` (when it was registered with them) traps with
 * E_CHAIN_DENIED.
 */
export const CHAIN_CALL = 'call';
/** `wait(id): i32` — suspends until the call ends: its return code, or CHAIN_FAILED if it did not return. */
export const CHAIN_WAIT = 'wait';
/** `output_size(id): i32` — waits, then the bytes of the call's output (of its error message, if it failed). */
export const CHAIN_OUTPUT_SIZE = 'output_size';
/** `output_read(id, ptr, len): i32` — copies up to `len` bytes of that output; returns the count. */
export const CHAIN_OUTPUT_READ = 'output_read';
/** What `wait` returns for a call that trapped, timed out, or could not start (i32 minimum). */
export const CHAIN_FAILED = -2147483648;

/**
 * Import module for messaging between the ranks of a group started by `invokeGroup`. Outside a
 * group an invocation is rank 0 of a group of size 1. Sending to or receiving from a rank
 * that does not exist, or itself, traps with E_COMM_RANK; a message over `maxMessageBytes`
 * with E_MESSAGE_TOO_LARGE; a receive while another rank of the group failed, with
 * E_COMM_ABORTED.
 */
export const MODULE_COMM = 'nuvola:comm';
/** `rank(): i32` — this invocation's rank, 0..size-1. */
export const COMM_RANK = 'rank';
/** `size(): i32` — how many ranks the group has. */
export const COMM_SIZE = 'size';
/** `send(to, ptr, len)` — sends a copy of the bytes to rank `to`; returns at once (buffered). */
export const COMM_SEND = 'send';
/** `recv(from): i32` — suspends until the next message from `from` is there; stages it and returns its size. */
export const COMM_RECV = 'recv';
/** `take(ptr, len)` — copies the message the last `recv` staged. */
export const COMM_TAKE = 'take';

/**
 * GPU kernels (see kernels/ on the host): every import suspends the guest while the kernel
 * runs (its worker serves others); arrays are f32, passed as pointer and length in floats.
 * Results are written to `out` (which must hold them). Bad arguments trap with E_KERNEL_ARGS,
 * a lost device with E_KERNEL_DEVICE_LOST, a kernel past `maxKernelMs` with E_KERNEL_TIMEOUT.
 */
export const MODULE_KERNELS = 'nuvola:kernels';
/** `available(): i32` — 1 when kernels run on a GPU, 0 on the CPU path. */
export const KERNELS_AVAILABLE = 'available';
/** `matmul_f32(a, b, m, k, n, out)` — out (m×n) = a (m×k) · b (k×n), row-major. */
export const KERNELS_MATMUL_F32 = 'matmul_f32';
/** `saxpy_f32(alpha, x, y, n, out)` — out = alpha · x + y. */
export const KERNELS_SAXPY_F32 = 'saxpy_f32';
/** `add_f32(x, y, n, out)`, `mul_f32(x, y, n, out)` — elementwise. */
export const KERNELS_ADD_F32 = 'add_f32';
export const KERNELS_MUL_F32 = 'mul_f32';
/** `sum_f32(x, n): f32`, `max_f32(x, n): f32`. */
export const KERNELS_SUM_F32 = 'sum_f32';
export const KERNELS_MAX_F32 = 'max_f32';
/** `scan_f32(x, n, out)` — inclusive prefix sums. */
export const KERNELS_SCAN_F32 = 'scan_f32';
/** `conv2d_f32(img, h, w, kernel, kh, kw, out)` — same-size convolution, zeros outside. */
export const KERNELS_CONV2D_F32 = 'conv2d_f32';
/**
 * `run(name, nameLen, inputs, inputsLen, params, paramsLen, gx, gy, gz, out, outLen)` — a
 * kernel the host registered: `inputs` is a framed list of f32 arrays (bytes), `params` u32s.
 */
export const KERNELS_RUN = 'run';

/** Import module for the host's monotonic clock and random source. Neither suspends. */
export const MODULE_SYS = 'nuvola:sys';
/**
 * `monotonic_ns(): i64` — nanoseconds on a clock that never goes back, from an arbitrary start;
 * one clock for every worker of a host, so it is monotonic across calls too.
 */
export const SYS_MONOTONIC_NS = 'monotonic_ns';
/** `random_bytes(ptr: i32, len: i32): void` — fills `len` bytes at `ptr` from the host's cryptographic random source. */
export const SYS_RANDOM_BYTES = 'random_bytes';
/** `random_u64(): i64` — 64 bits from the same source. */
export const SYS_RANDOM_U64 = 'random_u64';

/**
 * Import module for shared memory regions: state keys mapped into the guest, read and written
 * in place. `map` and `grow` are host calls (they may suspend); every other import is an
 * accessor that nuvola's rewrite turns into a bounds-checked load, store, atomic or
 * `memory.copy` on the host's region memory, inline: no host call per access. A slot is the
 * small integer `map` returned; an offset past the region's live size traps (E_GUEST_TRAP).
 */
export const MODULE_REGION = 'nuvola:region';
/** `map(k, kl, size: i32): i32` — maps the key (created zero-filled at `size` if absent, grown if smaller); returns its slot. */
export const REGION_MAP = 'map';
/** `grow(slot, size: i32)` — grows the mapped key to `size` bytes (zero tail); never shrinks. */
export const REGION_GROW = 'grow';
/** `size(slot): i32` — the key's live size in bytes (an atomic load: sees other instances' growth). */
export const REGION_SIZE = 'size';
/** `get_f64(slot, off): f64`, and likewise `get_f32`, `get_i32`, `get_u8` (zero-extended to i32). */
export const REGION_GET_F64 = 'get_f64';
export const REGION_GET_F32 = 'get_f32';
export const REGION_GET_I32 = 'get_i32';
export const REGION_GET_U8 = 'get_u8';
/** `set_f64(slot, off, v: f64)`, and likewise `set_f32`, `set_i32`, `set_u8` (the low byte of an i32). */
export const REGION_SET_F64 = 'set_f64';
export const REGION_SET_F32 = 'set_f32';
export const REGION_SET_I32 = 'set_i32';
export const REGION_SET_U8 = 'set_u8';
/** `read_into(slot, off, dst, len)` — copies `len` bytes of the region at `off` to `dst` in the guest's memory. */
export const REGION_READ_INTO = 'read_into';
/** `write_from(slot, off, src, len)` — copies `len` bytes at `src` in the guest's memory into the region at `off`. */
export const REGION_WRITE_FROM = 'write_from';
/** `atomic_add_i32(slot, off, v): i32` — atomic add; returns the old value. `off` must be a multiple of 4 (else traps). */
export const REGION_ATOMIC_ADD_I32 = 'atomic_add_i32';
/** `compare_exchange_i32(slot, off, expected, v): i32` — atomic compare-exchange; returns the old value. */
export const REGION_COMPARE_EXCHANGE_I32 = 'compare_exchange_i32';
/** Regions one call may map at once (slots 0 to 15); mapping one more fails with E_INSTANCE_LIMIT. */
export const REGION_SLOTS = 16;

/**
 * AssemblyScript's own runtime imports. They live in module "env" because the compiler emits
 * them there; nuvola's capabilities never use "env".
 */
export const MODULE_ENV = 'env';
export const ENV_ABORT = 'abort';
export const ENV_TRACE = 'trace';
export const ENV_SEED = 'seed';

/** Exported entry point, `main(): i32`, whose result is the invocation's return code. */
export const EXPORT_MAIN = 'main';
/**
 * Optional export, `init(): void`, run once per registration after the top-level statements;
 * the instance is then snapshotted and every instance starts from that snapshot.
 */
export const EXPORT_INIT = 'init';
/** Optional export that runs top-level statements (`asc --exportStart`), once, before `init`. */
export const EXPORT_START = '_initialize';
/** AssemblyScript's full garbage collection (`asc --exportRuntime`), run before the snapshot. */
export const EXPORT_COLLECT = '__collect';
/** The linear memory every guest must export. */
export const EXPORT_MEMORY = 'memory';

/** Size of one Wasm page in bytes. */
export const PAGE_SIZE = 65536;
