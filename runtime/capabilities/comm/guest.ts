/**
 * Worker thread. Host imports of module `nuvola:comm`: messages between the ranks of a group.
 * `send` copies the bytes once into a SharedArrayBuffer that travels by reference (no
 * serialisation) to the receiver's mailbox — on this worker directly, else over the direct
 * channel to its worker, else through the main thread (the worker's `CommDeps`, worker/wiring.ts);
 * `recv` takes it from the mailbox or suspends the rank until it arrives. Outside a group an
 * invocation is rank 0 of 1. Bytes sent to a rank and not yet received are counted per rank
 * in the group's shared `queued` words and capped by `maxQueuedMessageBytes`.
 */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError, LimitError } from '../../errors.js';
import type { GroupRef } from '../../protocol.js';
import { guestBytes, guestWritable, type ContextRef, type GuestContext } from '../context.js';
import { guestCapability, type Slot } from '../capability.js';

/** What the worker gives comm: its mailboxes and channels, its message buffers, the limits. */
export interface CommDeps {
  /** Delivers a message to rank `to` of `group`: here if that rank runs on this worker, else through the main thread. */
  send(group: GroupRef, to: number, data: SharedArrayBuffer): void;
  /** The next message for rank `rank` of `group` from `from`: now, or when it arrives. */
  receive(group: number, rank: number, from: number): Uint8Array | Promise<Uint8Array>;
  /** Largest message, in bytes. */
  maxMessageBytes: number;
  /** Most bytes queued for one rank (sent to it on this host, not yet received). */
  maxQueuedMessageBytes: number;
  /** A buffer of `size` bytes for a message this worker sends (one of its spares, see worker/mailbox.ts). */
  buffer(size: number): SharedArrayBuffer;
  /** A message received and copied out: its buffer may serve a later send. */
  recycle(message: Uint8Array): void;
}

const EMPTY = new Uint8Array(0);

function peer(ctx: GuestContext, other: number, what: string): { group: GroupRef; other: number } {
  const group = ctx.group;
  const fail = (why: string): never => {
    throw new GuestError(ErrorCode.COMM_RANK, `function '${ctx.fn}' (rank ${group?.rank ?? 0} of ${group?.size ?? 1}) ${what}: ${why}`, {
      function: ctx.fn,
      rank: group?.rank ?? 0,
      peer: other,
    });
  };
  if (group === undefined) return fail('it is not running in a group (start one with invokeGroup)');
  if (!Number.isInteger(other) || other < 0 || other >= group.size) return fail(`rank ${other} does not exist`);
  if (other === group.rank) return fail('a rank cannot message itself');
  return { group, other };
}

/**
 * Counts `bytes` into rank `to`'s queue, or fails the send with E_QUEUE_FULL when that would go
 * over `maxQueuedMessageBytes`. A rank with nothing queued takes any message (up to
 * maxMessageBytes), so the cap never makes a message unsendable.
 */
function queue(ctx: GuestContext, group: GroupRef, to: number, bytes: number, cap: number): void {
  const queued = new Int32Array(group.queued);
  const before = Atomics.add(queued, to, bytes);
  if (before === 0 || before + bytes <= cap) return;
  Atomics.sub(queued, to, bytes);
  throw new LimitError(
    ErrorCode.QUEUE_FULL,
    `function '${ctx.fn}' (rank ${group.rank}) sent ${bytes} bytes to rank ${to}, which has ${before} bytes it has not received yet; ` +
      `maxQueuedMessageBytes=${cap} — have rank ${to} receive before sending more, or raise maxQueuedMessageBytes in createRuntime()`,
    { function: ctx.fn, rank: group.rank, peer: to, bytes, queuedBytes: before, maxQueuedMessageBytes: cap },
  );
}

/** An instance's slot: what the last `comm.recv` staged for `comm.take`. */
interface CommSlot {
  received: Uint8Array;
}

export default guestCapability<CommSlot, CommDeps>({
  newSlot: () => ({ received: EMPTY }),
  endCall(_ctx, state) {
    state.received = EMPTY;
  },
  bind(ref: ContextRef, slot: Slot<CommSlot>, deps) {
    const channel = (): CommDeps => {
      if (deps === undefined) throw new Error('group messages are not available in this thread');
      return deps;
    };
    return {
      [abi.COMM_RANK]: (): number => ref.ctx.group?.rank ?? 0,
      [abi.COMM_SIZE]: (): number => ref.ctx.group?.size ?? 1,
      [abi.COMM_SEND]: (to: number, ptr: number, len: number): void => {
        const ctx = ref.ctx;
        const { group } = peer(ctx, to, `send to rank ${to}`);
        const bytes = guestBytes(ctx, ptr, len, 'comm.send');
        const max = channel().maxMessageBytes;
        if (bytes.byteLength > max) {
          throw new LimitError(
            ErrorCode.MESSAGE_TOO_LARGE,
            `function '${ctx.fn}' sent ${bytes.byteLength} bytes to rank ${to}, above maxMessageBytes=${max}; raise it in createRuntime() or send parts`,
            { function: ctx.fn, bytes: bytes.byteLength, maxMessageBytes: max },
          );
        }
        // A rank on another host (workers[to] < 0) is counted by its own host when the message arrives.
        if (group.workers[to]! >= 0) queue(ctx, group, to, bytes.byteLength, channel().maxQueuedMessageBytes);
        const shared = channel().buffer(bytes.byteLength);
        new Uint8Array(shared).set(bytes);
        channel().send(group, to, shared);
      },
      [abi.COMM_RECV]: (from: number): number | Promise<number> => {
        const ctx = ref.ctx;
        const { group } = peer(ctx, from, `recv from rank ${from}`);
        const stage = (message: Uint8Array): number => {
          Atomics.sub(new Int32Array(group.queued), group.rank, message.byteLength);
          slot(ctx).received = message;
          return message.byteLength;
        };
        const message = channel().receive(group.id, group.rank, from);
        if (!(message instanceof Promise)) return stage(message);
        // A cancelled call stops waiting at once (the guest then traps on resumption).
        return new Promise<number>((resolve, reject) => {
          const wake = (): void => {
            ctx.cancelWaiters.delete(wake);
            resolve(0);
          };
          ctx.cancelWaiters.add(wake);
          message.then(
            (m) => {
              ctx.cancelWaiters.delete(wake);
              resolve(stage(m));
            },
            (err: unknown) => {
              ctx.cancelWaiters.delete(wake);
              reject(err as Error);
            },
          );
        });
      },
      [abi.COMM_TAKE]: (ptr: number, len: number): void => {
        const ctx = ref.ctx;
        const state = slot(ctx);
        const message = state.received;
        const n = Math.min(len >>> 0, message.byteLength);
        guestWritable(ctx, ptr, n, 'comm.take').set(message.subarray(0, n));
        state.received = EMPTY;
        channel().recycle(message);
      },
    };
  },
});
