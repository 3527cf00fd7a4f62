/**
 * One key of the local tier: its bytes and bookkeeping in SharedArrayBuffers that every
 * thread of the process can map, so workers read and write values without copies between
 * threads. Any thread may use it; it knows nothing of Wasm or workers.
 *
 * Layout: `meta` holds Int32 header words (size, capacity, lock, retired, version, maps), the
 * read locks counted per holder thread and — for a key in the region arena, the only kind that
 * can be mapped — the maps counted per holder, then one flag byte per chunk (PRESENT: the
 * local bytes are valid; DIRTY: written locally and not yet pushed); `data` holds `capacity`
 * bytes — a SharedArrayBuffer of its own, or a block of the region arena
 * (state/region-arena.ts) for a key that is mapped: then `offset` says where in the arena's
 * buffer, and the i32 at `sizeAddr` there mirrors the size word for guests to read.
 */

/** Bytes per chunk: the unit of partial pull and partial push. */
export const CHUNK_BYTES = 64 * 1024;

const SIZE = 0;
const CAPACITY = 1;
const LOCK = 2;
const RETIRED = 3;
const VERSION = 4;
/** Maps counted on this allocation (all holders), or −1 once it is frozen for retiring (no map may be added). */
const MAPS = 5;
const HEADER_WORDS = 8;
/**
 * Lock holders are threads, numbered 1 (the thread that owns the store) and up; each key keeps
 * how many read locks every holder has, so that the locks of a thread that died can be given
 * back ({@link KeyState.releaseHolder}).
 */
export const MAX_HOLDERS = 260;
const READERS = HEADER_WORDS;
/** Maps counted per holder, so that a dead thread's can be given back (arena keys only: others cannot be mapped). */
const MAPPERS = READERS + MAX_HOLDERS;
/** Header words of a key with its own buffer, and of one in the region arena. */
const META_WORDS = MAPPERS;
const ARENA_META_WORDS = MAPPERS + MAX_HOLDERS;

/** This thread's holder number (1 unless {@link setLockHolder} says otherwise). */
let holder = 1;

/** Sets this thread's holder number, 1 to MAX_HOLDERS - 1. Call once, before taking any lock. */
export function setLockHolder(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id >= MAX_HOLDERS) throw new RangeError(`lock holder must be 1 to ${MAX_HOLDERS - 1}, got ${id}`);
  holder = id;
}

export const PRESENT = 1;
export const DIRTY = 2;

/**
 * Values of 1 MiB and more get room in whole 2 MiB steps. Measured on Linux/x64 with Node 24:
 * copying 1 MiB out of a 1 MiB SharedArrayBuffer runs at ~12 GB/s, out of one of 2 MiB or
 * more at ~40 GB/s (the kernel can back the larger mapping with huge pages), the same as
 * ordinary memory. The cost is at most 2 MiB of room per large value.
 */
const LARGE_BYTES = 1024 * 1024;
const LARGE_STEP = 2 * 1024 * 1024;

/** The most room one value may have: its size is kept in an Int32 word. */
const MAX_CAPACITY = 0x7fffffff;

/** The room an allocation asked to hold `bytes` gets. */
export function roundCapacity(bytes: number): number {
  return bytes < LARGE_BYTES ? bytes : Math.min(MAX_CAPACITY, Math.ceil(bytes / LARGE_STEP) * LARGE_STEP);
}

/** The shareable part of a key: pass it to another thread and wrap it there with `new KeyState`. */
export interface KeyHandle {
  key: string;
  meta: SharedArrayBuffer;
  data: SharedArrayBuffer;
  /** Where the bytes start in `data` (the region arena's buffer); 0 or absent for a key with its own buffer. */
  offset?: number;
  /** In the arena only: where in `data` the i32 mirror of the size lives. */
  sizeAddr?: number;
}

/** A byte range `[offset, offset + length)`. */
export interface Range {
  offset: number;
  length: number;
}

export class KeyState {
  readonly key: string;
  readonly handle: KeyHandle;
  private readonly words: Int32Array;
  private readonly flags: Uint8Array;
  /** In the arena only: the size word guests read (i32 at `sizeAddr`). */
  private readonly mirror: Int32Array | undefined;
  readonly bytes: Uint8Array;
  /** The same bytes as a Buffer: copying out of shared memory, `Buffer.copy` is faster than `TypedArray.set` (bench/README.md). */
  private readonly buffer: Buffer;

  constructor(handle: KeyHandle) {
    this.key = handle.key;
    this.handle = handle;
    const words = handle.sizeAddr === undefined ? META_WORDS : ARENA_META_WORDS;
    this.words = new Int32Array(handle.meta, 0, words);
    this.flags = new Uint8Array(handle.meta, words * 4);
    const offset = handle.offset ?? 0;
    const capacity = handle.sizeAddr === undefined ? handle.data.byteLength - offset : this.words[CAPACITY]!;
    this.bytes = new Uint8Array(handle.data, offset, capacity);
    this.buffer = Buffer.from(handle.data, offset, capacity);
    this.mirror = handle.sizeAddr === undefined ? undefined : new Int32Array(handle.data, handle.sizeAddr, 1);
  }

  /** A new key of `size` bytes (zeros) and room for `capacity`; its chunks are present or to be pulled. */
  static create(key: string, size: number, capacity: number, present: boolean): KeyState {
    const cap = roundCapacity(Math.max(capacity, size));
    const chunks = Math.max(1, Math.ceil(cap / CHUNK_BYTES));
    const handle: KeyHandle = {
      key,
      meta: new SharedArrayBuffer(META_WORDS * 4 + chunks),
      data: new SharedArrayBuffer(cap),
    };
    const state = new KeyState(handle);
    state.words[SIZE] = size;
    state.words[CAPACITY] = cap;
    if (present) state.flags.fill(PRESENT);
    return state;
  }

  /**
   * A new key of `size` bytes in a block of the region arena (`buffer`: the arena's buffer,
   * covering the block; the block's bytes are zero). Its chunks are present or to be pulled.
   */
  static inBlock(
    key: string,
    size: number,
    block: { base: number; sizeAddr: number; capacity: number },
    buffer: SharedArrayBuffer,
    present: boolean,
  ): KeyState {
    const chunks = Math.max(1, Math.ceil(block.capacity / CHUNK_BYTES));
    const meta = new SharedArrayBuffer(ARENA_META_WORDS * 4 + chunks);
    new Int32Array(meta, 0, ARENA_META_WORDS)[CAPACITY] = block.capacity;
    const state = new KeyState({ key, meta, data: buffer, offset: block.base, sizeAddr: block.sizeAddr });
    state.size = size;
    if (present) state.flags.fill(PRESENT);
    return state;
  }

  /** Whether the bytes are a block of the region arena. */
  get inArena(): boolean {
    return this.mirror !== undefined;
  }

  get size(): number {
    return Atomics.load(this.words, SIZE);
  }

  set size(value: number) {
    Atomics.store(this.words, SIZE, value);
    if (this.mirror !== undefined) Atomics.store(this.mirror, 0, value);
  }

  get capacity(): number {
    return this.words[CAPACITY]!;
  }

  /** Set once this allocation was replaced (resized, deleted): holders must look the key up again. */
  get retired(): boolean {
    return Atomics.load(this.words, RETIRED) !== 0;
  }

  retire(): void {
    Atomics.store(this.words, RETIRED, 1);
    // Wake lock waiters so they notice.
    Atomics.notify(this.words, LOCK);
  }

  /**
   * Copies another allocation's bytes, size, chunk flags and counted maps into this larger one;
   * with `carryLock`, also its lock word, so a holder's lock continues on the new allocation.
   */
  copyFrom(other: KeyState, carryLock: boolean): void {
    this.bytes.set(other.bytes.subarray(0, other.size));
    this.flags.set(other.flags.subarray(0, Math.min(other.flags.length, this.flags.length)));
    this.size = other.size;
    let maps = 0;
    if (this.inArena && other.inArena) {
      for (let i = MAPPERS; i < ARENA_META_WORDS; i++) {
        const n = Atomics.load(other.words, i);
        Atomics.store(this.words, i, n);
        maps += n;
      }
    }
    Atomics.store(this.words, MAPS, maps);
    if (carryLock) {
      for (let i = READERS; i < MAPPERS; i++) Atomics.store(this.words, i, Atomics.load(other.words, i));
      Atomics.store(this.words, LOCK, Atomics.load(other.words, LOCK));
    }
  }

  /** Bumped by every local write. */
  get version(): number {
    return Atomics.load(this.words, VERSION);
  }

  private chunks(range: Range): [number, number] {
    const first = Math.floor(range.offset / CHUNK_BYTES);
    const last = range.length === 0 ? first - 1 : Math.floor((range.offset + range.length - 1) / CHUNK_BYTES);
    return [first, last];
  }

  /** Byte ranges (whole chunks, clipped to the size) in `range` whose chunks are not present. */
  missing(range: Range): Range[] {
    const [first, last] = this.chunks(range);
    return this.collect(first, last, (f) => (f & PRESENT) === 0);
  }

  /** Byte ranges (whole chunks, clipped to the size) that are dirty. */
  dirty(): Range[] {
    const [first, last] = this.chunks({ offset: 0, length: this.size });
    return this.collect(first, last, (f) => (f & DIRTY) !== 0);
  }

  private collect(first: number, last: number, test: (flags: number) => boolean): Range[] {
    const out: Range[] = [];
    const size = this.size;
    for (let c = first; c <= last; c++) {
      if (!test(Atomics.load(this.flags, c))) continue;
      const offset = c * CHUNK_BYTES;
      const end = Math.min(size, offset + CHUNK_BYTES);
      const prev = out[out.length - 1];
      if (prev !== undefined && prev.offset + prev.length === offset) prev.length = end - prev.offset;
      else out.push({ offset, length: end - offset });
    }
    return out;
  }

  mark(range: Range, flag: number): void {
    const [first, last] = this.chunks(range);
    for (let c = first; c <= last; c++) Atomics.or(this.flags, c, flag);
  }

  unmark(range: Range, flag: number): void {
    const [first, last] = this.chunks(range);
    for (let c = first; c <= last; c++) Atomics.and(this.flags, c, ~flag & 0xff);
  }

  /** Whether every chunk in `range` is present. */
  isPresent(range: Range): boolean {
    return this.missing(range).length === 0;
  }

  /** Copies bytes out; the caller holds a lock and has checked bounds and presence. */
  read(range: Range, into: Uint8Array): void {
    this.buffer.copy(into, 0, range.offset, range.offset + range.length);
  }

  /** Copies `range` into `out` at `at` (the caller holds a lock). */
  copyOut(range: Range, out: Buffer, at: number): void {
    this.buffer.copy(out, at, range.offset, range.offset + range.length);
  }

  /** Copies bytes in and marks them present and dirty; the caller holds the write lock and checked bounds. */
  write(offset: number, data: Uint8Array): void {
    // Into shared memory, TypedArray.set measured a little faster than Buffer.copy (9.1 vs 7.7 GB/s).
    this.bytes.set(data, offset);
    this.mark({ offset, length: data.byteLength }, PRESENT | DIRTY);
    Atomics.add(this.words, VERSION, 1);
  }

  /** Bytes arrived from the global tier: present and clean (unless mapped). The caller holds the write lock. */
  fill(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
    const range = { offset, length: data.byteLength };
    this.mark(range, PRESENT);
    this.clean(range);
  }

  /**
   * Clears the dirty marks in `range` — unless a map is counted: guests store into a mapped
   * key without telling anyone, so its chunks stay dirty while it is mapped. (Cleared first and
   * the maps read after, while {@link addMap} counts first and marks after: whichever comes
   * second leaves the chunks dirty.)
   */
  clean(range: Range): void {
    this.unmark(range, DIRTY);
    if (this.maps() > 0) this.mark(range, DIRTY);
  }

  // Maps: how many guest calls (or host views) use the bytes in place right now, per holder.
  // A counted map keeps the allocation where it is: it may not be retired (grown elsewhere,
  // relocated, deleted) until the maps are dropped, except by the one holder that owns them all.

  /**
   * Counts a map by this thread and marks every chunk dirty. False (nothing counted) when the
   * allocation was frozen for retiring meanwhile: look the key up again.
   */
  addMap(): boolean {
    if (!this.inArena) throw new Error(`'${this.key}' is not in the region arena: map it through mapRegion`);
    for (;;) {
      const v = Atomics.load(this.words, MAPS);
      if (v < 0) return false;
      if (Atomics.compareExchange(this.words, MAPS, v, v + 1) === v) break;
    }
    Atomics.add(this.words, MAPPERS + holder, 1);
    this.mark({ offset: 0, length: this.capacity }, DIRTY);
    return true;
  }

  /** Drops one map this thread counted (none counted: nothing happens). */
  dropMap(): void {
    if (!this.inArena) return;
    for (;;) {
      const mine = Atomics.load(this.words, MAPPERS + holder);
      if (mine <= 0) return;
      if (Atomics.compareExchange(this.words, MAPPERS + holder, mine, mine - 1) === mine) break;
    }
    this.uncount(1);
  }

  /** Maps counted, all holders together. */
  maps(): number {
    return Math.max(0, Atomics.load(this.words, MAPS));
  }

  /** Maps this thread counted. */
  ownMaps(): number {
    return this.inArena ? Atomics.load(this.words, MAPPERS + holder) : 0;
  }

  /**
   * Freezes the map count for retiring this allocation when exactly `expected` maps are
   * counted (the retiring caller's own): no map can be added after. False when others are.
   */
  freezeMaps(expected: number): boolean {
    return Atomics.compareExchange(this.words, MAPS, expected, -1) === expected;
  }

  private uncount(n: number): void {
    for (;;) {
      const v = Atomics.load(this.words, MAPS);
      if (v < 0) return;
      if (Atomics.compareExchange(this.words, MAPS, v, Math.max(0, v - n)) === v) return;
    }
  }

  // Read/write lock on one Int32 word: 0 free, n > 0 held by n readers, -1 held by a writer.

  // The lock word: 0 free, n > 0 held by n readers, -h held for writing by holder h.

  tryLockRead(): boolean {
    for (;;) {
      const v = Atomics.load(this.words, LOCK);
      if (v < 0) return false;
      if (Atomics.compareExchange(this.words, LOCK, v, v + 1) === v) {
        Atomics.add(this.words, READERS + holder, 1);
        return true;
      }
    }
  }

  tryLockWrite(): boolean {
    return Atomics.compareExchange(this.words, LOCK, 0, -holder) === 0;
  }

  unlockRead(): void {
    Atomics.sub(this.words, READERS + holder, 1);
    if (Atomics.sub(this.words, LOCK, 1) === 1) Atomics.notify(this.words, LOCK);
  }

  /** Gives back every lock and map holder `id` (a thread that died) held on this key. */
  releaseHolder(id: number): void {
    const maps = this.inArena ? Atomics.exchange(this.words, MAPPERS + id, 0) : 0;
    if (maps > 0) this.uncount(maps);
    if (Atomics.compareExchange(this.words, LOCK, -id, 0) === -id) {
      Atomics.notify(this.words, LOCK);
      return;
    }
    const reads = Atomics.exchange(this.words, READERS + id, 0);
    if (reads > 0 && Atomics.sub(this.words, LOCK, reads) === reads) Atomics.notify(this.words, LOCK);
  }

  unlockWrite(): void {
    Atomics.store(this.words, LOCK, 0);
    Atomics.notify(this.words, LOCK);
  }

  /**
   * Waits, without blocking the thread, until the lock is taken (true), or this allocation is
   * retired or `cancelled()` turns true (false: nothing is held). With `cancelled`, the wait
   * re-checks it at least every 50 ms.
   */
  async lock(mode: 'read' | 'write', cancelled?: () => boolean): Promise<boolean> {
    const attempt = mode === 'read' ? () => this.tryLockRead() : () => this.tryLockWrite();
    while (!attempt()) {
      if (this.retired || cancelled?.()) return false;
      const seen = Atomics.load(this.words, LOCK);
      if ((mode === 'read' && seen >= 0) || (mode === 'write' && seen === 0)) continue;
      const wait = Atomics.waitAsync(this.words, LOCK, seen, cancelled === undefined ? undefined : 50);
      if (wait.async) await wait.value;
    }
    if (cancelled?.()) {
      this.unlock(mode);
      return false;
    }
    return true;
  }

  unlock(mode: 'read' | 'write'): void {
    if (mode === 'read') this.unlockRead();
    else this.unlockWrite();
  }
}
