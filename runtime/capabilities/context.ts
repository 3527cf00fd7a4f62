/**
 * Worker thread. The per-instance context that host imports read and write, and the one
 * bounds-checked way to touch guest memory: a pointer or length outside the instance's own
 * memory traps that guest with `E_GUEST_POINTER` and never reads or writes anything else.
 */
import type { SourceTable } from '../source-map.js';
import { ErrorCode, GuestError } from '../errors.js';
import type { GroupRef } from '../protocol.js';

export interface GuestContext {
  readonly fn: string;
  /** Set right after instantiation; imports are never called before that. */
  memory: WebAssembly.Memory | undefined;
  /** The current invocation's input (empty between invocations). */
  input: Uint8Array;
  /** The current invocation's output, copied out of guest memory. */
  output: Uint8Array | undefined;
  readonly maxOutputBytes: number;
  readonly log: (message: string) => void;
  /** Log bytes the current invocation may still write (`maxLogBytes` per invocation). */
  logBudget: number;
  /** Id of the invocation the instance is running, 0 between invocations. */
  invocationId: number;
  /** How many times the instance has suspended in a host call, ever. */
  suspensions: number;
  /** Set when the invocation timed out while suspended: the guest must never run again. */
  cancelled: boolean;
  /** Called on cancellation by host calls that are waiting, so they stop waiting at once. */
  readonly cancelWaiters: Set<() => void>;
  /** State keys the function may touch (exact, or prefixes ending in `*`); undefined: any. */
  readonly stateKeys: readonly string[] | undefined;
  /** Functions the guest may call with chain.call; undefined: any. */
  readonly callees: readonly string[] | undefined;
  /** Wall-clock deadline of the current invocation (global lock waits end there). */
  deadline: number;
  /** The group the current invocation is a rank of (invokeGroup); undefined otherwise. */
  group: GroupRef | undefined;
  /**
   * Each capability's own state for this instance, by its index in the registry
   * (capabilities/registry.ts): a capability reads its slot through the accessor it is bound with.
   */
  readonly slots: unknown[];
  /** The registry indices of the capabilities the instance's module imports: whose hooks run for it. */
  readonly capabilities: readonly number[];
  /** Records that the host wrote [ptr, ptr + length) of guest memory, so a reset restores it. */
  written: (ptr: number, length: number) => void;
  /** Guest source positions for stack frames, when the module carries a source map. */
  readonly sources: SourceTable | undefined;
  /**
   * The instance's region slot table (nuvola:region), in memory the guest's own code cannot
   * name; undefined when its module imports no region.
   */
  readonly regionSlots: RegionSlots | undefined;
  /** What the current call used so far (runtime/worker/meter.ts); host imports add their bytes and times. */
  meter: CallMeter;
}

/** Writes an instance's slot table, which the rewritten accessors read (snapshot/layout.ts `REGION_SLOT_BYTES`). */
export interface RegionSlots {
  /** Points slot `slot` at a key: its base and the address of its live size in the region memory. */
  set(slot: number, base: number, sizeAddr: number): void;
  /** Empties every slot: each access through one traps again. */
  clear(): void;
}

/** A call's running totals on its worker, reset when the call starts (see `Usage` in runtime/metering.ts). */
export interface CallMeter {
  /** CPU of the call's finished slices, in µs. */
  cpuMicros: number;
  /** The thread's CPU time when the running slice began, in µs; -1 between slices (see worker/meter.ts). */
  sliceStart: number;
  /** `performance.now()` when the running slice began (a slice's CPU is capped at its wall time). */
  sliceWall: number;
  stateBytesRead: number;
  stateBytesWritten: number;
  statePushedBytes: number;
  kernelMs: number;
}

/** A meter at zero. */
export function newMeter(): CallMeter {
  return { cpuMicros: 0, sliceStart: -1, sliceWall: 0, stateBytesRead: 0, stateBytesWritten: 0, statePushedBytes: 0, kernelMs: 0 };
}

/**
 * Whose host imports these are. Binding imports once per worker instead of once per instance
 * saves more than the rest of a restore costs: each import reads `ref.ctx` when called, which
 * the instance sets before its code runs. That is sound only for modules that cannot suspend
 * (see workerImports in worker/instance.ts); others get a ref of their own.
 */
export interface ContextRef {
  ctx: GuestContext;
}

/** A view of `len` bytes at `ptr` in the guest's memory, or a trap when they are not all inside it. */
export function guestBytes(ctx: GuestContext, ptr: number, len: number, what: string): Uint8Array {
  const memory = ctx.memory;
  if (memory === undefined) throw new GuestError(ErrorCode.GUEST_TRAP, `function '${ctx.fn}' called ${what} before its memory existed`);
  const buffer = memory.buffer;
  // Wasm passes i32 arguments as signed numbers; reinterpret them as the unsigned addresses they are.
  const start = ptr >>> 0;
  // A length is either a guest's i32 (negative: out of range) or one the host computed from
  // guest values (an iovec count times 8), which may pass 2^32: it must not wrap to a small one.
  if (!(len >= 0) || start + len > buffer.byteLength) {
    throw new GuestError(
      ErrorCode.GUEST_POINTER,
      `function '${ctx.fn}' passed ${what} a range outside its memory (pointer ${start}, length ${len}, memory ${buffer.byteLength} bytes)`,
      { function: ctx.fn, import: what, pointer: start, length: len, memoryBytes: buffer.byteLength },
    );
  }
  return new Uint8Array(buffer, start, len);
}

/** Like {@link guestBytes}, for a range the host is about to write: the reset will restore it. */
export function guestWritable(ctx: GuestContext, ptr: number, len: number, what: string): Uint8Array {
  const bytes = guestBytes(ctx, ptr, len, what);
  ctx.written(bytes.byteOffset, bytes.byteLength);
  return bytes;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TRUNCATED = '… [log truncated: maxLogBytes reached]';

/**
 * Logs a line for the guest within its invocation's log budget (`maxLogBytes`, counted in
 * UTF-8 bytes): the part that fits, marked as cut, then nothing more. Only as much of a long
 * line is encoded as could fit, so a huge line costs no more than the budget.
 */
export function logLine(ctx: GuestContext, line: string): void {
  const budget = ctx.logBudget;
  if (budget <= 0) return;
  // Each UTF-16 unit is at least one UTF-8 byte: a line of more units cannot fit.
  const whole = line.length <= budget;
  const bytes = encoder.encode(whole ? line : line.slice(0, budget + 1));
  if (whole && bytes.byteLength <= budget) {
    ctx.logBudget = budget - bytes.byteLength;
    ctx.log(line);
    return;
  }
  ctx.logBudget = 0;
  // A character cut in two decodes to U+FFFD: drop it.
  ctx.log(`${decoder.decode(bytes.subarray(0, budget)).replace(/\uFFFD$/, '')}${TRUNCATED}`);
}
