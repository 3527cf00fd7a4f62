/**
 * Main thread. `rt.state`: the state API for the embedding service, with the same operations
 * and semantics as the guest's. Locks taken here are held by the host (this runtime object)
 * until it unlocks them.
 */
import { StateClient } from '../state/client.js';
import type { Lease } from '../state/global-tier.js';
import type { KeyState } from '../state/key-state.js';
import { checkKey, type StateStore } from '../state/store.js';
import { asNuvolaError, ErrorCode, makeError } from './errors.js';

/** Default wait for a contended global lock from the host, in milliseconds. */
const GLOBAL_LOCK_WAIT_MS = 30_000;

export class HostState {
  private readonly client: StateClient;
  /** Locks the host holds: mode and the allocation locked. Set only once acquired. */
  private readonly held = new Map<string, { mode: 'read' | 'write'; state: KeyState }>();
  /** Keys whose lock the host is waiting for. */
  private readonly pending = new Set<string>();
  /** Keys whose global lock the host is waiting for. */
  private readonly pendingGlobal = new Set<string>();
  private readonly leases = new Map<string, Lease>();

  /** @internal */
  constructor(private readonly store: StateStore) {
    this.client = new StateClient({
      lookup: (key) => store.lookup(key),
      ensure: (key, size, held) => store.ensure(key, size, held),
      pullRanges: (key, ranges, held) => store.pullRanges(key, ranges, held),
    });
  }

  private mode(key: string): 'read' | 'write' | undefined {
    return this.held.get(key)?.mode;
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
    return this.run(async () => void (await this.store.push(key, false, this.mode(key), this.writeLease(key))));
  }

  pushPartial(key: string): Promise<void> {
    return this.run(async () => void (await this.store.push(key, true, this.mode(key), this.writeLease(key))));
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

  private writeLease(key: string): Lease | undefined {
    const lease = this.leases.get(key);
    return lease?.mode === 'write' ? lease : undefined;
  }

  private lockError(key: string, message: string): Error {
    return makeError(ErrorCode.STATE_LOCK, `host: ${message} on state key '${key}'`, { key });
  }

  lockRead(key: string): Promise<void> {
    return this.lock(key, 'read');
  }

  lockWrite(key: string): Promise<void> {
    return this.lock(key, 'write');
  }

  private lock(key: string, mode: 'read' | 'write'): Promise<void> {
    return this.run(async () => {
      if (this.held.has(key) || this.pending.has(key))
        throw this.lockError(key, `lock_${mode} while already holding or waiting for its lock`);
      this.pending.add(key);
      try {
        const state = await this.client.lock(key, mode);
        if (state !== undefined) this.held.set(key, { mode, state });
      } finally {
        this.pending.delete(key);
      }
    });
  }

  unlockRead(key: string): Promise<void> {
    return this.unlock(key, 'read');
  }

  unlockWrite(key: string): Promise<void> {
    return this.unlock(key, 'write');
  }

  private unlock(key: string, mode: 'read' | 'write'): Promise<void> {
    return this.run(() => {
      const lock = this.held.get(key);
      if (lock?.mode !== mode) throw this.lockError(key, `unlock_${mode} without holding the ${mode} lock`);
      this.held.delete(key);
      return this.client.unlock(key, mode, lock.state);
    });
  }

  lockGlobalRead(key: string, waitMs = GLOBAL_LOCK_WAIT_MS): Promise<void> {
    return this.lockGlobal(key, 'read', waitMs);
  }

  lockGlobalWrite(key: string, waitMs = GLOBAL_LOCK_WAIT_MS): Promise<void> {
    return this.lockGlobal(key, 'write', waitMs);
  }

  private lockGlobal(key: string, mode: 'read' | 'write', waitMs: number): Promise<void> {
    return this.run(async () => {
      if (this.leases.has(key) || this.pendingGlobal.has(key)) {
        throw this.lockError(key, `lock_global_${mode} while already holding or waiting for a global lock`);
      }
      this.pendingGlobal.add(key);
      try {
        this.leases.set(key, await this.store.lockGlobal(key, mode, Date.now() + waitMs));
      } finally {
        this.pendingGlobal.delete(key);
      }
    });
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
    return this.run(async () => {
      const lease = this.leases.get(key);
      if (lease?.mode !== mode) throw this.lockError(key, `unlock_global_${mode} without holding the global ${mode} lock`);
      this.leases.delete(key);
      return this.store.unlockGlobal(lease);
    });
  }
}
