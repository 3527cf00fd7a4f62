/**
 * Any thread (the store's thread places blocks). The region arena: one shared
 * `WebAssembly.Memory` per process that holds the local-tier bytes of every key a guest or the
 * embedding service maps (state/README.md, "Regions"). Workers import this very memory into
 * their instances, so the bytes a guest loads and stores are the key's bytes — no copy.
 *
 * The arena is an allocator of blocks: each block is a 64-byte header (its first i32 is the
 * key's live size, kept by {@link KeyState}) followed by the key's data, 64-byte aligned. The
 * memory grows by whole pages as blocks are placed, up to its maximum; it never shrinks (Wasm
 * memories cannot), but freed blocks are reused. Creating it costs virtual address space only:
 * pages are backed as they are touched. Its first 64 bytes are never given out and stay zero
 * (the guest side reads an empty slot's size there: 0, so every access through it traps).
 */

/** Bytes of a Wasm page: the unit the arena grows by. */
export const PAGE_BYTES = 64 * 1024;
/** Alignment of every block's data (one cache line), and the size of the header before it. */
export const BLOCK_ALIGN = 64;
/** The most an arena may hold: a wasm32 memory's 65 535 pages (4 GiB − 64 KiB). */
export const MAX_ARENA_BYTES = 4 * 1024 * 1024 * 1024 - PAGE_BYTES;
/** The default maximum (`regionBytes`). */
export const DEFAULT_ARENA_BYTES = 1024 * 1024 * 1024;

/** A placed block: the key's data is `[base, base + capacity)`, its live size the i32 at `sizeAddr`. */
export interface Block {
  base: number;
  sizeAddr: number;
  capacity: number;
}

/** A run of free bytes in the arena. */
interface Extent {
  start: number;
  length: number;
}

function align(bytes: number): number {
  return Math.ceil(bytes / BLOCK_ALIGN) * BLOCK_ALIGN;
}

export class RegionArena {
  /** The shared memory every worker imports. */
  readonly memory: WebAssembly.Memory;
  /** Its maximum, in bytes (a whole number of pages). */
  readonly maxBytes: number;
  /** Free extents below {@link top}, sorted by start, never adjacent (merged). */
  private readonly free: Extent[] = [];
  /** Everything at and above this offset is unused. Offset 0 is never given out. */
  private top = BLOCK_ALIGN;
  /** The highest {@link top} ever reached: bytes above it are still as the memory grew them (zero). */
  private touched = BLOCK_ALIGN;
  private placed = 0;

  /** `maxBytes`: rounded down to whole pages, at least one page, at most {@link MAX_ARENA_BYTES}. */
  constructor(maxBytes: number = DEFAULT_ARENA_BYTES) {
    if (!Number.isInteger(maxBytes) || maxBytes < PAGE_BYTES || maxBytes > MAX_ARENA_BYTES) {
      throw new RangeError(`region arena must be ${PAGE_BYTES} to ${MAX_ARENA_BYTES} bytes, got ${maxBytes}`);
    }
    const pages = Math.floor(maxBytes / PAGE_BYTES);
    this.maxBytes = pages * PAGE_BYTES;
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: pages, shared: true });
  }

  /** The largest capacity one block can have (the whole arena, less its header and offset 0's line). */
  get maxCapacity(): number {
    return this.maxBytes - 2 * BLOCK_ALIGN;
  }

  /** The memory's buffer now (covers every block placed so far). */
  get buffer(): SharedArrayBuffer {
    return this.memory.buffer as unknown as SharedArrayBuffer;
  }

  /** Bytes in placed blocks (headers included). */
  get used(): number {
    return this.placed;
  }

  /** The room a block asked for `bytes` gets: whole 64-byte lines, at least one. */
  static capacityFor(bytes: number): number {
    return Math.max(BLOCK_ALIGN, align(bytes));
  }

  /**
   * Places a block with room for `bytes` (rounded by {@link capacityFor}), its data zeroed.
   * Undefined when the arena has no run of free bytes that long, even after growing to its
   * maximum. First fit over the free extents, else at the top.
   */
  place(bytes: number): Block | undefined {
    const capacity = RegionArena.capacityFor(bytes);
    const length = capacity + BLOCK_ALIGN;
    let start: number;
    const index = this.free.findIndex((e) => e.length >= length);
    if (index >= 0) {
      const extent = this.free[index]!;
      start = extent.start;
      if (extent.length === length) this.free.splice(index, 1);
      else {
        extent.start += length;
        extent.length -= length;
      }
    } else {
      if (this.top + length > this.maxBytes) return undefined;
      start = this.top;
      this.top += length;
      const have = this.memory.buffer.byteLength;
      if (this.top > have) this.memory.grow(Math.ceil((this.top - have) / PAGE_BYTES));
    }
    this.placed += length;
    const block = { base: start + BLOCK_ALIGN, sizeAddr: start, capacity };
    // Bytes never given out before are zero already (as the memory grew them); reused ones are not.
    const dirtyEnd = Math.min(start + length, this.touched);
    if (dirtyEnd > start) new Uint8Array(this.buffer, start, dirtyEnd - start).fill(0);
    this.touched = Math.max(this.touched, this.top);
    return block;
  }

  /**
   * Gives a block back for reuse. Call it only once no thread can reach the block's bytes any
   * more: its key's allocation retired under the write lock and no map counted on it.
   */
  release(block: Block): void {
    const start = block.sizeAddr;
    const length = block.capacity + BLOCK_ALIGN;
    this.placed -= length;
    let index = this.free.findIndex((e) => e.start > start);
    if (index < 0) index = this.free.length;
    const before = this.free[index - 1];
    const after = this.free[index];
    let extent: Extent;
    if (before !== undefined && before.start + before.length === start) {
      before.length += length;
      extent = before;
      index--;
    } else {
      extent = { start, length };
      this.free.splice(index, 0, extent);
    }
    if (after !== undefined && extent.start + extent.length === after.start) {
      extent.length += after.length;
      this.free.splice(index + 1, 1);
    }
    // A free run that reaches the top is the top.
    const last = this.free[this.free.length - 1];
    if (last !== undefined && last.start + last.length === this.top) {
      this.top = last.start;
      this.free.pop();
    }
  }
}
