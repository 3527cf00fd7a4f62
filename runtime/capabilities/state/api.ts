/**
 * Both threads. What a worker asks the main thread's store (StateStore, state/store.ts) on
 * behalf of a guest: one method per request, answered by service.ts. `fn`: the calling
 * function, so what it allocates counts against its stateQuota.
 */
import type { Lease } from '../../../state/global-tier.js';
import type { KeyHandle, Range } from '../../../state/key-state.js';
import type { HeldLock, RegionGrant } from '../../../state/store.js';

export interface StateApi {
  lookup(key: string, fn: string | undefined): KeyHandle | undefined;
  ensure(key: string, size: number, held: HeldLock, fn: string | undefined): KeyHandle;
  pullRanges(key: string, ranges: Range[], held: HeldLock): void;
  pull(key: string, held: HeldLock, fn: string | undefined): void;
  /** `StateStore.mapRegion`: the key made a region of at least `size` bytes; `ownMaps`: the calling call's maps on it. */
  mapRegion(key: string, size: number, fn: string | undefined, ownMaps: number): RegionGrant;
  /** The bytes sent. */
  push(key: string, partial: boolean, held: HeldLock, lease: Lease | undefined): number;
  delete(key: string, held: HeldLock): void;
  append(key: string, data: Uint8Array, fn: string | undefined): void;
  readAppended(key: string): Uint8Array[];
  clearAppended(key: string): void;
  lockGlobal(key: string, mode: 'read' | 'write', deadline: number): Lease;
  unlockGlobal(lease: Lease): boolean;
  /** An atomic i64 add in the global tier. */
  incrementGlobal(key: string, delta: bigint): bigint;
  /** An atomic i64 compare-and-swap in the global tier. */
  compareAndSwapGlobal(key: string, expected: bigint, value: bigint): boolean;
}
