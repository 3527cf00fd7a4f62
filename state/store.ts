/**
 * The state store's authority, on one thread of the process (the runtime's main thread): the
 * directory of local keys, and every operation that talks to the global tier — lookup of
 * keys only the global tier knows, resize, pull (whole or missing chunks), push (whole or
 * dirty chunks), delete, appends and global locks, and the region arena: keys mapped in place
 * live in its blocks ({@link StateStore.mapRegion}). Other threads reach it through a
 * {@link Directory} (state/client.ts).
 *
 * Why it is this long: every path that replaces or retires a key's allocation (a grow, a pull,
 * a move into the arena, a delete) is here, next to the others, since each must follow the same
 * rules — under the old allocation's write lock, with its maps frozen, its arena block freed
 * only after it retired, and the owner charged for the room.
 */
import { makeError, StateError, StateErrorCode } from './errors.js';
import type { GlobalTier, Lease } from './global-tier.js';
import { CHUNK_BYTES, KeyState, PRESENT, DIRTY, roundCapacity, type KeyHandle, type Range } from './key-state.js';
import { DEFAULT_ARENA_BYTES, RegionArena, type Block } from './region-arena.js';

/** The largest value a key may hold: its size is an i32 word. */
export const MAX_VALUE_BYTES = 0x7fffffff;

/**
 * What {@link StateStore.mapRegion} answers: the key's allocation (in the arena) and where its
 * bytes are — data `[base, base + capacity)` of the arena, the live size the i32 at `sizeAddr`.
 * `size`: the size when it was granted.
 */
export interface RegionGrant {
  handle: KeyHandle;
  base: number;
  sizeAddr: number;
  capacity: number;
  size: number;
}

/** Longest key name, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

export function checkKey(key: string): void {
  const bytes = Buffer.byteLength(key);
  if (bytes === 0 || bytes > MAX_KEY_BYTES) {
    throw new StateError(StateErrorCode.BAD_KEY, `state key must be 1 to ${MAX_KEY_BYTES} bytes of UTF-8, got ${bytes}`, { bytes });
  }
}

/** The local lock the caller already holds on the key, if any (then the store takes none). */
export type HeldLock = 'read' | 'write' | undefined;

function mapped(key: string, maps: number, what: string): StateError {
  return new StateError(
    StateErrorCode.MAPPED,
    `state key '${key}' is mapped in place by ${maps} call${maps === 1 ? '' : 's'} or view${maps === 1 ? '' : 's'}, so it cannot ${what}; ` +
      'retry when they end (or map it at its largest size before sharing it)',
    { key, maps },
  );
}

function heldReadOnly(key: string, what: string): StateError {
  return new StateError(StateErrorCode.LOCK, `cannot ${what} '${key}' while holding only its read lock; take the write lock instead`, {
    key,
  });
}

export interface StoreOptions {
  /** How long a global lock is held before it expires unless released, in ms. */
  leaseMs: number;
  /** The most an owner may hold (see {@link StateStore.usage}); undefined: no limit. */
  quota?: (owner: string) => Quota | undefined;
  /** The region arena's maximum, in bytes (`regionBytes`; default 1 GiB, at most 4 GiB − 64 KiB). */
  regionBytes?: number;
}

/** What an owner holds, or may hold: bytes (room of its local allocations plus bytes it appended) and local keys. */
export interface Quota {
  bytes: number;
  keys: number;
}

export class StateStore {
  private readonly keys = new Map<string, KeyState>();
  /**
   * Who is charged for each local key's allocation: the owner whose request last created or
   * grew it (requests without an owner, the embedding service's, are charged to nobody).
   */
  private readonly charges = new Map<string, { owner: string; bytes: number }>();
  /** Bytes appended through this store to each key's list, per owner, until it is cleared or deleted. */
  private readonly appends = new Map<string, Map<string, number>>();
  private readonly used = new Map<string, Quota>();
  /** The region arena: created with the store (virtual address space only), so workers get it at start. */
  private readonly arena: RegionArena;
  /** The arena block of each allocation that lives there. */
  private readonly blocks = new Map<KeyState, Block>();

  constructor(
    readonly global: GlobalTier,
    private readonly options: StoreOptions,
  ) {
    this.arena = new RegionArena(options.regionBytes ?? DEFAULT_ARENA_BYTES);
  }

  /** The region arena's memory, which every worker imports for guests that map keys. */
  regionMemory(): WebAssembly.Memory {
    return this.arena.memory;
  }

  /** Bytes the arena's blocks take now (headers included) and its maximum. */
  regionUsage(): { bytes: number; maxBytes: number } {
    return { bytes: this.arena.used, maxBytes: this.arena.maxBytes };
  }

  /** The largest size a region may have. */
  get maxRegionBytes(): number {
    return Math.min(MAX_VALUE_BYTES, this.arena.maxCapacity);
  }

  /**
   * The key's local handle: known here, or found in the global tier (its chunks pulled on
   * demand; the allocation is charged to `owner`).
   */
  async lookup(key: string, owner?: string): Promise<KeyHandle | undefined> {
    checkKey(key);
    const local = this.keys.get(key);
    if (local !== undefined) return local.handle;
    // The size and the first chunk in one round trip: a first read near the start (most
    // values are one chunk) needs no second one.
    const { size, bytes } = await this.global.head(key, CHUNK_BYTES);
    const raced = this.keys.get(key);
    if (raced !== undefined) return raced.handle;
    if (size === 0) return undefined;
    this.checkQuota(owner, key, roundCapacity(size), 0);
    const state = KeyState.create(key, size, size, false);
    // Only whole chunks (or the value's end) count as present.
    const present = bytes.byteLength >= size ? size : bytes.byteLength - (bytes.byteLength % CHUNK_BYTES);
    if (present > 0) state.fill(0, bytes.subarray(0, present));
    return this.install(state, owner).handle;
  }

  /** What each owner holds now. */
  usage(): Map<string, Quota> {
    return new Map([...this.used].map(([owner, q]) => [owner, { ...q }]));
  }

  /**
   * What `owner` would hold with `bytes` more appended and, unless `capacity` is undefined, an
   * allocation of `capacity` bytes for `key` (replacing the key's current one) — when that is
   * over its quota; undefined when it fits.
   */
  private overQuota(owner: string | undefined, key: string, capacity: number | undefined, bytes: number): Quota | undefined {
    if (owner === undefined) return undefined;
    const quota = this.options.quota?.(owner);
    if (quota === undefined) return undefined;
    const use = this.used.get(owner) ?? { bytes: 0, keys: 0 };
    const previous = capacity === undefined ? undefined : this.charges.get(key);
    const mine = previous !== undefined && previous.owner === owner;
    const after = {
      bytes: use.bytes + bytes + (capacity ?? 0) - (mine ? previous.bytes : 0),
      keys: use.keys + (capacity !== undefined && !mine ? 1 : 0),
    };
    return after.bytes > quota.bytes || after.keys > quota.keys ? after : undefined;
  }

  /** Throws E_STATE_QUOTA when {@link overQuota} says `owner` would hold too much. */
  private checkQuota(owner: string | undefined, key: string, capacity: number | undefined, bytes: number): void {
    const over = this.overQuota(owner, key, capacity, bytes);
    if (over === undefined) return;
    const quota = this.options.quota!(owner!)!;
    throw makeError(
      StateErrorCode.QUOTA,
      `'${owner}' would hold ${over.bytes} bytes in ${over.keys} keys of the local state tier with '${key}', above its stateQuota ` +
        `(bytes=${quota.bytes}, keys=${quota.keys}); delete keys it no longer needs, or raise stateQuota in register()`,
      { function: owner, key, bytes: over.bytes, keys: over.keys, quota: { ...quota } },
    );
  }

  private adjust(owner: string, bytes: number, keys: number): void {
    const use = this.used.get(owner) ?? { bytes: 0, keys: 0 };
    use.bytes += bytes;
    use.keys += keys;
    if (use.bytes === 0 && use.keys === 0) this.used.delete(owner);
    else this.used.set(owner, use);
  }

  /** Moves the charge for `key`'s allocation to `owner` (nobody when undefined). */
  private charge(key: string, owner: string | undefined, capacity: number): void {
    const previous = this.charges.get(key);
    if (previous !== undefined) {
      this.adjust(previous.owner, -previous.bytes, -1);
      this.charges.delete(key);
    }
    if (owner === undefined) return;
    this.charges.set(key, { owner, bytes: capacity });
    this.adjust(owner, capacity, 1);
  }

  /** Appends to the key's list, charged to `owner` until the list is cleared or the key deleted here. */
  async append(key: string, data: Uint8Array, owner?: string): Promise<void> {
    checkKey(key);
    this.checkQuota(owner, key, undefined, data.byteLength);
    // Counted before the round trip, so that appends racing each other cannot all pass.
    if (owner !== undefined) this.adjust(owner, data.byteLength, 0);
    try {
      await this.global.append(key, data);
    } catch (err) {
      if (owner !== undefined) this.adjust(owner, -data.byteLength, 0);
      throw err;
    }
    if (owner === undefined) return;
    let byOwner = this.appends.get(key);
    if (byOwner === undefined) this.appends.set(key, (byOwner = new Map()));
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + data.byteLength);
  }

  async clearAppended(key: string): Promise<void> {
    checkKey(key);
    await this.global.clearAppended(key);
    this.dropAppends(key);
  }

  private dropAppends(key: string): void {
    for (const [owner, bytes] of this.appends.get(key) ?? []) this.adjust(owner, -bytes, 0);
    this.appends.delete(key);
  }

  /** Whether the local tier has `key` (its bytes, or some of them, may still be only global). */
  holds(key: string): boolean {
    return this.keys.has(key);
  }

  /** The local key, created empty when unknown here (without asking the global tier). */
  local(key: string): KeyState {
    checkKey(key);
    return this.keys.get(key) ?? this.install(KeyState.create(key, 0, 0, true));
  }

  private install(state: KeyState, owner?: string): KeyState {
    this.keys.set(state.key, state);
    this.charge(state.key, owner, state.capacity);
    return state;
  }

  /**
   * A handle with room for `size` bytes: the existing one, or a larger copy that replaces it
   * (the old one is retired and its holders look the key up again). A new or grown allocation
   * is charged to `owner`.
   */
  async ensure(key: string, size: number, held: HeldLock, owner?: string): Promise<KeyHandle> {
    // No need to ask the global tier: the caller is about to replace the whole value (or
    // lock a key it found nowhere), so local writes keep working while it is unreachable.
    const current = this.keys.get(key);
    if (current === undefined) {
      this.checkQuota(owner, key, roundCapacity(size), 0);
      return this.install(KeyState.create(key, 0, size, true), owner).handle;
    }
    if (current.capacity >= size) return current.handle;
    if (held === 'read') throw heldReadOnly(key, 'grow the value');
    // Doubling keeps repeated growth cheap, but not at the price of the owner's quota.
    const doubled = Math.max(size, current.capacity * 2);
    const room = this.overQuota(owner, key, roundCapacity(doubled), 0) === undefined ? doubled : size;
    this.checkQuota(owner, key, roundCapacity(room), 0);
    if (held === undefined && !(await current.lock('write'))) return this.ensure(key, size, held, owner);
    try {
      if (current.retired) return await this.ensure(key, size, held, owner);
      // Allocated before the maps are frozen: an allocation that fails must not leave the key
      // frozen, where every later map would look again for ever.
      const grown = KeyState.create(key, current.size, room, false);
      // A mapped key's bytes stay where the guests use them.
      if (!current.freezeMaps(0)) throw mapped(key, current.maps(), `grow to ${size} bytes (beyond its block of ${current.capacity})`);
      grown.copyFrom(current, held !== undefined);
      this.install(grown, owner);
      this.retire(current);
      return grown.handle;
    } finally {
      if (held === undefined) current.unlockWrite();
    }
  }

  /**
   * Retires an allocation (the caller holds its write lock, and froze its maps or moved them):
   * its holders look the key up again, and its arena block, if any, is free for reuse.
   */
  private retire(state: KeyState): void {
    state.retire();
    const block = this.blocks.get(state);
    if (block === undefined) return;
    this.blocks.delete(state);
    this.arena.release(block);
  }

  /**
   * Makes `key` a region of at least `size` bytes in the arena and says where it is. Does not
   * count a map: the caller counts it with `KeyState.addMap()` on the handle (and looks again
   * if that fails). A key absent everywhere is created zero-filled; one in its own buffer, or
   * only global, is moved in (missing chunks pulled); a smaller one is grown in place (zero
   * tail) when its block has room, else moved to a larger block — only when no map is counted
   * on it but the caller's own `ownMaps` (else `E_STATE_MAPPED`; the caller's maps move with
   * it: drop them on the new handle). Every chunk is present afterwards. Charged to `owner`.
   * Takes the key's write lock when it moves or grows it: do not call it holding that lock.
   */
  async mapRegion(key: string, size: number, owner?: string, ownMaps = 0): Promise<RegionGrant> {
    checkKey(key);
    const limit = this.maxRegionBytes;
    if (!Number.isInteger(size) || size < 1 || size > limit) {
      throw new StateError(
        StateErrorCode.BOUNDS,
        `cannot map '${key}' at ${size} bytes: a region is 1 to ${limit} bytes (the region arena's regionBytes, less a block header, and the 2 GiB limit of a value)`,
        { key, size, limit },
      );
    }
    if (!Number.isInteger(ownMaps) || ownMaps < 0) throw new RangeError(`ownMaps must be a count, got ${ownMaps}`);
    for (;;) {
      const current = this.keys.get(key) ?? (await this.lookup(key, owner), this.keys.get(key));
      if (current === undefined) {
        const state = this.placeRegion(key, size, owner, undefined);
        state.mark({ offset: 0, length: size }, PRESENT | DIRTY);
        this.install(state, owner);
        return this.grant(state);
      }
      // Everything present first (outside the lock: pullRanges takes it per gap).
      await this.pullRanges(key, [{ offset: 0, length: current.size }], undefined);
      if (!(await current.lock('write'))) continue;
      try {
        if (current.retired) continue;
        if (current.inArena && current.capacity >= size) {
          if (current.size < size) this.growInPlace(current, size);
          return this.grant(current);
        }
        const moved = this.placeRegion(key, Math.max(size, current.size), owner, current);
        if (!current.freezeMaps(ownMaps)) {
          this.arena.release(this.blocks.get(moved)!);
          this.blocks.delete(moved);
          throw mapped(key, current.maps(), `move to a larger block (${size} bytes; its block has ${current.capacity})`);
        }
        const old = current.size;
        moved.copyFrom(current, false);
        moved.mark({ offset: 0, length: old }, PRESENT);
        if (size > old) this.growInPlace(moved, size);
        this.install(moved, owner);
        this.retire(current);
        return this.grant(moved);
      } finally {
        current.unlockWrite();
      }
    }
  }

  /** A new allocation of `size` bytes in an arena block (zeroed), charged to `owner` in place of `replacing`'s room. */
  private placeRegion(key: string, size: number, owner: string | undefined, replacing: KeyState | undefined): KeyState {
    this.checkQuota(owner, key, RegionArena.capacityFor(size), 0);
    const block = this.arena.place(size);
    if (block === undefined) {
      throw makeError(
        StateErrorCode.QUOTA,
        `the region arena has no room for '${key}' (${size} bytes): ${this.arena.used} of its ${this.arena.maxBytes} bytes (regionBytes) ` +
          'are in use or too scattered; delete or unmap regions no longer needed, or raise regionBytes in createRuntime()',
        { key, bytes: size, used: this.arena.used, regionBytes: this.arena.maxBytes },
      );
    }
    const state = KeyState.inBlock(key, replacing === undefined ? size : 0, block, this.arena.buffer, false);
    this.blocks.set(state, block);
    return state;
  }

  /** Grows an arena allocation in place to `size` (within its capacity): a zero tail, present and dirty. The caller holds the write lock. */
  private growInPlace(state: KeyState, size: number): void {
    const old = state.size;
    state.bytes.fill(0, old, size);
    state.mark({ offset: old, length: size - old }, PRESENT | DIRTY);
    state.size = size;
  }

  private grant(state: KeyState): RegionGrant {
    const block = this.blocks.get(state)!;
    return { handle: state.handle, base: block.base, sizeAddr: block.sizeAddr, capacity: block.capacity, size: state.size };
  }

  /** Pulls the chunks in `ranges` that are still missing. `held`: the caller holds a lock on the key. */
  async pullRanges(key: string, ranges: Range[], held: HeldLock): Promise<void> {
    const state = this.keys.get(key);
    if (state === undefined) return;
    for (const range of ranges) {
      for (const gap of state.missing(range)) {
        const bytes = await this.global.getRange(key, gap.offset, gap.length);
        // Filling chunks nobody has is safe under the caller's read lock: readers wait for
        // them and writers are excluded.
        if (held === undefined && !(await state.lock('write'))) return;
        try {
          // A local write may have landed meanwhile: fill only chunks still missing.
          for (const still of state.missing(gap)) {
            const from = still.offset - gap.offset;
            state.fill(still.offset, bytes.subarray(from, from + still.length));
          }
        } finally {
          if (held === undefined) state.unlockWrite();
        }
      }
    }
  }

  /** Replaces the local value with the global one (local changes are dropped). */
  async pull(key: string, held: HeldLock, owner?: string): Promise<void> {
    checkKey(key);
    if (held === 'read') throw heldReadOnly(key, 'pull');
    const value = await this.global.get(key);
    if (value === undefined) return;
    const state = new KeyState(await this.ensure(key, value.byteLength, held, owner));
    if (held === undefined && !(await state.lock('write'))) return this.pull(key, held, owner);
    try {
      state.fill(0, value);
      state.size = value.byteLength;
    } finally {
      if (held === undefined) state.unlockWrite();
    }
  }

  /**
   * Sends the whole value (`partial` false) or only its dirty chunks to the global tier, under
   * `lease` when the caller holds the key's global write lock. Dirty marks are cleared only
   * when nothing was written meanwhile, so a failed or raced push loses nothing. Resolves
   * with the bytes sent (for `usage.statePushedBytes`).
   */
  async push(key: string, partial: boolean, held: HeldLock, lease?: Lease): Promise<number> {
    checkKey(key);
    const state = this.keys.get(key);
    if (state === undefined) return 0;
    if (!partial) await this.pullRanges(key, [{ offset: 0, length: state.size }], held);
    if (held === undefined && !(await state.lock('read'))) return this.push(key, partial, held, lease);
    let size: number;
    let version: number;
    let pieces: { offset: number; data: Uint8Array }[];
    let dirty: Range[];
    let staging: Buffer | undefined;
    try {
      size = state.size;
      version = state.version;
      dirty = state.dirty();
      const ranges = partial ? dirty : [{ offset: 0, length: size }];
      // One staging copy, so that the lock is not held across network I/O.
      staging = this.takeStaging(ranges.reduce((n, r) => n + r.length, 0));
      let at = 0;
      pieces = ranges.map((r) => {
        state.copyOut(r, staging!, at);
        at += r.length;
        return { offset: r.offset, data: staging!.subarray(at - r.length, at) };
      });
    } finally {
      if (held === undefined) state.unlockRead();
    }
    const sent = pieces.reduce((n, p) => n + p.data.byteLength, 0);
    try {
      if (partial && pieces.length === 0) return 0;
      await this.global.write(key, pieces, partial ? undefined : size, lease);
    } finally {
      this.returnStaging(staging);
    }
    // Clear the dirty marks only if nothing was written since the copy; checked under the
    // read lock so that no writer can slip in between the check and the clearing.
    if (held === undefined && !(await state.lock('read'))) return sent;
    try {
      if (state.version === version) for (const r of dirty) state.clean(r);
    } finally {
      if (held === undefined) state.unlockRead();
    }
    return sent;
  }

  /** Staging buffers for pushes, reused so that repeated pushes do not fault in fresh pages. */
  private readonly staging: Buffer[] = [];

  private takeStaging(size: number): Buffer {
    const index = this.staging.findIndex((b) => b.byteLength >= size);
    if (index >= 0) return this.staging.splice(index, 1)[0]!;
    return Buffer.allocUnsafeSlow(size);
  }

  private returnStaging(buffer: Buffer | undefined): void {
    // Keep a few, and none larger than 64 MiB.
    if (buffer !== undefined && buffer.byteLength <= 64 * 1024 * 1024 && this.staging.length < 4) this.staging.push(buffer);
  }

  /**
   * Deletes globally first (so a failure there loses nothing locally), then retires the local
   * allocation under its write lock, waiting for current holders to finish.
   */
  async delete(key: string, held: HeldLock): Promise<void> {
    checkKey(key);
    if (held !== undefined) {
      throw new StateError(StateErrorCode.LOCK, `cannot delete '${key}' while holding its lock; unlock it first`, { key });
    }
    const before = this.keys.get(key)?.maps() ?? 0;
    if (before > 0) throw mapped(key, before, 'be deleted');
    await this.global.delete(key);
    this.dropAppends(key);
    const state = this.keys.get(key);
    if (state === undefined || !(await state.lock('write'))) return;
    try {
      if (state.retired) return;
      // Mapped while the global tier deleted it: the local value stays for its maps.
      if (!state.freezeMaps(0)) throw mapped(key, state.maps(), 'be deleted here (it was deleted from the global tier only)');
      if (this.keys.get(key) === state) {
        this.keys.delete(key);
        this.charge(key, undefined, 0);
      }
      this.retire(state);
    } finally {
      state.unlockWrite();
    }
  }

  /** Takes a global lock, retrying while others hold it, until `deadline` (ms since the epoch). */
  async lockGlobal(key: string, mode: 'read' | 'write', deadline: number): Promise<Lease> {
    checkKey(key);
    let wait = 1;
    for (;;) {
      const lease = await this.global.tryLock(key, mode, this.options.leaseMs);
      if (lease !== undefined) return lease;
      if (Date.now() + wait > deadline) {
        throw new StateError(StateErrorCode.LOCK, `timed out waiting for the global ${mode} lock on '${key}'`, { key, mode });
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 50);
    }
  }

  async unlockGlobal(lease: Lease): Promise<boolean> {
    return this.global.unlock(lease);
  }

  /** Gives back the local locks of lock holder `id`, a thread that died while holding them. */
  releaseHolder(id: number): void {
    for (const state of this.keys.values()) state.releaseHolder(id);
  }

  async close(): Promise<void> {
    for (const state of this.keys.values()) state.retire();
    this.keys.clear();
    this.blocks.clear();
    this.charges.clear();
    this.appends.clear();
    this.used.clear();
    await this.global.close();
  }
}
