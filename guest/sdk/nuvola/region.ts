// Shared memory regions (import module "nuvola:region", see abi.ts): a state key mapped into
// this instance, read and written in place. `map` and `grow` are host calls; every accessor
// below becomes a bounds-checked load, store, atomic or memory.copy on the host's region
// memory when nuvola registers the function (no host call per access). An offset past the
// region's live size traps the call (E_GUEST_TRAP); so does an atomic at an offset that is not
// a multiple of 4. A mapping lasts until the call ends: keep no Region across calls.

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "map")
declare function rg_map(k: usize, kl: i32, size: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "grow")
declare function rg_grow(slot: i32, size: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "size")
declare function rg_size(slot: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "get_f64")
declare function rg_get_f64(slot: i32, off: i32): f64;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "set_f64")
declare function rg_set_f64(slot: i32, off: i32, v: f64): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "get_f32")
declare function rg_get_f32(slot: i32, off: i32): f32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "set_f32")
declare function rg_set_f32(slot: i32, off: i32, v: f32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "get_i32")
declare function rg_get_i32(slot: i32, off: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "set_i32")
declare function rg_set_i32(slot: i32, off: i32, v: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "get_u8")
declare function rg_get_u8(slot: i32, off: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "set_u8")
declare function rg_set_u8(slot: i32, off: i32, v: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "read_into")
declare function rg_read_into(slot: i32, off: i32, dst: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "write_from")
declare function rg_write_from(slot: i32, off: i32, src: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "atomic_add_i32")
declare function rg_atomic_add_i32(slot: i32, off: i32, v: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:region", "compare_exchange_i32")
declare function rg_compare_exchange_i32(slot: i32, off: i32, expected: i32, v: i32): i32;

/**
 * A state key mapped into this call: its bytes, shared with every instance that maps it.
 * A Region is its slot number, not an object in memory: passing one around costs nothing, and
 * a loop over its bytes keeps no reference the garbage collector must track (a managed object
 * would be spilled to the shadow stack around every accessor, a store per access).
 */
// @ts-ignore: decorator
@final @unmanaged
export class Region {
  /** The slot `region.map` returned (0 to 15). */
  get slot(): i32 {
    return <i32>changetype<usize>(this);
  }

  /** The region in `slot`, as `region.map` returned it. */
  @inline static fromSlot(slot: i32): Region {
    return changetype<Region>(<usize>slot);
  }

  /** The key's live size in bytes (sees growth by other instances). */
  @inline size(): i32 {
    return rg_size(this.slot);
  }

  /** Grows the key to `size` bytes (the tail reads 0); fails with E_STATE_MAPPED while another call maps it. */
  grow(size: i32): void {
    rg_grow(this.slot, size);
  }

  @inline getF64(off: i32): f64 {
    return rg_get_f64(this.slot, off);
  }
  @inline setF64(off: i32, v: f64): void {
    rg_set_f64(this.slot, off, v);
  }
  @inline getF32(off: i32): f32 {
    return rg_get_f32(this.slot, off);
  }
  @inline setF32(off: i32, v: f32): void {
    rg_set_f32(this.slot, off, v);
  }
  @inline getI32(off: i32): i32 {
    return rg_get_i32(this.slot, off);
  }
  @inline setI32(off: i32, v: i32): void {
    rg_set_i32(this.slot, off, v);
  }
  @inline getU8(off: i32): u8 {
    return <u8>rg_get_u8(this.slot, off);
  }
  @inline setU8(off: i32, v: u8): void {
    rg_set_u8(this.slot, off, v);
  }

  /** Copies `dst.length` bytes of the region at `off` into `dst` (one memory.copy). */
  readInto(off: i32, dst: Uint8Array): void {
    rg_read_into(this.slot, off, dst.dataStart, dst.length);
  }

  /** Copies `src` into the region at `off` (one memory.copy). */
  writeFrom(off: i32, src: Uint8Array): void {
    rg_write_from(this.slot, off, src.dataStart, src.length);
  }

  /** Atomically adds `v` to the i32 at `off` (a multiple of 4); returns the old value. */
  @inline atomicAddI32(off: i32, v: i32): i32 {
    return rg_atomic_add_i32(this.slot, off, v);
  }

  /** Atomically sets the i32 at `off` (a multiple of 4) to `v` if it holds `expected`; returns the old value. */
  @inline compareExchangeI32(off: i32, expected: i32, v: i32): i32 {
    return rg_compare_exchange_i32(this.slot, off, expected, v);
  }
}

export namespace region {
  /**
   * Maps the state key into this call, creating it zero-filled at `size` bytes if absent and
   * growing it if smaller. The function must be granted the key (stateKeys). At most 16 keys
   * per call; mapping a key twice returns the same region.
   */
  export function map(key: string, size: i32): Region {
    const k = String.UTF8.encode(key);
    return Region.fromSlot(rg_map(changetype<usize>(k), k.byteLength, size));
  }
}
