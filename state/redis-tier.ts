/**
 * The Redis global tier (ioredis). Values are Redis strings (`GETRANGE`/`SETRANGE` give
 * ranged pull and partial push), appends are lists, locks are keys with a PX lease plus a
 * sorted set of readers, and writes under a lease are checked by a Lua script against the
 * lease holder and the highest fence seen (fencing). Keys share a hash tag per state key, so
 * every script touches one cluster slot.
 *
 * Why ioredis: Buffer replies (`getBuffer`), pipelines and `defineCommand` for scripts,
 * automatic reconnection, TLS and cluster support in one well-kept client.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { connectRedis, type RedisTarget } from './redis-connect.js';
import { StateError, StateErrorCode } from './errors.js';
import { counterShape, type GlobalTier, type Lease, type Piece } from './global-tier.js';

export type { RedisTarget } from './redis-connect.js';

const NOW_MS = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const LOCK_WRITE = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('ZCARD', KEYS[2]) > 0 then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[3])`;

const LOCK_READ = `${NOW_MS}
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
-- Only ever extend the set's expiry: readers may hold leases of different lengths.
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return tonumber(redis.call('GET', KEYS[3]) or '0')`;

const UNLOCK_WRITE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** KEYS: writer, seen-fence, value. ARGV: token, fence, replace (1/0), then offset/data pairs. */
const FENCED_WRITE = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) < seen then return -1 end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[3], ARGV[5]) return 1 end
for i = 4, #ARGV, 2 do redis.call('SETRANGE', KEYS[3], tonumber(ARGV[i]), ARGV[i + 1]) end
return 1`;

/**
 * KEYS: value. ARGV: the delta's low 32 bits (unsigned) and high 32 bits (signed). Adds to the
 * value as a little-endian i64 in two 32-bit halves (Lua numbers are doubles: exact below
 * 2^53, so each half and its carry are), wrapping like i64. Returns the new 8 bytes, or the
 * length of a value that is not 8 bytes (left as it is).
 */
/** The value's length and its first ARGV[1] bytes, as one command (one round trip). */
const HEAD = `return {redis.call('STRLEN', KEYS[1]), redis.call('GETRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)}`;

const INCREMENT = `local v = redis.call('GET', KEYS[1])
local lo, hi = 0, 0
if v then
  if #v ~= 8 then return #v end
  lo, hi = struct.unpack('<I4i4', v)
end
lo = lo + tonumber(ARGV[1])
local carry = 0
if lo >= 4294967296 then lo = lo - 4294967296 carry = 1 end
hi = hi + tonumber(ARGV[2]) + carry
if hi >= 2147483648 then hi = hi - 4294967296 elseif hi < -2147483648 then hi = hi + 4294967296 end
local out = struct.pack('<I4i4', lo, hi)
redis.call('SET', KEYS[1], out)
return out`;

/** KEYS: value. ARGV: expected and new value, 8 bytes each. 1 swapped, 0 not, -1 - length for a value not 8 bytes. */
const COMPARE_SWAP = `local v = redis.call('GET', KEYS[1])
if v and #v ~= 8 then return -1 - #v end
if (v or string.rep(string.char(0), 8)) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

const i64Bytes = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt.asIntN(64, n));
  return b;
};

interface Scripted extends Redis {
  nuvolaIncrementBuffer(v: string, lo: string, hi: string): Promise<Buffer | number>;
  nuvolaCompareSwap(v: string, expected: Buffer, value: Buffer): Promise<number>;
  nuvolaLockWrite(w: string, r: string, f: string, token: string, leaseMs: number): Promise<number>;
  nuvolaLockRead(w: string, r: string, f: string, token: string, leaseMs: number): Promise<number>;
  nuvolaUnlockWrite(w: string, token: string): Promise<number>;
  nuvolaHeadBuffer(v: string, length: number): Promise<[number, Buffer]>;
  nuvolaFencedWrite(w: string, s: string, v: string, ...args: (string | number | Buffer)[]): Promise<number>;
}

const keys = (key: string) => {
  // Redis Cluster hashes the text between the first '{' and the next '}', or the whole name
  // when that is empty: a key beginning with '}' would spread its six names over six slots
  // (CROSSSLOT in every script). Such a key is tagged by its SHA-256 instead, under names no
  // other key has ('#' where the others have '{').
  const tag = key.startsWith('}') ? `#{${createHash('sha256').update(key).digest('hex')}}` : `{${key}}`;
  return {
    value: `nuvola:v:${tag}`,
    list: `nuvola:a:${tag}`,
    writer: `nuvola:lw:${tag}`,
    readers: `nuvola:lr:${tag}`,
    fence: `nuvola:lf:${tag}`,
    seen: `nuvola:ls:${tag}`,
  };
};

export class RedisTier implements GlobalTier {
  readonly kind = 'redis';
  private readonly client: Scripted;

  constructor(target: RedisTarget, onError: (message: string) => void) {
    // Fail fast while disconnected instead of queueing: the caller gets E_STATE_UNAVAILABLE
    // at once and its dirty data stays dirty. Reconnection goes on in the background.
    const client = connectRedis(target, { offlineQueue: false, maxRetriesPerRequest: 1 });
    let last = '';
    client.on('error', (err: Error) => {
      if (err.message !== last) onError(`redis: ${err.message}`);
      last = err.message;
    });
    client.on('ready', () => {
      last = '';
    });
    client.defineCommand('nuvolaLockWrite', { numberOfKeys: 3, lua: LOCK_WRITE });
    client.defineCommand('nuvolaLockRead', { numberOfKeys: 3, lua: LOCK_READ });
    client.defineCommand('nuvolaUnlockWrite', { numberOfKeys: 1, lua: UNLOCK_WRITE });
    client.defineCommand('nuvolaFencedWrite', { numberOfKeys: 3, lua: FENCED_WRITE });
    client.defineCommand('nuvolaIncrement', { numberOfKeys: 1, lua: INCREMENT });
    client.defineCommand('nuvolaHead', { numberOfKeys: 1, lua: HEAD });
    client.defineCommand('nuvolaCompareSwap', { numberOfKeys: 1, lua: COMPARE_SWAP });
    this.client = client as Scripted;
  }

  /** Resolves when connected, or after `timeoutMs` either way (the tier reconnects by itself). */
  async connected(timeoutMs: number): Promise<boolean> {
    if (this.client.status === 'ready') return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.client.once('ready', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private async call<T>(what: string, key: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof StateError) throw err;
      throw new StateError(
        StateErrorCode.UNAVAILABLE,
        `global tier (Redis) unavailable during ${what} of '${key}': ${(err as Error).message}; local state is kept and a later push retries`,
        { key, op: what },
      );
    }
  }

  size(key: string): Promise<number> {
    return this.call('size', key, () => this.client.strlen(keys(key).value));
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.call('pull', key, async () => (await this.client.getBuffer(keys(key).value)) ?? undefined);
  }

  head(key: string, length: number): Promise<{ size: number; bytes: Uint8Array }> {
    return this.call('size', key, async () => {
      // GETRANGE with an end of -1 is the whole value: ask for at least one byte.
      const [size, bytes] = await this.client.nuvolaHeadBuffer(keys(key).value, Math.max(1, length));
      return { size, bytes: length > 0 ? bytes : new Uint8Array(0) };
    });
  }

  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    if (length <= 0) return Promise.resolve(new Uint8Array(0));
    return this.call('pull', key, () => this.client.getrangeBuffer(keys(key).value, offset, offset + length - 1));
  }

  write(key: string, pieces: Piece[], replaceSize: number | undefined, lease?: Lease): Promise<void> {
    const k = keys(key);
    const buf = (d: Uint8Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    return this.call('push', key, async () => {
      if (lease !== undefined) {
        const args: (string | number | Buffer)[] = [lease.token, lease.fence, replaceSize === undefined ? '0' : '1'];
        for (const p of pieces) args.push(p.offset, buf(p.data));
        if (replaceSize !== undefined && pieces.length === 0) args.push(0, Buffer.alloc(0));
        const ok = await this.client.nuvolaFencedWrite(k.writer, k.seen, k.value, ...args);
        if (ok !== 1) {
          throw new StateError(
            StateErrorCode.LEASE,
            `global write lock on '${key}' is no longer held (lease expired or superseded); the write was refused`,
            { key },
          );
        }
        return;
      }
      if (replaceSize !== undefined) {
        await this.client.set(k.value, pieces[0] ? buf(pieces[0].data) : Buffer.alloc(0));
        return;
      }
      // Several ranges land together or not at all.
      const multi = this.client.multi();
      for (const p of pieces) multi.setrange(k.value, p.offset, buf(p.data));
      const replies = await multi.exec();
      const failed = replies?.find(([err]) => err !== null);
      if (replies === null || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  delete(key: string): Promise<void> {
    return this.call('delete', key, async () => {
      await this.client.del(keys(key).value);
    });
  }

  append(key: string, data: Uint8Array): Promise<void> {
    return this.call('append', key, async () => {
      await this.client.rpush(keys(key).list, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  readAppended(key: string): Promise<Uint8Array[]> {
    return this.call('readAppended', key, () => this.client.lrangeBuffer(keys(key).list, 0, -1));
  }

  clearAppended(key: string): Promise<void> {
    return this.call('clearAppended', key, async () => {
      await this.client.del(keys(key).list);
    });
  }

  increment(key: string, delta: bigint): Promise<bigint> {
    const d = BigInt.asUintN(64, delta);
    const lo = String(d & 0xffff_ffffn);
    const hi = String(BigInt.asIntN(32, d >> 32n));
    return this.call('incrementGlobal', key, async () => {
      const reply = await this.client.nuvolaIncrementBuffer(keys(key).value, lo, hi);
      if (typeof reply === 'number') throw counterShape(key, 'incrementGlobal', reply);
      return reply.readBigInt64LE(0);
    });
  }

  compareAndSwap(key: string, expected: bigint, value: bigint): Promise<boolean> {
    return this.call('compareAndSwapGlobal', key, async () => {
      const reply = await this.client.nuvolaCompareSwap(keys(key).value, i64Bytes(expected), i64Bytes(value));
      if (reply < 0) throw counterShape(key, 'compareAndSwapGlobal', -1 - reply);
      return reply === 1;
    });
  }

  tryLock(key: string, mode: 'read' | 'write', leaseMs: number): Promise<Lease | undefined> {
    const k = keys(key);
    const token = randomUUID();
    return this.call('lock', key, async () => {
      const start = Date.now();
      const fence =
        mode === 'write'
          ? await this.client.nuvolaLockWrite(k.writer, k.readers, k.fence, token, leaseMs)
          : await this.client.nuvolaLockRead(k.writer, k.readers, k.fence, token, leaseMs);
      if (fence < 0) return undefined;
      // Count the lease from before the request: the holder's view errs on the short side.
      return { key, mode, token, fence, expiresAt: start + leaseMs };
    });
  }

  unlock(lease: Lease): Promise<boolean> {
    const k = keys(lease.key);
    return this.call('unlock', lease.key, async () =>
      lease.mode === 'write'
        ? (await this.client.nuvolaUnlockWrite(k.writer, lease.token)) === 1
        : (await this.client.zrem(k.readers, lease.token)) === 1,
    );
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
