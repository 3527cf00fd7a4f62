/**
 * Main thread. `rt.state`: the state API for the embedding service, with the same operations
 * and semantics as the guest's. Locks taken here are held by the host (this runtime object)
 * until it unlocks them.
 */
import { StateClient } from '../state/client.js';
import type { KeyState } from '../state/key-state.js';
import { Holdings } from '../state/holdings.js';
import { checkKey, type StateStore } from '../state/store.js';
import { asNuvolaError, ErrorCode, makeError } from './errors.js';

/**
 * A zero-copy view of a key's bytes in the region arena (`rt.state.view`): the very bytes guests
 * that map the key load and store. Concurrency rules: docs/guides/state.md, "Views".
 */
export interface RegionView {
  /** The key's bytes now, `size` long (a new array after the size changed); empty once released. */
  readonly bytes: Uint8Array;
  /** The key's live size in bytes; 0 once released. */
  readonly size: number;
  /** Ends the view: its map is dropped (a second call does nothing). Do not use `bytes` after. */
  release(): void;
}

class HostView implements RegionView {
  private array: Uint8Array;

  constructor(private state: KeyState | undefined) {
    this.array = state === undefined ? new Uint8Array(0) : state.bytes.subarray(0, state.size);
  }

  get size(): number {
    return this.state?.size ?? 0;
  }

  get bytes(): Uint8Array {
    const size = this.size;
    if (this.array.byteLength !== size) this.array = size === 0 ? new Uint8Array(0) : this.state!.bytes.subarray(0, size);
    return this.array;
  }

  release(): void {
    this.state?.dropMap();
    this.state = undefined;
  }
}

/** Default wait for a contended global lock from the host, in milliseconds. */
const GLOBAL_LOCK_WAIT_MS = 30_000;

export class HostState {
  private readonly client: StateClient;
  /** The locks and leases the host holds or waits for. */
  private readonly held = new Holdings((key, message) =>
    makeError(ErrorCode.STATE_LOCK, `host: ${message} on state key '${key}'`, { key }),
  );

  /** @internal */
  constructor(private readonly store: StateStore) {
    this.client = new StateClient({
      lookup: (key) => store.lookup(key),
      ensure: (key, size, held) => store.ensure(key, size, held),
      pullRanges: (key, ranges, held) => store.pullRanges(key, ranges, held),
      mapRegion: (key, size, ownMaps) => store.mapRegion(key, size, undefined, ownMaps),
    });
  }

  private mode(key: string): 'read' | 'write' | undefined {
    return this.held.mode(key);
  }

  /** `"redis"` or `"memory"` (in-process, this host only). */
  get globalTier(): string {
    return this.store.global.kind;
  }

  private async run<T>(op: () => T | Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw asNuvolaError(err);
    }
  }

  size(key: string): Promise<number> {
    return this.run(() => this.client.size(key));
  }

  /** The whole value, as one consistent snapshot (empty for an unknown key). */
  read(key: string): Promise<Uint8Array> {
    return this.run(() => this.client.readAll(key, this.mode(key)));
  }

  readAt(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.run(async () => {
      const out = new Uint8Array(length);
      await this.client.read(key, offset, length, () => out, this.mode(key));
      return out;
    });
  }

  write(key: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return this.run(() => this.client.write(key, () => bytes, bytes.byteLength, this.mode(key)));
  }

  writeAt(key: string, offset: number, data: Uint8Array): Promise<void> {
    return this.run(() => this.client.writeAt(key, offset, () => data, data.byteLength, this.mode(key)));
  }

  append(key: string, data: Uint8Array): Promise<void> {
    return this.run(() => this.store.append(key, data));
  }

  readAppended(key: string): Promise<Uint8Array[]> {
    return this.run(() => this.store.global.readAppended(key));
  }

  clearAppended(key: string): Promise<void> {
    return this.run(() => this.store.clearAppended(key));
  }

  push(key: string): Promise<void> {
    return this.run(async () => void (await this.store.push(key, false, this.mode(key), this.held.writeLease(key))));
  }

  pushPartial(key: string): Promise<void> {
    return this.run(async () => void (await this.store.push(key, true, this.mode(key), this.held.writeLease(key))));
  }

  pull(key: string): Promise<void> {
    return this.run(() => this.store.pull(key, this.mode(key)));
  }

  delete(key: string): Promise<void> {
    return this.run(async () => {
      await this.store.delete(key, this.mode(key));
      this.client.forget(key);
    });
  }

  /**
   * A zero-copy view of the key's bytes, in the region arena where guests map them (the key is
   * moved there, and grown to `size` if given and larger). The key is mapped until
   * `release()`: meanwhile it cannot be deleted or grown beyond its block (`E_STATE_MAPPED`).
   * Without `size`, a key that is empty or unknown is `E_STATE_BOUNDS`. Concurrency rules:
   * docs/guides/state.md, "Views".
   */
  view(key: string, size?: number): Promise<RegionView> {
    return this.run(async () => {
      checkKey(key);
      if (this.mode(key) !== undefined) {
        throw makeError(ErrorCode.STATE_LOCK, `host: view of state key '${key}' while holding its lock; unlock it first`, { key });
      }
      const want = size ?? (await this.client.size(key));
      if (want === 0) {
        throw makeError(
          ErrorCode.STATE_BOUNDS,
          `host: nothing to view: state key '${key}' is empty or unknown; write it first, or pass a size`,
          {
            key,
          },
        );
      }
      return new HostView((await this.client.map(key, want)).state);
    });
  }

  lockRead(key: string): Promise<void> {
    return this.lock(key, 'read');
  }

  lockWrite(key: string): Promise<void> {
    return this.lock(key, 'write');
  }

  private lock(key: string, mode: 'read' | 'write'): Promise<void> {
    return this.run(() => this.held.lock(this.client, key, mode));
  }

  unlockRead(key: string): Promise<void> {
    return this.unlock(key, 'read');
  }

  unlockWrite(key: string): Promise<void> {
    return this.unlock(key, 'write');
  }

  private unlock(key: string, mode: 'read' | 'write'): Promise<void> {
    return this.run(() => this.held.unlock(this.client, key, mode));
  }

  lockGlobalRead(key: string, waitMs = GLOBAL_LOCK_WAIT_MS): Promise<void> {
    return this.lockGlobal(key, 'read', waitMs);
  }

  lockGlobalWrite(key: string, waitMs = GLOBAL_LOCK_WAIT_MS): Promise<void> {
    return this.lockGlobal(key, 'write', waitMs);
  }

  private lockGlobal(key: string, mode: 'read' | 'write', waitMs: number): Promise<void> {
    return this.run(() => this.held.lockGlobal(key, mode, () => this.store.lockGlobal(key, mode, Date.now() + waitMs)));
  }

  unlockGlobalRead(key: string): Promise<boolean> {
    return this.unlockGlobal(key, 'read');
  }

  unlockGlobalWrite(key: string): Promise<boolean> {
    return this.unlockGlobal(key, 'write');
  }

  /**
   * Adds `delta` to the key's global value, a little-endian i64 (a missing key counts as 0), in
   * one atomic step (one Redis round trip, no lock) and resolves to the new value. Exact across
   * hosts; this host's local copy of the key is not touched.
   */
  incrementGlobal(key: string, delta: bigint | number = 1n): Promise<bigint> {
    return this.run(() => {
      checkKey(key);
      return this.store.global.increment(key, BigInt(delta));
    });
  }

  /** Sets the key's global i64 value to `value` if it is `expected` (missing counts as 0), atomically; resolves whether it did. */
  compareAndSwapGlobal(key: string, expected: bigint | number, value: bigint | number): Promise<boolean> {
    return this.run(() => {
      checkKey(key);
      return this.store.global.compareAndSwap(key, BigInt(expected), BigInt(value));
    });
  }

  /** Resolves false when the lease had already expired. */
  private unlockGlobal(key: string, mode: 'read' | 'write'): Promise<boolean> {
    return this.run(() => this.store.unlockGlobal(this.held.unlockGlobal(key, mode)));
  }
}
