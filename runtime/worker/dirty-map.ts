/**
 * Worker thread. The worker's dirty map: one byte per 4 KiB block of every instance's
 * memory, set by the instrumented guest code (and by host imports that write guest memory),
 * cleared by the reset that restores those blocks. One Wasm memory per worker, imported by
 * every instance as memory 1, each instance owning a slice at its own base offset — a memory
 * per instance would halve how many instances a process can hold.
 */
import { BLOCK_SHIFT, STORE_SPILL } from '../snapshot/code.js';
import type { SnapshotLayout } from '../snapshot/layout.js';
import type { LocalImage } from './image.js';

const PAGE = 65536;

export class DirtyMap {
  readonly memory = new WebAssembly.Memory({ initial: 1 });
  private view = new Uint8Array(this.memory.buffer);
  private words = new Int32Array(this.memory.buffer);
  private top = 0;
  /** Freed slices by size: instances of one function all need the same size. */
  private readonly free = new Map<number, number[]>();

  /** A zeroed slice of `blocks` bytes (8-byte aligned); returns its base offset. */
  allocate(blocks: number): number {
    if (!(blocks > 0)) throw new RangeError(`dirty map slice of ${blocks} bytes`);
    const reused = this.free.get(blocks)?.pop();
    if (reused !== undefined) return reused;
    const base = this.top;
    this.top += (blocks + 7) & ~7;
    const need = Math.ceil(this.top / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (need > 0) {
      // Memory 1 is a 32-bit memory: at 4 GiB, grow() throws and the instance is refused.
      try {
        this.memory.grow(need);
      } catch (err) {
        this.top -= (blocks + 7) & ~7;
        throw err;
      }
      this.view = new Uint8Array(this.memory.buffer);
      this.words = new Int32Array(this.memory.buffer);
    }
    return base;
  }

  release(base: number, blocks: number): void {
    this.view.fill(0, base, base + blocks);
    let list = this.free.get(blocks);
    if (list === undefined) this.free.set(blocks, (list = []));
    list.push(base);
  }

  /** Marks the blocks of [ptr, ptr + length) in the slice at `base` (a host write into guest memory). */
  mark(base: number, ptr: number, length: number): void {
    if (length <= 0) return;
    this.view.fill(1, base + (ptr >>> BLOCK_SHIFT), base + ((ptr + length - 1) >>> BLOCK_SHIFT) + 1);
  }

  /** Writes global values into the 8-byte slots at `area` (what `__nuvola_load` reads). */
  writeGlobals(area: number, types: SnapshotLayout['globalTypes'], values: readonly (number | bigint)[]): void {
    const view = new DataView(this.memory.buffer);
    types.forEach((type, k) => {
      const at = area + 8 * k;
      const value = values[k]!;
      if (type === 'i32') view.setInt32(at, Number(value), true);
      else if (type === 'i64') view.setBigInt64(at, BigInt(value), true);
      else if (type === 'f32') view.setFloat32(at, Number(value), true);
      else view.setFloat64(at, Number(value), true);
    });
  }

  /** Reads the global values `__nuvola_save` wrote at `area`. */
  readGlobals(area: number, types: SnapshotLayout['globalTypes']): (number | bigint)[] {
    const view = new DataView(this.memory.buffer);
    return types.map((type, k) => {
      const at = area + 8 * k;
      if (type === 'i32') return view.getInt32(at, true);
      if (type === 'i64') return view.getBigInt64(at, true);
      if (type === 'f32') return view.getFloat32(at, true);
      return view.getFloat64(at, true);
    });
  }

  /**
   * Puts every marked block of the first `bytes` of `target` back to `image` and clears the
   * marks. A store marks only the block it starts in, so the STORE_SPILL bytes after each
   * marked run are restored too. Returns the bytes restored.
   */
  restore(base: number, target: Uint8Array, image: LocalImage, bytes: number): number {
    const view = this.view;
    const words = this.words;
    const end = base + Math.ceil(bytes / (1 << BLOCK_SHIFT));
    let restored = 0;
    let b = base;
    while (b < end) {
      // Four clean blocks at a time (slices are 8-byte aligned).
      if ((b & 3) === 0 && b + 4 <= end && words[b >> 2] === 0) {
        b += 4;
        continue;
      }
      if (view[b] === 0) {
        b++;
        continue;
      }
      let e = b + 1;
      while (e < end && view[e] !== 0) e++;
      const from = (b - base) << BLOCK_SHIFT;
      const to = Math.min(((e - base) << BLOCK_SHIFT) + STORE_SPILL, bytes);
      image.restore(target, from, to);
      restored += to - from;
      view.fill(0, b, e);
      b = e;
    }
    return restored;
  }
}
