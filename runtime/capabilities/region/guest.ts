/**
 * Worker thread. Host imports of module `nuvola:region`: `map` and `grow`, which place a state
 * key in the host's region memory (through the store on the main thread) and point a slot of
 * the instance's slot table at it. The accessors never run here: the rewrite compiled each call
 * of one into the access itself (runtime/snapshot/code.ts); the functions bound for them only
 * trap, for a call the rewrite could not see (through a table).
 *
 * A mapped key keeps its place while the call maps it (one map counted per slot, state/README.md
 * "Regions"); when the call ends, however it ends, its maps are dropped and its slots emptied, so
 * the warm instance's next call cannot reach the key through them.
 */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import type { KeyState } from '../../../state/key-state.js';
import { asNuvolaError, ErrorCode, GuestError, LimitError, makeError } from '../../errors.js';
import { guestCapability, type Slot } from '../capability.js';
import { REGION_ACCESS_BYTES } from '../../snapshot/layout.js';
import type { ContextRef, GuestContext, RegionSlots } from '../context.js';
import { guestKey, keyEcho, newStateClient, type StateDeps } from '../state/guest.js';
import type { StateClient } from '../../../state/client.js';

interface Mapped {
  key: string;
  state: KeyState;
}

/** One instance's mapped keys, by slot, and its line to the store (the state capability's RPC). */
interface RegionState {
  slots: (Mapped | undefined)[];
  /** Created on first map: a client whose waits end when the invocation is cancelled. */
  client: StateClient | undefined;
  readonly rpc: StateDeps;
}

/** What the worker gives nuvola:region: the channel to the main thread's store, as for nuvola:state. */
export type RegionDeps = StateDeps;

const unavailable: StateDeps = {
  call: () => Promise.reject(new Error('regions are not available in this thread')),
};

function table(ctx: GuestContext): RegionSlots {
  // Every module importing nuvola:region is rewritten with a slot table, or refused at register.
  if (ctx.regionSlots === undefined) throw new Error(`nuvola: function '${ctx.fn}' imports nuvola:region but has no slot table`);
  return ctx.regionSlots;
}

function checkSize(ctx: GuestContext, key: string, size: number): void {
  if (size > 0) return;
  throw makeError(
    ErrorCode.STATE_BOUNDS,
    `function '${ctx.fn}' mapped state key '${keyEcho(key)}' with a size of ${size} bytes; a region is at least 1 byte`,
    { function: ctx.fn, key: keyEcho(key), size },
  );
}

/** Places `key` (at least `size` bytes) in the region memory and points `slot` at it; `own`: the map this slot already holds. */
async function place(
  ctx: GuestContext,
  region: RegionState,
  slot: number,
  key: string,
  size: number,
  own: Mapped | undefined,
): Promise<void> {
  region.client ??= newStateClient(ctx, (method, ...args) => region.rpc.call(method, ...args));
  const { grant, state } = await region.client.map(key, size, own === undefined ? 0 : 1);
  const slots = region.slots;
  // Cancelled while it waited: endCall has run already, and nothing would drop this map. When
  // a grow moved the key, the slot's own map moved with it (endCall dropped it on the old,
  // retired block only): drop that one too, or the key could never be deleted.
  if (ctx.cancelled) {
    state.dropMap();
    if (own !== undefined && grant.handle.meta !== own.state.handle.meta) state.dropMap();
    return;
  }
  // Growing counted a second map; the slot's first moved with the key if it had to move.
  if (own !== undefined) state.dropMap();
  slots[slot] = { key, state };
  table(ctx).set(slot, grant.base, grant.sizeAddr);
}

function mapped(ctx: GuestContext, region: RegionState, slot: number, what: string): Mapped {
  const m = Number.isInteger(slot) && slot >= 0 && slot < abi.REGION_SLOTS ? region.slots[slot] : undefined;
  if (m !== undefined) return m;
  throw new GuestError(
    ErrorCode.GUEST_TRAP,
    `function '${ctx.fn}' called ${abi.MODULE_REGION}.${what} with slot ${slot}, where no region is mapped`,
    {
      function: ctx.fn,
      slot,
    },
  );
}

/** Drops the call's maps and empties its slots. Never throws. */
function unmapAll(ctx: GuestContext, state: RegionState): void {
  for (const m of state.slots) {
    if (m === undefined) continue;
    try {
      m.state.dropMap();
    } catch (err) {
      ctx.log(`nuvola: unmapping region '${m.key}' failed: ${String(err)}`);
    }
  }
  state.slots.fill(undefined);
  ctx.regionSlots?.clear();
}

export default guestCapability<RegionState, RegionDeps>({
  newSlot: (_spec, rpc) => ({
    slots: new Array<Mapped | undefined>(abi.REGION_SLOTS).fill(undefined),
    client: undefined,
    rpc: rpc ?? unavailable,
  }),
  endCall: (ctx, state) => unmapAll(ctx, state),
  bind(ref: ContextRef, regionOf: Slot<RegionState>) {
    const guarded =
      <A extends unknown[], R>(fn: (ctx: GuestContext, ...args: A) => R | Promise<R>) =>
      (...args: A): R | Promise<R> => {
        const ctx = ref.ctx;
        try {
          const value = fn(ctx, ...args);
          return value instanceof Promise ? value.catch((err: unknown) => Promise.reject(asNuvolaError(err))) : value;
        } catch (err) {
          throw asNuvolaError(err);
        }
      };
    // The rewritten code calls an accessor's import only when its bounds check failed (with the
    // access's operands), or when the guest reached it through a table: either way, the error.
    const accessor =
      (name: string) =>
      (...args: number[]): never => {
        const ctx = ref.ctx;
        const [s = 0, off = 0, , length = 0] = args;
        const slot = s & (abi.REGION_SLOTS - 1);
        const m = regionOf(ctx).slots[slot];
        const bytes = REGION_ACCESS_BYTES[name] ?? length >>> 0;
        const offset = off >>> 0;
        if (m === undefined) {
          throw new GuestError(
            ErrorCode.GUEST_TRAP,
            `function '${ctx.fn}' called ${abi.MODULE_REGION}.${name} through slot ${slot}, where this call mapped no region; map it with region.map first (a Region lasts one call)`,
            { function: ctx.fn, import: name, slot },
          );
        }
        const size = m.state.size;
        if (offset + bytes > size) {
          throw new GuestError(
            ErrorCode.GUEST_TRAP,
            `function '${ctx.fn}' accessed ${bytes} bytes at offset ${offset} of region '${keyEcho(m.key)}', which is ${size} bytes: past its end; map it larger or grow it first`,
            { function: ctx.fn, import: name, key: keyEcho(m.key), offset, bytes, size },
          );
        }
        throw new GuestError(
          ErrorCode.GUEST_TRAP,
          `function '${ctx.fn}' reached ${abi.MODULE_REGION}.${name} through a table; region accessors work only when called directly`,
          { function: ctx.fn, import: name },
        );
      };
    const imports: Record<string, (...args: never[]) => unknown> = {
      [abi.REGION_MAP]: guarded(async (ctx: GuestContext, kp: number, kl: number, size: number) => {
        const key = guestKey(ctx, kp, kl, `${abi.MODULE_REGION}.${abi.REGION_MAP}`);
        checkSize(ctx, key, size);
        const region = regionOf(ctx);
        const slots = region.slots;
        const again = slots.findIndex((m) => m?.key === key);
        if (again >= 0) {
          if (size > slots[again]!.state.size) await place(ctx, region, again, key, size, slots[again]);
          return again;
        }
        const free = slots.indexOf(undefined);
        if (free < 0) {
          throw new LimitError(
            ErrorCode.INSTANCE_LIMIT,
            `function '${ctx.fn}' mapped more than ${abi.REGION_SLOTS} regions in one call (the next was '${keyEcho(key)}'); map fewer keys, or one key holding them all`,
            { function: ctx.fn, key: keyEcho(key), limit: abi.REGION_SLOTS },
          );
        }
        await place(ctx, region, free, key, size, undefined);
        return free;
      }),
      [abi.REGION_GROW]: guarded(async (ctx: GuestContext, s: number, size: number) => {
        const region = regionOf(ctx);
        const m = mapped(ctx, region, s, abi.REGION_GROW);
        checkSize(ctx, m.key, size);
        if (size > m.state.size) await place(ctx, region, s, m.key, size, m);
      }),
    };
    for (const name of [
      abi.REGION_SIZE,
      abi.REGION_GET_F64,
      abi.REGION_SET_F64,
      abi.REGION_GET_F32,
      abi.REGION_SET_F32,
      abi.REGION_GET_I32,
      abi.REGION_SET_I32,
      abi.REGION_GET_U8,
      abi.REGION_SET_U8,
      abi.REGION_READ_INTO,
      abi.REGION_WRITE_FROM,
      abi.REGION_ATOMIC_ADD_I32,
      abi.REGION_COMPARE_EXCHANGE_I32,
    ]) {
      imports[name] = accessor(name);
    }
    return imports;
  },
});
