/**
 * Worker thread. A worker's own copy of a function's snapshot image: only its non-zero
 * blocks, packed, in a plain ArrayBuffer. Copying out of the shared image (a
 * SharedArrayBuffer) is about three times slower, since V8 copies shared memory with relaxed
 * atomic word copies; a restore and every reset copy from this one instead.
 */
import { BLOCK_BYTES, BLOCK_SHIFT } from '../snapshot/code.js';
import type { Snapshot } from '../snapshot/layout.js';

export class LocalImage {
  /** Size of the image, in bytes. */
  readonly bytes: number;
  private readonly packed: Uint8Array;
  /** Per block: its offset in `packed`, or -1 for a block of zeros. */
  private readonly offsets: Int32Array;
  private readonly ranges: readonly number[];

  constructor(snapshot: Snapshot) {
    this.bytes = snapshot.pages * 65536;
    this.ranges = snapshot.ranges;
    const shared = new Uint8Array(snapshot.image);
    let total = 0;
    for (let r = 0; r < this.ranges.length; r += 2) total += this.ranges[r + 1]! - this.ranges[r]!;
    this.packed = new Uint8Array(total);
    this.offsets = new Int32Array(this.bytes >>> BLOCK_SHIFT).fill(-1);
    let at = 0;
    for (let r = 0; r < this.ranges.length; r += 2) {
      const start = this.ranges[r]!;
      const end = this.ranges[r + 1]!;
      this.packed.set(shared.subarray(start, end), at);
      for (let b = start >>> BLOCK_SHIFT; b < end >>> BLOCK_SHIFT; b++) this.offsets[b] = at + ((b << BLOCK_SHIFT) - start);
      at += end - start;
    }
  }

  /** Writes the image into a memory that is all zeros. */
  fill(target: Uint8Array): void {
    let at = 0;
    for (let r = 0; r < this.ranges.length; r += 2) {
      const start = this.ranges[r]!;
      const length = this.ranges[r + 1]! - start;
      target.set(this.packed.subarray(at, at + length), start);
      at += length;
    }
  }

  /** Puts bytes [from, to) of `target` back to the image: copies or zero-fills, a run at a time. */
  restore(target: Uint8Array, from: number, to: number): void {
    const offsets = this.offsets;
    let pos = from;
    while (pos < to) {
      const block = pos >>> BLOCK_SHIFT;
      const offset = offsets[block]!;
      // Extend over following blocks of the same kind (zeros, or contiguous in `packed`).
      let next = (block + 1) << BLOCK_SHIFT;
      let b = block + 1;
      while (next < to && (offset < 0 ? offsets[b] === -1 : offsets[b] === offset + ((b - block) << BLOCK_SHIFT))) {
        b++;
        next += BLOCK_BYTES;
      }
      const end = Math.min(next, to);
      if (offset < 0) target.fill(0, pos, end);
      else {
        const src = offset + (pos - (block << BLOCK_SHIFT));
        target.set(this.packed.subarray(src, src + (end - pos)), pos);
      }
      pos = end;
    }
  }
}
