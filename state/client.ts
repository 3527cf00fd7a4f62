/**
 * Local-tier operations for any thread: reads and writes go straight to the shared memory of
 * a key, taking its read/write lock for the duration of the operation unless the caller holds
 * it already. Whatever needs the store's authority (a key only the global tier knows, growing
 * a value, pulling missing chunks) goes through a {@link Directory}: the store itself on its
 * own thread, a message channel elsewhere.
 *
 * Operations answer synchronously when they can (key cached, chunks present, lock free) and
 * return a promise only when they must wait, so callers can avoid suspending.
 */
import { StateError, StateErrorCode } from './errors.js';
import { KeyState, type KeyHandle, type Range } from './key-state.js';
import type { HeldLock, RegionGrant } from './store.js';

export interface Directory {
  lookup(key: string): Promise<KeyHandle | undefined>;
  ensure(key: string, size: number, held: HeldLock): Promise<KeyHandle>;
  pullRanges(key: string, ranges: Range[], held: HeldLock): Promise<void>;
  /** `StateStore.mapRegion` for this thread's caller (its owner filled in): the key made a region of at least `size` bytes. */
  mapRegion(key: string, size: number, ownMaps: number): Promise<RegionGrant>;
}

/** A key mapped in place by this thread: where it is, and its allocation with one map counted on it. */
export interface MappedRegion {
  grant: RegionGrant;
  state: KeyState;
}

type Maybe<T> = T | Promise<T>;

function bounds(key: string, offset: number, length: number, size: number, what: string): StateError {
  return new StateError(
    StateErrorCode.BOUNDS,
    `${what} of ${length} bytes at offset ${offset} is past the end of '${key}' (${size} bytes); write the whole value to resize it`,
    { key, offset, length, size },
  );
}

export class StateClient {
  private readonly cache = new Map<string, KeyState>();

  /**
   * `cancelled`: when it turns true (the caller gave up, e.g. timed out), waits for a lock end
   * and nothing more is written.
   */
  constructor(
    private readonly directory: Directory,
    private readonly cancelled: () => boolean = () => false,
  ) {}

  private checkCancelled(key: string): void {
    if (this.cancelled()) throw new StateError(StateErrorCode.LOCK, `gave up on '${key}': the call was cancelled`, { key });
  }

  private cached(key: string): KeyState | undefined {
    const state = this.cache.get(key);
    return state !== undefined && !state.retired ? state : undefined;
  }

  private async resolve(key: string): Promise<KeyState | undefined> {
    const handle = await this.directory.lookup(key);
    if (handle === undefined) {
      this.cache.delete(key);
      return undefined;
    }
    const state = new KeyState(handle);
    this.cache.set(key, state);
    return state;
  }

  private async grow(key: string, size: number, held: HeldLock): Promise<KeyState> {
    const state = new KeyState(await this.directory.ensure(key, size, held));
    this.cache.set(key, state);
    return state;
  }

  /** Size in bytes; 0 for a key unknown here and in the global tier. */
  size(key: string): Maybe<number> {
    const state = this.cached(key);
    if (state !== undefined) return state.size;
    return this.resolve(key).then((s) => s?.size ?? 0);
  }

  /**
   * Copies `length` bytes from `offset` into `target(length)` (called once the bytes are
   * ready, so a view into memory that may have grown meanwhile is taken late).
   */
  read(key: string, offset: number, length: number, target: (length: number) => Uint8Array, held: HeldLock): Maybe<number> {
    const state = this.cached(key);
    if (state !== undefined && offset + length <= state.size && state.isPresent({ offset, length })) {
      if (held !== undefined || state.tryLockRead()) {
        try {
          if (!state.retired) {
            state.read({ offset, length }, target(length));
            return length;
          }
        } finally {
          if (held === undefined) state.unlockRead();
        }
      }
    }
    return this.readSlow(key, offset, length, target, held);
  }

  private readSlow(key: string, offset: number, length: number, target: (length: number) => Uint8Array, held: HeldLock): Promise<number> {
    const range = { offset, length };
    return this.underLock(
      key,
      'read',
      held,
      async () => {
        const state = await this.inRange(key, range, held, 'read');
        return length === 0 ? undefined : state;
      },
      (state) => {
        state.read(range, target(length));
        return length;
      },
      0,
    );
  }

  /** Replaces the whole value with `data` (its size becomes `data.length`). */
  write(key: string, data: () => Uint8Array, length: number, held: HeldLock): Maybe<void> {
    if (held === 'read') throw readOnly(key);
    const state = this.cached(key);
    if (state !== undefined && state.capacity >= length && (held === 'write' || state.tryLockWrite())) {
      try {
        if (!state.retired) {
          state.write(0, data());
          state.size = length;
          return;
        }
      } finally {
        if (held === undefined) state.unlockWrite();
      }
    }
    return this.writeSlow(key, data, length, held);
  }

  private writeSlow(key: string, data: () => Uint8Array, length: number, held: HeldLock): Promise<void> {
    return this.underLock(
      key,
      'write',
      held,
      async () => {
        const state = this.cached(key);
        return state === undefined || state.capacity < length ? this.grow(key, length, held) : state;
      },
      (state) => {
        state.write(0, data());
        state.size = length;
      },
      undefined,
    );
  }

  /** Writes `length` bytes at `offset` inside the current value. */
  writeAt(key: string, offset: number, data: () => Uint8Array, length: number, held: HeldLock): Maybe<void> {
    if (held === 'read') throw readOnly(key);
    const state = this.cached(key);
    if (state !== undefined && offset + length > state.size) throw bounds(key, offset, length, state.size, 'writeAt');
    if (state !== undefined && state.isPresent({ offset, length }) && (held === 'write' || state.tryLockWrite())) {
      try {
        if (!state.retired) {
          state.write(offset, data());
          return;
        }
      } finally {
        if (held === undefined) state.unlockWrite();
      }
    }
    return this.writeAtSlow(key, offset, data, length, held);
  }

  private writeAtSlow(key: string, offset: number, data: () => Uint8Array, length: number, held: HeldLock): Promise<void> {
    const range = { offset, length };
    return this.underLock(
      key,
      'write',
      held,
      async () => {
        const state = await this.inRange(key, range, held, 'writeAt');
        if (state === undefined) throw bounds(key, offset, length, 0, 'writeAt');
        return state;
      },
      (state) => state.write(offset, data()),
      undefined,
    );
  }

  /**
   * Takes the key's local lock (creating an empty key if it is unknown everywhere) and returns
   * the allocation locked — pass it to {@link unlock}. Undefined when the client's `cancelled()`
   * turned true first (then nothing is held).
   */
  async lock(key: string, mode: 'read' | 'write'): Promise<KeyState | undefined> {
    for (;;) {
      const state = this.cached(key) ?? (await this.resolve(key)) ?? (await this.grow(key, 0, undefined));
      if (!(await state.lock(mode, this.cancelled))) {
        if (this.cancelled()) return undefined;
        continue;
      }
      if (!state.retired) return state;
      state.unlock(mode);
    }
  }

  /**
   * Releases a lock taken with {@link lock}. If the value grew meanwhile under this lock, the
   * lock moved with it to the new allocation, which is the one released.
   */
  unlock(key: string, mode: 'read' | 'write', locked: KeyState): void | Promise<void> {
    if (!locked.retired) return locked.unlock(mode);
    const current = this.cached(key);
    if (current !== undefined) return current.unlock(mode);
    return this.resolve(key).then((s) => s?.unlock(mode));
  }

  /** The whole value, copied under one read lock (size and bytes from the same moment). */
  readAll(key: string, held: HeldLock): Maybe<Uint8Array> {
    const state = this.cached(key);
    if (state !== undefined && state.isPresent({ offset: 0, length: state.size }) && (held !== undefined || state.tryLockRead())) {
      try {
        if (!state.retired) {
          const out = new Uint8Array(state.size);
          state.read({ offset: 0, length: out.byteLength }, out);
          return out;
        }
      } finally {
        if (held === undefined) state.unlockRead();
      }
    }
    return this.readAllSlow(key, held);
  }

  private readAllSlow(key: string, held: HeldLock): Promise<Uint8Array> {
    return this.underLock(
      key,
      'read',
      held,
      async () => {
        const state = this.cached(key) ?? (await this.resolve(key));
        if (state === undefined) return undefined;
        const all = { offset: 0, length: state.size };
        if (!state.isPresent(all)) await this.directory.pullRanges(key, [all], held);
        return state;
      },
      (state) => {
        const out = new Uint8Array(state.size);
        state.read({ offset: 0, length: out.byteLength }, out);
        return out;
      },
      new Uint8Array(0),
    );
  }

  /**
   * The key's allocation once `range` is inside the value (else `E_STATE_BOUNDS`) and its
   * chunks are present — pulled if needed; chunks are pushed whole, so a write needs the rest
   * of each chunk it touches too. Undefined for a key unknown everywhere (with an empty range).
   */
  private async inRange(key: string, range: Range, held: HeldLock, what: string): Promise<KeyState | undefined> {
    const state = this.cached(key) ?? (await this.resolve(key));
    const size = state?.size ?? 0;
    if (range.offset + range.length > size) throw bounds(key, range.offset, range.length, size, what);
    if (state !== undefined && range.length > 0 && !state.isPresent(range)) await this.directory.pullRanges(key, [range], held);
    return state;
  }

  /**
   * The slow path of every read and write: `prepare` picks the key's allocation and brings in
   * what `op` needs (or returns undefined: the answer is `empty`); `op` then runs under the
   * `mode` lock unless the caller holds one. Retries when the allocation was retired meanwhile;
   * gives up when the client is cancelled, and never writes after that.
   */
  private async underLock<T>(
    key: string,
    mode: 'read' | 'write',
    held: HeldLock,
    prepare: () => Promise<KeyState | undefined>,
    op: (state: KeyState) => T,
    empty: T,
  ): Promise<T> {
    for (;;) {
      const state = await prepare();
      if (state === undefined) return empty;
      if (held === undefined && !(await state.lock(mode, this.cancelled))) {
        this.checkCancelled(key);
        continue;
      }
      try {
        if (state.retired) continue;
        if (mode === 'write') this.checkCancelled(key);
        return op(state);
      } finally {
        if (held === undefined) state.unlock(mode);
      }
    }
  }

  /**
   * Maps `key` in place (state/README.md, "Regions"): a grant from the directory, and one map
   * counted by this thread on it — asked again if the allocation was retired in between. Drop
   * the map with `state.dropMap()` once done. `ownMaps`: maps the caller already counted on the
   * key (they move with it if it must move; then they are on the new `state`).
   */
  async map(key: string, size: number, ownMaps = 0): Promise<MappedRegion> {
    for (;;) {
      const grant = await this.directory.mapRegion(key, size, ownMaps);
      const state = new KeyState(grant.handle);
      if (state.addMap()) {
        this.cache.set(key, state);
        return { grant, state };
      }
    }
  }

  /** Forgets a cached key (after a delete). */
  forget(key: string): void {
    this.cache.delete(key);
  }
}

function readOnly(key: string): StateError {
  return new StateError(StateErrorCode.LOCK, `cannot write '${key}' while holding only its read lock; take the write lock instead`, {
    key,
  });
}
