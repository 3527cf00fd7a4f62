/**
 * The in-process global tier: the embedded default when no Redis is configured. It keeps
 * values in this process only, so it serves a single host; nothing survives the process.
 * Same semantics as the Redis tier, including leases and fencing.
 */
import { randomUUID } from 'node:crypto';
import { StateError, StateErrorCode } from './errors.js';
import { counterShape, type GlobalTier, type Lease, type Piece } from './global-tier.js';

interface LockEntry {
  writer: { token: string; expiresAt: number } | undefined;
  readers: Map<string, number>;
  fence: number;
  /** The highest fence a write has carried. */
  seenFence: number;
}

export class MemoryTier implements GlobalTier {
  readonly kind = 'memory';
  private readonly values = new Map<string, Uint8Array>();
  private readonly lists = new Map<string, Uint8Array[]>();
  private readonly locks = new Map<string, LockEntry>();

  async size(key: string): Promise<number> {
    return this.values.get(key)?.byteLength ?? 0;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.values.get(key)?.slice();
  }

  async head(key: string, length: number): Promise<{ size: number; bytes: Uint8Array }> {
    const value = this.values.get(key);
    return { size: value?.byteLength ?? 0, bytes: value === undefined ? new Uint8Array(0) : value.slice(0, length) };
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    const value = this.values.get(key);
    return value === undefined ? new Uint8Array(0) : value.slice(offset, offset + length);
  }

  async write(key: string, pieces: Piece[], replaceSize: number | undefined, lease?: Lease): Promise<void> {
    if (lease !== undefined) this.checkLease(key, lease);
    const old = this.values.get(key);
    let end = replaceSize ?? old?.byteLength ?? 0;
    for (const p of pieces) end = Math.max(end, p.offset + p.data.byteLength);
    const value = new Uint8Array(end);
    if (replaceSize === undefined && old !== undefined) value.set(old);
    for (const p of pieces) value.set(p.data, p.offset);
    this.values.set(key, value);
  }

  private entry(key: string): LockEntry {
    let e = this.locks.get(key);
    if (e === undefined) {
      e = { writer: undefined, readers: new Map(), fence: 0, seenFence: 0 };
      this.locks.set(key, e);
    }
    const now = Date.now();
    if (e.writer !== undefined && e.writer.expiresAt <= now) e.writer = undefined;
    for (const [token, expiresAt] of e.readers) if (expiresAt <= now) e.readers.delete(token);
    return e;
  }

  private checkLease(key: string, lease: Lease): void {
    const e = this.entry(key);
    if (e.writer?.token !== lease.token || lease.fence < e.seenFence) {
      throw new StateError(
        StateErrorCode.LEASE,
        `global write lock on '${key}' is no longer held (lease expired or superseded); the write was refused`,
        { key },
      );
    }
    e.seenFence = lease.fence;
  }

  /** The key's value as an i64, 0 when missing; refuses a value of another length. */
  private counter(key: string, op: string): bigint {
    const value = this.values.get(key);
    if (value === undefined) return 0n;
    if (value.byteLength !== 8) throw counterShape(key, op, value.byteLength);
    return new DataView(value.buffer, value.byteOffset, 8).getBigInt64(0, true);
  }

  private setCounter(key: string, n: bigint): void {
    const value = new Uint8Array(8);
    new DataView(value.buffer).setBigInt64(0, BigInt.asIntN(64, n), true);
    this.values.set(key, value);
  }

  async increment(key: string, delta: bigint): Promise<bigint> {
    const next = BigInt.asIntN(64, this.counter(key, 'incrementGlobal') + delta);
    this.setCounter(key, next);
    return next;
  }

  async compareAndSwap(key: string, expected: bigint, value: bigint): Promise<boolean> {
    if (this.counter(key, 'compareAndSwapGlobal') !== BigInt.asIntN(64, expected)) return false;
    this.setCounter(key, value);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }

  async append(key: string, data: Uint8Array): Promise<void> {
    const list = this.lists.get(key) ?? [];
    list.push(data.slice());
    this.lists.set(key, list);
  }

  async readAppended(key: string): Promise<Uint8Array[]> {
    return (this.lists.get(key) ?? []).map((d) => d.slice());
  }

  async clearAppended(key: string): Promise<void> {
    this.lists.delete(key);
  }

  async tryLock(key: string, mode: 'read' | 'write', leaseMs: number): Promise<Lease | undefined> {
    const e = this.entry(key);
    const token = randomUUID();
    const expiresAt = Date.now() + leaseMs;
    if (e.writer !== undefined) return undefined;
    if (mode === 'read') {
      e.readers.set(token, expiresAt);
      return { key, mode, token, fence: e.fence, expiresAt };
    }
    if (e.readers.size > 0) return undefined;
    e.writer = { token, expiresAt };
    e.fence++;
    return { key, mode, token, fence: e.fence, expiresAt };
  }

  async unlock(lease: Lease): Promise<boolean> {
    const e = this.entry(lease.key);
    if (lease.mode === 'read') return e.readers.delete(lease.token);
    if (e.writer?.token !== lease.token) return false;
    e.writer = undefined;
    return true;
  }

  async close(): Promise<void> {}
}
