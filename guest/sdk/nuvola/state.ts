// State (import module "nuvola:state", see abi.ts). Keys are strings; values are bytes.
// Every call may suspend this instance (never its worker); an error traps the invocation
// with an E_STATE_* code that the caller of invoke() receives.

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "size")
declare function st_size(k: usize, kl: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "read")
declare function st_read(k: usize, kl: i32, offset: i32, ptr: usize, len: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "write")
declare function st_write(k: usize, kl: i32, ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "write_at")
declare function st_write_at(k: usize, kl: i32, offset: i32, ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "append")
declare function st_append(k: usize, kl: i32, ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "appended_load")
declare function st_appended_load(k: usize, kl: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "read_all")
declare function st_read_all(k: usize, kl: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "take")
declare function st_take(ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "clear_appended")
declare function st_clear_appended(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "push")
declare function st_push(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "push_partial")
declare function st_push_partial(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "pull")
declare function st_pull(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "delete")
declare function st_delete(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "lock_read")
declare function st_lock_read(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "unlock_read")
declare function st_unlock_read(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "lock_write")
declare function st_lock_write(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "unlock_write")
declare function st_unlock_write(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "lock_global_read")
declare function st_lock_global_read(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "unlock_global_read")
declare function st_unlock_global_read(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "lock_global_write")
declare function st_lock_global_write(k: usize, kl: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "unlock_global_write")
declare function st_unlock_global_write(k: usize, kl: i32): void;

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "increment_global")
declare function st_increment_global(k: usize, kl: i32, delta: i64): i64;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:state", "compare_swap_global")
declare function st_compare_swap_global(k: usize, kl: i32, expected: i64, value: i64): i32;

function utf8(key: string): ArrayBuffer {
  return String.UTF8.encode(key);
}

/** The state API: static methods only (a class, so that `state.delete` can have its contract name). */
export abstract class state {
  /** Bytes in the value; 0 for a key unknown locally and globally. */
  static size(key: string): i32 {
    const k = utf8(key);
    return st_size(changetype<usize>(k), k.byteLength);
  }
  /** The whole value, as one consistent snapshot (empty for an unknown key). */
  static read(key: string): Uint8Array {
    const k = utf8(key);
    const n = st_read_all(changetype<usize>(k), k.byteLength);
    const out = new Uint8Array(n);
    if (n > 0) st_take(out.dataStart, n);
    return out;
  }
  /** `length` bytes from `offset`; reading past the end traps with E_STATE_BOUNDS. */
  static readAt(key: string, offset: i32, length: i32): Uint8Array {
    const k = utf8(key);
    const out = new Uint8Array(length);
    st_read(changetype<usize>(k), k.byteLength, offset, out.dataStart, length);
    return out;
  }
  /**
   * Copies `into.length` bytes from `offset` into `into` without allocating; returns the count.
   * Reading past the end traps with E_STATE_BOUNDS.
   */
  static readInto(key: string, offset: i32, into: Uint8Array): i32 {
    const k = utf8(key);
    return st_read(changetype<usize>(k), k.byteLength, offset, into.dataStart, into.length);
  }
  /** Replaces the value (locally; `push` makes it global). */
  static write(key: string, data: Uint8Array): void {
    const k = utf8(key);
    st_write(changetype<usize>(k), k.byteLength, data.dataStart, data.length);
  }
  /** Writes inside the current value; past the end traps with E_STATE_BOUNDS. */
  static writeAt(key: string, offset: i32, data: Uint8Array): void {
    const k = utf8(key);
    st_write_at(changetype<usize>(k), k.byteLength, offset, data.dataStart, data.length);
  }
  /** Adds an entry to the key's appended list, in the global tier. */
  static append(key: string, data: Uint8Array): void {
    const k = utf8(key);
    st_append(changetype<usize>(k), k.byteLength, data.dataStart, data.length);
  }
  /** Every entry appended to the key, oldest first. */
  static readAppended(key: string): Array<Uint8Array> {
    const k = utf8(key);
    const n = st_appended_load(changetype<usize>(k), k.byteLength);
    const encoded = new Uint8Array(n);
    st_take(encoded.dataStart, n);
    const view = new DataView(encoded.buffer);
    const count = view.getUint32(0, true);
    const out = new Array<Uint8Array>();
    let pos = 4;
    for (let i: u32 = 0; i < count; i++) {
      const len = <i32>view.getUint32(pos, true);
      pos += 4;
      out.push(encoded.slice(pos, pos + len));
      pos += len;
    }
    return out;
  }
  static clearAppended(key: string): void {
    const k = utf8(key);
    st_clear_appended(changetype<usize>(k), k.byteLength);
  }
  /** Sends the whole value to the global tier. */
  static push(key: string): void {
    const k = utf8(key);
    st_push(changetype<usize>(k), k.byteLength);
  }
  /** Sends only the chunks written since the last push. */
  static pushPartial(key: string): void {
    const k = utf8(key);
    st_push_partial(changetype<usize>(k), k.byteLength);
  }
  /** Replaces the local value with the global one. */
  static pull(key: string): void {
    const k = utf8(key);
    st_pull(changetype<usize>(k), k.byteLength);
  }
  /** Removes the key locally and globally. */
  static delete(key: string): void {
    const k = utf8(key);
    st_delete(changetype<usize>(k), k.byteLength);
  }
  static lockRead(key: string): void {
    const k = utf8(key);
    st_lock_read(changetype<usize>(k), k.byteLength);
  }
  static unlockRead(key: string): void {
    const k = utf8(key);
    st_unlock_read(changetype<usize>(k), k.byteLength);
  }
  static lockWrite(key: string): void {
    const k = utf8(key);
    st_lock_write(changetype<usize>(k), k.byteLength);
  }
  static unlockWrite(key: string): void {
    const k = utf8(key);
    st_unlock_write(changetype<usize>(k), k.byteLength);
  }
  static lockGlobalRead(key: string): void {
    const k = utf8(key);
    st_lock_global_read(changetype<usize>(k), k.byteLength);
  }
  static unlockGlobalRead(key: string): void {
    const k = utf8(key);
    st_unlock_global_read(changetype<usize>(k), k.byteLength);
  }
  static lockGlobalWrite(key: string): void {
    const k = utf8(key);
    st_lock_global_write(changetype<usize>(k), k.byteLength);
  }
  static unlockGlobalWrite(key: string): void {
    const k = utf8(key);
    st_unlock_global_write(changetype<usize>(k), k.byteLength);
  }
  /**
   * Adds `delta` to the key's value in the global tier, read as a little-endian i64 (a missing
   * key counts as 0), in one atomic step — one Redis round trip — and returns the new value.
   * Exact across every host sharing the Redis, with no lock. It does not touch this host's
   * local copy of the key: use the returned value (or `pull`). A value that is not 8 bytes
   * traps with E_STATE_BOUNDS.
   */
  static incrementGlobal(key: string, delta: i64): i64 {
    const k = utf8(key);
    return st_increment_global(changetype<usize>(k), k.byteLength, delta);
  }
  /**
   * Sets the key's global i64 value to `value` if it is `expected` (a missing key counts as 0),
   * atomically; returns whether it did. Like `incrementGlobal`, one round trip, no lock.
   */
  static compareAndSwapGlobal(key: string, expected: i64, value: i64): bool {
    const k = utf8(key);
    return st_compare_swap_global(changetype<usize>(k), k.byteLength, expected, value) != 0;
  }
}
