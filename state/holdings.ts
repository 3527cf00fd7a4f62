/**
 * Any thread. What one holder has of the store: the local locks it holds (with the allocation
 * each locked) and the global leases, and the rules both the guest's imports and the host's
 * `rt.state` follow — no second lock on a key held or waited for, no unlock of a lock not held.
 * The holder words the errors (`fail`), since a guest's and the host's say who they are.
 */
import type { StateClient } from './client.js';
import type { Lease } from './global-tier.js';
import type { KeyState } from './key-state.js';

export type LockMode = 'read' | 'write';

/** A local lock held, and the allocation it locked. */
export interface LocalLock {
  mode: LockMode;
  state: KeyState;
}

export class Holdings {
  private readonly locks = new Map<string, LocalLock>();
  private readonly leases = new Map<string, Lease>();
  /** Keys whose local lock, and whose global lock, the holder is waiting for. */
  private readonly waiting = new Set<string>();
  private readonly waitingGlobal = new Set<string>();

  /** `fail(key, message)`: the error for a misuse of `key`'s locks. */
  constructor(private readonly fail: (key: string, message: string) => Error) {}

  /** The local lock held on `key`, if any. */
  mode(key: string): LockMode | undefined {
    return this.locks.get(key)?.mode;
  }

  /** The global write lease held on `key`, which a push must carry. */
  writeLease(key: string): Lease | undefined {
    const lease = this.leases.get(key);
    return lease?.mode === 'write' ? lease : undefined;
  }

  /** Whether anything is held. */
  get empty(): boolean {
    return this.locks.size === 0 && this.leases.size === 0;
  }

  /** Takes `key`'s local lock through `client`; `client.lock` answering undefined (cancelled) fails. */
  async lock(client: StateClient, key: string, mode: LockMode): Promise<void> {
    const held = this.mode(key);
    if (held !== undefined) throw this.fail(key, `lock_${mode} while already holding the ${held} lock`);
    if (this.waiting.has(key)) throw this.fail(key, `lock_${mode} while already waiting for its lock`);
    this.waiting.add(key);
    try {
      const state = await client.lock(key, mode);
      if (state === undefined) throw this.fail(key, `lock_${mode} abandoned: the call was cancelled while waiting`);
      this.locks.set(key, { mode, state });
    } finally {
      this.waiting.delete(key);
    }
  }

  unlock(client: StateClient, key: string, mode: LockMode): void | Promise<void> {
    const lock = this.locks.get(key);
    if (lock?.mode !== mode) throw this.fail(key, `unlock_${mode} without holding the ${mode} lock`);
    this.locks.delete(key);
    return client.unlock(key, mode, lock.state);
  }

  /**
   * Takes `key`'s global lock with `take`. When `cancelled()` holds once it has it, the lease
   * goes back through `release` and the lock fails.
   */
  async lockGlobal(
    key: string,
    mode: LockMode,
    take: () => Promise<Lease>,
    cancelled: () => boolean = () => false,
    release: (lease: Lease) => void = () => {},
  ): Promise<void> {
    if (this.leases.has(key)) throw this.fail(key, `lock_global_${mode} while already holding a global lock`);
    if (this.waitingGlobal.has(key)) throw this.fail(key, `lock_global_${mode} while already waiting for a global lock`);
    this.waitingGlobal.add(key);
    try {
      const lease = await take();
      if (cancelled()) {
        release(lease);
        throw this.fail(key, `lock_global_${mode} abandoned: the call was cancelled while waiting`);
      }
      this.leases.set(key, lease);
    } finally {
      this.waitingGlobal.delete(key);
    }
  }

  /** Gives up `key`'s global `mode` lock: returns its lease, for the caller to release. */
  unlockGlobal(key: string, mode: LockMode): Lease {
    const lease = this.leases.get(key);
    if (lease?.mode !== mode) throw this.fail(key, `unlock_global_${mode} without holding the global ${mode} lock`);
    this.leases.delete(key);
    return lease;
  }

  /** Everything held, now given up here (for the holder to release). */
  takeAll(): { locks: [string, LocalLock][]; leases: Lease[] } {
    const all = { locks: [...this.locks], leases: [...this.leases.values()] };
    this.locks.clear();
    this.leases.clear();
    return all;
  }
}
