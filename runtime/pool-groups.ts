/**
 * Main thread. Groups (`invokeGroup`): all ranks admitted and dispatched at once, messages
 * between ranks routed (through this thread when no direct channel serves, to another host for
 * a group spread over hosts), and a group ended when a rank fails.
 */
import { ErrorCode, makeError, type NuvolaError } from './errors.js';
import { Control, wallClock } from './protocol.js';
import type { Admission, AdmissionHandlers } from './admission.js';
import type { CallLink, Group, GroupPart, Pending, PoolCore, RawResult, Slot } from './pool-types.js';

/** In a group's `workers`: the rank runs on another host (cluster mode). */
const REMOTE_RANK = -2;

/** What groups need of the rest of the pool. */
export interface GroupHost extends PoolCore {
  readonly admissions: ReadonlyMap<string, Admission>;
  /** The cap on a rank's bytes sent and not yet received (`maxQueuedMessageBytes`). */
  readonly maxQueuedMessageBytes: number;
  invoke(fn: string, input: Uint8Array, timeoutMs: number, link?: CallLink): Promise<RawResult>;
  admit(admission: Admission, n: number, deadline: number, on: AdmissionHandlers): void;
  pick(fn?: string): Slot | undefined;
  waitedError(fn: string, timeoutMs: number, limit: number, what?: string): NuvolaError;
}

/** The groups running now. */
export class Groups {
  readonly byId = new Map<number, Group>();
  private nextId = 1;

  constructor(private readonly host: GroupHost) {}

  /**
   * Starts `size` invocations of `fn` as ranks 0..size-1 of one group and resolves with their
   * results in rank order. They are dispatched together (a rank waiting for a message
   * suspends, so all ranks make progress on any number of workers). The first rank that fails
   * ends the group: ranks waiting in a receive fail with E_COMM_ABORTED, and the group rejects
   * with the first failure (its `details.rank` says which).
   */
  async run(
    fn: string,
    size: number,
    input: Uint8Array,
    timeoutMs: number,
    placement: 'spread' | 'pack' = 'spread',
    part?: GroupPart,
  ): Promise<RawResult[]> {
    const ranks = part?.ranks ?? Array.from({ length: size }, (_, rank) => rank);
    // Every rank of the group at once, or none: ranks admitted one by one could each wait on
    // a rank that waits for a slot another group's rank holds.
    const admission = this.host.admissions.get(fn);
    if (admission !== undefined) {
      if (ranks.length > admission.limit) {
        throw makeError(
          ErrorCode.INSTANCE_LIMIT,
          `a group of ${ranks.length} ranks of '${fn}' needs ${ranks.length} calls at once, above its maxConcurrency=${admission.limit}; use fewer ranks or raise maxConcurrency in register()`,
          { function: fn, size: ranks.length, maxConcurrency: admission.limit },
        );
      }
      await new Promise<void>((resolve, reject) =>
        this.host.admit(admission, ranks.length, wallClock() + timeoutMs, {
          grant: resolve,
          expire: (error) => reject(error ?? this.host.waitedError(fn, timeoutMs, admission.limit, 'group')),
        }),
      );
    }
    const id = this.nextId++;
    const queued = new SharedArrayBuffer(4 * size);
    const group: Group = {
      slots: new Array<Slot | undefined>(size).fill(undefined),
      pendings: new Array<Pending | undefined>(size).fill(undefined),
      aborted: false,
      packed: placement === 'pack' ? this.host.pick(fn) : undefined,
      queued: new Int32Array(queued),
    };
    if (part !== undefined) {
      group.part = part;
      part.id = id;
    }
    this.byId.set(id, group);
    let first: NuvolaError | undefined;
    // A rank on another host is marked REMOTE_RANK: its worker sends its messages here.
    const workers = new Array<number>(size).fill(part === undefined ? -1 : REMOTE_RANK);
    const calls = ranks.map((rank) =>
      this.host
        .invoke(fn, input, timeoutMs, {
          group: { id, rank, size, workers, queued },
          ...(admission ? { admitted: admission } : {}),
        })
        .catch((err: NuvolaError) => {
          if (first === undefined) {
            first = err;
            err.details['rank'] ??= rank;
            if (!group.aborted) group.part?.aborted(err);
            this.abort(id, group, err);
          }
          throw err;
        }),
    );
    try {
      const outcomes = await Promise.allSettled(calls);
      if (first !== undefined) throw first;
      return outcomes.map((o) => (o as PromiseFulfilledResult<RawResult>).value);
    } finally {
      this.byId.delete(id);
      for (const slot of new Set(group.slots))
        if (slot !== undefined && this.host.slots[slot.index] === slot) this.host.post(slot, { type: 'commEnd', group: id });
    }
  }

  /** A message from a rank on another host to rank `to` of the group part `id`. */
  deliver(id: number, from: number, to: number, data: SharedArrayBuffer): void {
    const group = this.byId.get(id);
    const target = group?.slots[to];
    if (group === undefined || group.aborted || target === undefined || target.dead) return;
    // Counted here, where the receiving rank lowers it; a sender elsewhere cannot be refused,
    // so a full queue ends the group instead.
    const before = Atomics.add(group.queued, to, data.byteLength);
    const cap = this.host.maxQueuedMessageBytes;
    if (before > 0 && before + data.byteLength > cap) {
      const fn = group.pendings[to]?.request.fn ?? '?';
      const error = makeError(
        ErrorCode.QUEUE_FULL,
        `rank ${from} of a group of '${fn}' on another host sent ${data.byteLength} bytes to rank ${to}, which has ${before} bytes it has not received yet; maxQueuedMessageBytes=${cap} — receive sooner or raise maxQueuedMessageBytes in createRuntime()`,
        { function: fn, rank: from, peer: to, bytes: data.byteLength, queuedBytes: before, maxQueuedMessageBytes: cap },
      );
      group.part?.aborted(error);
      this.abort(id, group, error);
      return;
    }
    this.host.post(target, { type: 'comm', group: id, from, to, data });
  }

  /** A rank of the group part `id` failed on another host: the ranks here stop too. */
  abortPart(id: number, error: NuvolaError): void {
    const group = this.byId.get(id);
    if (group !== undefined && !group.aborted) this.abort(id, group, error);
  }

  /**
   * Ends a group after a rank failed: receives fail with E_COMM_ABORTED on every worker, and
   * the ranks still running are failed now (and cancelled where suspended), so the group's
   * caller does not wait for its slowest rank.
   */
  abort(id: number, group: Group, error: NuvolaError): void {
    group.aborted = true;
    for (const slot of new Set(group.slots)) {
      if (slot !== undefined && this.host.slots[slot.index] === slot)
        this.host.post(slot, { type: 'commAbort', group: id, error: error.toWire() });
    }
    group.pendings.forEach((pending, rank) => {
      if (pending === undefined || pending.settled) return;
      // A rank on the CPU right now is left to fail at its next receive (or to finish): failing
      // it here would make its worker look stuck, and stopping a worker loses other calls.
      const slot = group.slots[rank];
      if (slot !== undefined && Atomics.load(slot.control, Control.RUNNING) === pending.request.id) return;
      const aborted = makeError(
        ErrorCode.COMM_ABORTED,
        `rank ${rank} stopped: another rank of its group failed (${error.code}: ${error.message})`,
        {
          function: pending.request.fn,
          rank,
          cause: error.toWire(),
        },
      );
      this.host.fail(pending, aborted);
      if (slot !== undefined && this.host.slots[slot.index] === slot)
        this.host.post(slot, { type: 'cancel', id: pending.request.id, error: aborted.toWire() });
    });
  }

  /** A rank's message that came to this thread: to another host, or to the rank's worker. Routed by reference: the SharedArrayBuffer is shared, not copied. */
  route(id: number, from: number, to: number, data: SharedArrayBuffer): void {
    const group = this.byId.get(id);
    if (group?.part !== undefined && !group.aborted && !group.part.ranks.includes(to)) {
      group.part.send(from, to, data);
      return;
    }
    const target = group?.slots[to];
    if (group === undefined || group.aborted || target === undefined || target.dead) return;
    this.host.post(target, { type: 'comm', group: id, from, to, data });
  }

  /** A rank's invocation, once made: the group fails its ranks through it. */
  enlist(pending: Pending): void {
    const ref = pending.request.group;
    if (ref === undefined) return;
    const group = this.byId.get(ref.id);
    if (group !== undefined) group.pendings[ref.rank] = pending;
  }

  /** Bytes of group messages sent and not yet received, over all running groups. */
  queuedBytes(): number {
    let bytes = 0;
    for (const group of this.byId.values()) for (const n of group.queued) bytes += n;
    return bytes;
  }
}
