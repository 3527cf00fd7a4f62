/**
 * Main and worker thread. The names a snapshot-ready module uses between nuvola's rewrite
 * (rewrite.ts, at register) and the worker that boots and restores it (worker/instance.ts).
 * None of them is visible to guest code: the guest's own code never names them.
 */

/** Import module of the two memories every rewritten module imports. */
export const SNAPSHOT_MODULE = 'nuvola:snapshot';
/** The guest's linear memory (memory 0), created by the host so it can be pre-filled. */
export const IMPORT_MEMORY = 'memory';
/** The worker's dirty map (memory 1), shared by every instance on the worker. */
export const IMPORT_DIRTY = 'dirty';
/**
 * `(area: i32, base: i32) -> ()`: sets the instance's offset into the dirty map to `base` and
 * every mutable global from the 8-byte slots at `area` in the dirty-map memory.
 */
export const EXPORT_LOAD = '__nuvola_load';
/** `(area: i32) -> ()`: writes every mutable global to the 8-byte slots at `area`. */
export const EXPORT_SAVE = '__nuvola_save';
/**
 * The worker's interrupt word (memory 2: one shared page; the i32 at 0). The rewritten code
 * checks it at every function entry and loop header and traps when it names the call the
 * instance runs (see `EXPORT_ARM`); the pool writes it when a call on the CPU passes its
 * deadline. It holds {@link NO_INTERRUPT} otherwise.
 */
export const IMPORT_INTERRUPT = 'interrupt';
/** What the interrupt word holds when no call is to be interrupted (no call has this id). */
export const NO_INTERRUPT = -0x80000000;
/**
 * The id a registration's start-up code (start function, `init()`) is armed with, by the
 * registration's sequence number: negative and congruent to 1 modulo 512, so that it is never a
 * call's id (those are positive, or minus a multiple of 512 plus a worker's lock holder number,
 * which is never 1) and never NO_INTERRUPT.
 */
export function startUpId(seq: number): number {
  return -((seq % 4_000_000) * 512 + 1);
}
/** `(id: i32) -> ()`: the call the instance runs from now on, which the interrupt word may name. */
export const EXPORT_ARM = '__nuvola_arm';
/**
 * With a `fuel` budget: the exported mutable i64 global the rewritten code decrements at every
 * function entry and loop header, trapping when it goes below zero. The worker sets it to the
 * budget before each call; it starts at the i64 maximum, so start-up code is not counted.
 */
export const EXPORT_FUEL = '__nuvola_fuel';
/**
 * The host's region memory (memory 3: shared, one per host), imported only by modules that
 * import `nuvola:region`. Mapped state keys live in it; the rewritten accessors reach it only
 * through a slot of the instance's slot table, bounds-checked against the key's live size.
 */
export const IMPORT_REGION = 'region';
/**
 * Bytes each region accessor touches (bulk copies take theirs as an operand): what the
 * rewritten check compares with the live size, and what the accessor's host half reports when
 * the check fails.
 */
export const REGION_ACCESS_BYTES: Readonly<Record<string, number>> = {
  get_f64: 8,
  set_f64: 8,
  get_f32: 4,
  set_f32: 4,
  get_i32: 4,
  set_i32: 4,
  get_u8: 1,
  set_u8: 1,
  atomic_add_i32: 4,
  compare_exchange_i32: 4,
};
/** Memory index of the region memory in a rewritten module. */
export const REGION_MEMORY = 3;
/**
 * Bytes of one slot in an instance's slot table: the key's base in the region memory, then the
 * address of its live size (an i32 in the region memory). An empty slot is all zeros: base 0,
 * size at address 0, where the region memory always holds 0 (no key is ever placed there).
 */
export const REGION_SLOT_BYTES = 8;
/**
 * Where an instance's slot table lies in the dirty-map memory: right after its dirty blocks
 * (`maximumPages` × 16 bytes from its base), inside its slice, where the guest's own code —
 * which names memory 0 only — cannot reach it. Slot `s` is entry `s & (REGION_SLOTS - 1)`.
 */
export function regionTableOffset(maximumPages: number): number {
  return maximumPages * 16;
}

/** The function of the original module's start section, which the rewrite removes. */
export const EXPORT_START_SECTION = '__nuvola_start';

/** What the rewrite learned about a module, sent with it to the workers. */
export interface SnapshotLayout {
  /** Value type of each mutable global, in the order of their slots (see {@link EXPORT_LOAD}). */
  globalTypes: ('i32' | 'i64' | 'f32' | 'f64')[];
  /** Whether the original module had a start section (exported as {@link EXPORT_START_SECTION}). */
  hasStart: boolean;
  /** Pages the module declares to start with. */
  initialPages: number;
  /** Pages the memory may grow to (the declared maximum, capped at `memoryLimitPages`). */
  maximumPages: number;
  /**
   * Whether the module's writes to memory are tracked, so an instance can be reset in place.
   * When not, `resetNote` says why and an instance is replaced after each call instead.
   */
  tracked: boolean;
  resetNote: string | undefined;
  /**
   * Whether the code checks the interrupt word (every tracked module does): a call looping past
   * its deadline then traps alone; otherwise its worker has to be stopped.
   */
  interruptible: boolean;
  /**
   * Whether the module imports `nuvola:region`: it then imports the region memory
   * ({@link IMPORT_REGION}) and its instances' dirty-map slices end in a slot table
   * ({@link regionTableOffset}).
   */
  regions: boolean;
  /** Whether the code counts fuel ({@link EXPORT_FUEL}): asked for at register, and the code is tracked. */
  fuel: boolean;
}

/** An active data segment the rewrite turned passive: the boot instance writes it by hand. */
export interface DataSegment {
  offset: number;
  bytes: Uint8Array;
}

/**
 * A function's state right after start-up and `init()`: the memory image and every mutable
 * global. Workers restore new instances from it and reset used ones to it.
 */
export interface Snapshot {
  /** The memory image, `pages` × 64 KiB, shared read-only by every worker. */
  image: SharedArrayBuffer;
  pages: number;
  /** Values of the mutable globals, in {@link SnapshotLayout.globalTypes} order. */
  globals: (number | bigint)[];
  /** Byte ranges of the image that are not all zero, as [start, end) pairs: what a restore copies. */
  ranges: number[];
}
