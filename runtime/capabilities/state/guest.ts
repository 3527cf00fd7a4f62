/**
 * Worker thread. Host imports of module `nuvola:state`. Local reads and writes go straight to
 * the shared memory of the key through this worker's {@link StateClient}; everything else
 * (global tier, growing values, missing chunks) is asked of the main thread's store. Each
 * import answers synchronously when it can and suspends the guest when it must wait.
 *
 * Errors trap the invocation with their E_STATE_* code. Locks an invocation still holds when
 * it ends — normally, by a trap or by a timeout — are released.
 */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { StateClient } from '../../../state/client.js';
import { Holdings } from '../../../state/holdings.js';
import { MAX_KEY_BYTES } from '../../../state/store.js';
import { asNuvolaError, ErrorCode, makeError } from '../../errors.js';
import type { Answer, RpcClient } from '../../rpc.js';
import type { StateApi } from './api.js';
import { guestBytes, guestWritable, type ContextRef, type GuestContext } from '../context.js';
import { guestCapability, type Slot } from '../capability.js';
import { frame } from '../../frames.js';

/** Per-instance state bookkeeping: what the current invocation holds and is waiting for. */
export interface GuestState {
  /** The locks and leases the current invocation holds. */
  held: Holdings;
  /** What the last `read_all` or `appended_load` staged for `take`. */
  staged: Uint8Array;
  /** This instance's requests to the main thread not answered yet. */
  inflight: Set<Promise<unknown>>;
  /** Created on first use: a client whose waits end when the invocation is cancelled. */
  client: StateClient | undefined;
  /** The worker's channel to the main thread's store. */
  readonly rpc: StateDeps;
}

/** What the worker gives state: its channel to the main thread's store (runtime/rpc.ts). */
export type StateDeps = Pick<RpcClient<StateApi>, 'call'>;

const unavailable: StateDeps = {
  call: () => Promise.reject(new Error('state is not available in this thread')),
};

function newGuestState(fn: string, rpc: StateDeps): GuestState {
  return {
    held: new Holdings((key, message) => lockError(fn, key, message)),
    staged: new Uint8Array(0),
    inflight: new Set(),
    client: undefined,
    rpc,
  };
}

/** A request to the main thread on behalf of one instance, tracked so that its locks are released only after it. */
function request<M extends keyof StateApi & string>(
  state: GuestState,
  method: M,
  ...args: Parameters<StateApi[M]>
): Promise<Answer<StateApi, M>> {
  const pending = state.rpc.call(method, ...args);
  const inflight = state.inflight;
  inflight.add(pending);
  const done = (): void => void inflight.delete(pending);
  pending.then(done, done);
  return pending;
}

/**
 * A state client for `ctx`'s instance whose requests to the store go through `call`: its waits
 * end when the invocation is cancelled. The function is named so that what it allocates counts
 * against its stateQuota. nuvola:region makes one of its own.
 */
export function newStateClient(ctx: GuestContext, call: StateDeps['call']): StateClient {
  return new StateClient(
    {
      lookup: (key) => call('lookup', key, ctx.fn),
      ensure: (key, size, held) => call('ensure', key, size, held, ctx.fn),
      pullRanges: (key, ranges, held) => call('pullRanges', key, ranges, held),
      mapRegion: (key, size, ownMaps) => call('mapRegion', key, size, ctx.fn, ownMaps),
    },
    () => ctx.cancelled,
  );
}

/**
 * The instance's state client. One per instance (they share the keys' memory, not a cache),
 * so that its waits end when its invocation is cancelled and its requests can be told apart.
 */
function clientOf(ctx: GuestContext, state: GuestState): StateClient {
  const track: StateDeps['call'] = (method, ...args) => request(state, method, ...args);
  return (state.client ??= newStateClient(ctx, track));
}

// Two different byte strings must never decode to the same key: fatal (not every invalid
// sequence to U+FFFD) and ignoreBOM (a leading byte-order mark stays part of the key).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Most characters of a key an error message repeats. */
const MAX_KEY_ECHO = 64;

/** `key` as an error repeats it: cut to {@link MAX_KEY_ECHO} characters. */
export function keyEcho(key: string): string {
  return key.length <= MAX_KEY_ECHO ? key : `${key.slice(0, MAX_KEY_ECHO)}…`;
}

/** Whether `patterns` (exact keys, or prefixes ending in `*`) allow `key`; no patterns allow all. */
export function keyAllowed(patterns: readonly string[] | undefined, key: string): boolean {
  if (patterns === undefined) return true;
  return patterns.some((p) => (p.endsWith('*') ? key.startsWith(p.slice(0, -1)) : key === p));
}

/**
 * The state key a guest passed as (ptr, len): 1 to MAX_KEY_BYTES of valid UTF-8 that the
 * function's stateKeys grant, else a trap with E_STATE_BAD_KEY or E_STATE_DENIED. `what`: the
 * import, for the messages. nuvola:region maps keys under the same rule.
 */
export function guestKey(ctx: GuestContext, ptr: number, len: number, what: string): string {
  const bytes = guestBytes(ctx, ptr, len, what);
  // Before decoding: a key of any length in the guest's memory would otherwise be decoded,
  // and a denied one repeated in the error.
  if (bytes.byteLength === 0 || bytes.byteLength > MAX_KEY_BYTES) {
    throw makeError(
      ErrorCode.STATE_BAD_KEY,
      `function '${ctx.fn}' passed a state key of ${bytes.byteLength} bytes; a key is 1 to ${MAX_KEY_BYTES} bytes of UTF-8`,
      { function: ctx.fn, bytes: bytes.byteLength },
    );
  }
  let k: string;
  try {
    k = decoder.decode(bytes);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw makeError(ErrorCode.STATE_BAD_KEY, `function '${ctx.fn}' passed a state key that is not valid UTF-8`, { function: ctx.fn });
  }
  if (!keyAllowed(ctx.stateKeys, k)) {
    throw makeError(
      ErrorCode.STATE_DENIED,
      `function '${ctx.fn}' may not touch state key '${keyEcho(k)}'; register it with stateKeys including it`,
      { function: ctx.fn, key: keyEcho(k), keyBytes: bytes.byteLength },
    );
  }
  return k;
}

/** Maps errors from the store (and async rejections) onto coded runtime errors. */
function coded<T>(value: T | Promise<T>): T | Promise<T> {
  return value instanceof Promise ? value.catch((err: unknown) => Promise.reject(asNuvolaError(err))) : value;
}

/** An import that runs `fn` for the instance calling it, with store errors mapped to codes. */
function guarded<A extends unknown[], R>(
  ref: ContextRef,
  fn: (ctx: GuestContext, ...args: A) => R | Promise<R>,
): (...args: A) => R | Promise<R> {
  return (...args: A) => {
    // Read once, before any await: while this call waits, other instances run.
    const ctx = ref.ctx;
    try {
      return coded(fn(ctx, ...args));
    } catch (err) {
      throw asNuvolaError(err);
    }
  };
}

function lockError(fn: string, key: string, message: string): Error {
  return makeError(ErrorCode.STATE_LOCK, `function '${fn}': ${message} on state key '${key}'`, { function: fn, key });
}

/**
 * Releases whatever the invocation still holds. `normal`: it returned (then each release is
 * logged). Never throws. When requests made under those locks are still in flight (a
 * cancelled call), the release waits for them, so that nothing runs under a lock already
 * given away.
 */
function releaseState(ctx: GuestContext, held: GuestState, normal: boolean): void {
  held.staged = EMPTY;
  if (held.held.empty) return;
  const { locks, leases } = held.held.takeAll();
  const release = (): void => {
    for (const [key, lock] of locks) {
      try {
        const done = clientOf(ctx, held).unlock(key, lock.mode, lock.state);
        if (done instanceof Promise) done.catch((err: unknown) => ctx.log(`nuvola: releasing the lock on '${key}' failed: ${String(err)}`));
      } catch (err) {
        ctx.log(`nuvola: releasing the lock on '${key}' failed: ${String(err)}`);
      }
      if (normal) ctx.log(`nuvola: released the ${lock.mode} lock on '${key}' that the call still held when it returned`);
    }
    for (const lease of leases) void held.rpc.call('unlockGlobal', lease).catch(() => undefined);
  };
  // A cancelled call may still have a request in flight that runs under these locks (a pull,
  // a push, a resize): release only after its own requests in flight now have been answered.
  const inflight = held.inflight;
  if (inflight.size === 0) release();
  else void Promise.allSettled([...inflight]).then(release);
}

const EMPTY = new Uint8Array(0);

/**
 * An i64 argument as the engine passes it (a bigint). Anything else means the guest declared
 * the import with other types (register does not check import types): refused here, since the
 * store on the main thread would fail on it with a TypeError, reported as E_STATE_UNAVAILABLE.
 */
function i64(ctx: GuestContext, value: unknown, name: string): bigint {
  if (typeof value === 'bigint') return value;
  throw makeError(
    ErrorCode.GUEST_TRAP,
    `function '${ctx.fn}' imports ${abi.MODULE_STATE}.${name} with the wrong types: its values are i64 (see guest/sdk/nuvola/state.ts)`,
    { function: ctx.fn, import: name },
  );
}

export default guestCapability<GuestState, StateDeps>({
  newSlot: (spec, rpc) => newGuestState(spec.name, rpc ?? unavailable),
  endCall: (ctx, state, how) => releaseState(ctx, state, how === 'returned'),
  busy: (state) => state.inflight.size > 0,
  bind(ref: ContextRef, stateOf: Slot<GuestState>) {
    /** What the instance's current invocation holds. */
    const holdings = (ctx: GuestContext): Holdings => stateOf(ctx).held;
    const key = guestKey;
    const held = (ctx: GuestContext, k: string) => holdings(ctx).mode(k);
    const lockLocal = (mode: 'read' | 'write') =>
      guarded(ref, (ctx: GuestContext, kp: number, kl: number) =>
        holdings(ctx).lock(clientOf(ctx, stateOf(ctx)), key(ctx, kp, kl, `lock_${mode}`), mode),
      );
    const unlockLocal = (mode: 'read' | 'write') =>
      guarded(ref, (ctx: GuestContext, kp: number, kl: number) =>
        holdings(ctx).unlock(clientOf(ctx, stateOf(ctx)), key(ctx, kp, kl, `unlock_${mode}`), mode),
      );
    const lockGlobal = (mode: 'read' | 'write') =>
      guarded(ref, (ctx: GuestContext, kp: number, kl: number) => {
        const k = key(ctx, kp, kl, `lock_global_${mode}`);
        return holdings(ctx).lockGlobal(
          k,
          mode,
          () => request(stateOf(ctx), 'lockGlobal', k, mode, ctx.deadline),
          () => ctx.cancelled,
          (lease) =>
            void stateOf(ctx)
              .rpc.call('unlockGlobal', lease)
              .catch(() => undefined),
        );
      });
    const unlockGlobal = (mode: 'read' | 'write') =>
      guarded(ref, async (ctx: GuestContext, kp: number, kl: number) => {
        const k = key(ctx, kp, kl, `unlock_global_${mode}`);
        const lease = holdings(ctx).unlockGlobal(k, mode);
        if (!(await request(stateOf(ctx), 'unlockGlobal', lease))) ctx.log(`nuvola: the global ${mode} lock on '${k}' had already expired`);
      });
    const push = (partial: boolean) =>
      guarded(ref, async (ctx: GuestContext, kp: number, kl: number) => {
        const k = key(ctx, kp, kl, partial ? 'push_partial' : 'push');
        ctx.meter.statePushedBytes += await request(stateOf(ctx), 'push', k, partial, held(ctx, k), holdings(ctx).writeLease(k));
      });
    const take = guarded(ref, (ctx: GuestContext, ptr: number, len: number) => {
      const src = stateOf(ctx).staged;
      const n = Math.min(len >>> 0, src.byteLength);
      guestWritable(ctx, ptr, n, 'take').set(src.subarray(0, n));
      ctx.meter.stateBytesRead += n;
      stateOf(ctx).staged = EMPTY;
    });
    return {
      [abi.STATE_SIZE]: guarded(ref, (ctx: GuestContext, kp: number, kl: number) =>
        clientOf(ctx, stateOf(ctx)).size(key(ctx, kp, kl, 'size')),
      ),
      [abi.STATE_READ]: guarded(ref, (ctx: GuestContext, kp: number, kl: number, offset: number, ptr: number, len: number) => {
        const k = key(ctx, kp, kl, 'read');
        guestBytes(ctx, ptr, len, 'read');
        if (offset < 0) throw makeError(ErrorCode.STATE_BOUNDS, `negative offset ${offset} reading '${k}'`, { key: k });
        return clientOf(ctx, stateOf(ctx)).read(
          k,
          offset,
          len,
          (n) => {
            ctx.meter.stateBytesRead += n;
            return guestWritable(ctx, ptr, n, 'read');
          },
          held(ctx, k),
        );
      }),
      [abi.STATE_WRITE]: guarded(ref, (ctx: GuestContext, kp: number, kl: number, ptr: number, len: number) => {
        const k = key(ctx, kp, kl, 'write');
        guestBytes(ctx, ptr, len, 'write');
        ctx.meter.stateBytesWritten += len;
        return clientOf(ctx, stateOf(ctx)).write(k, () => guestBytes(ctx, ptr, len, 'write'), len, held(ctx, k));
      }),
      [abi.STATE_WRITE_AT]: guarded(ref, (ctx: GuestContext, kp: number, kl: number, offset: number, ptr: number, len: number) => {
        const k = key(ctx, kp, kl, 'write_at');
        guestBytes(ctx, ptr, len, 'write_at');
        if (offset < 0) throw makeError(ErrorCode.STATE_BOUNDS, `negative offset ${offset} writing '${k}'`, { key: k });
        ctx.meter.stateBytesWritten += len;
        return clientOf(ctx, stateOf(ctx)).writeAt(k, offset, () => guestBytes(ctx, ptr, len, 'write_at'), len, held(ctx, k));
      }),
      [abi.STATE_APPEND]: guarded(ref, async (ctx: GuestContext, kp: number, kl: number, ptr: number, len: number) => {
        const k = key(ctx, kp, kl, 'append');
        const bytes = guestBytes(ctx, ptr, len, 'append').slice();
        ctx.meter.stateBytesWritten += len;
        await request(stateOf(ctx), 'append', k, bytes, ctx.fn);
      }),
      [abi.STATE_APPENDED_LOAD]: guarded(ref, async (ctx: GuestContext, kp: number, kl: number) => {
        const k = key(ctx, kp, kl, 'appended_load');
        const out = frame(await request(stateOf(ctx), 'readAppended', k));
        stateOf(ctx).staged = out;
        return out.byteLength;
      }),
      [abi.STATE_READ_ALL]: guarded(ref, (ctx: GuestContext, kp: number, kl: number) => {
        const k = key(ctx, kp, kl, 'read_all');
        const stage = (bytes: Uint8Array): number => {
          stateOf(ctx).staged = bytes;
          return bytes.byteLength;
        };
        const value = clientOf(ctx, stateOf(ctx)).readAll(k, held(ctx, k));
        return value instanceof Promise ? value.then(stage) : stage(value);
      }),
      [abi.STATE_TAKE]: take,
      [abi.STATE_APPENDED_TAKE]: take,
      [abi.STATE_CLEAR_APPENDED]: guarded(ref, async (ctx: GuestContext, kp: number, kl: number) => {
        await request(stateOf(ctx), 'clearAppended', key(ctx, kp, kl, 'clear_appended'));
      }),
      [abi.STATE_PUSH]: push(false),
      [abi.STATE_PUSH_PARTIAL]: push(true),
      [abi.STATE_PULL]: guarded(ref, async (ctx: GuestContext, kp: number, kl: number) => {
        const k = key(ctx, kp, kl, 'pull');
        await request(stateOf(ctx), 'pull', k, held(ctx, k), ctx.fn);
      }),
      [abi.STATE_DELETE]: guarded(ref, async (ctx: GuestContext, kp: number, kl: number) => {
        const k = key(ctx, kp, kl, 'delete');
        if (held(ctx, k) !== undefined) throw lockError(ctx.fn, k, 'delete while holding a lock');
        await request(stateOf(ctx), 'delete', k, undefined);
        clientOf(ctx, stateOf(ctx)).forget(k);
      }),
      [abi.STATE_LOCK_READ]: lockLocal('read'),
      [abi.STATE_UNLOCK_READ]: unlockLocal('read'),
      [abi.STATE_LOCK_WRITE]: lockLocal('write'),
      [abi.STATE_UNLOCK_WRITE]: unlockLocal('write'),
      [abi.STATE_LOCK_GLOBAL_READ]: lockGlobal('read'),
      [abi.STATE_UNLOCK_GLOBAL_READ]: unlockGlobal('read'),
      [abi.STATE_LOCK_GLOBAL_WRITE]: lockGlobal('write'),
      [abi.STATE_UNLOCK_GLOBAL_WRITE]: unlockGlobal('write'),
      [abi.STATE_INCREMENT_GLOBAL]: guarded(ref, async (ctx: GuestContext, kp: number, kl: number, delta: bigint) => {
        const k = key(ctx, kp, kl, 'increment_global');
        return await request(stateOf(ctx), 'incrementGlobal', k, i64(ctx, delta, abi.STATE_INCREMENT_GLOBAL));
      }),
      [abi.STATE_COMPARE_SWAP_GLOBAL]: guarded(ref, async (ctx: GuestContext, kp: number, kl: number, expected: bigint, value: bigint) => {
        const k = key(ctx, kp, kl, 'compare_swap_global');
        const swapped = await request(
          stateOf(ctx),
          'compareAndSwapGlobal',
          k,
          i64(ctx, expected, abi.STATE_COMPARE_SWAP_GLOBAL),
          i64(ctx, value, abi.STATE_COMPARE_SWAP_GLOBAL),
        );
        return swapped ? 1 : 0;
      }),
    };
  },
});
