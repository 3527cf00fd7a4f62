/**
 * Main thread. Calls this host makes: run here when it has room and the function (placement.ts),
 * else added to the work stream — the shared one, or a host's own for the call's state key —
 * with a reply awaited on this host's reply stream until the call's deadline. Also runs a call
 * on this host's pool for the consumer (after fetching its code from the registry).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ErrorCode, makeError, toWire, type NuvolaError } from '../runtime/errors.js';
import { Sender } from './batching.js';
import { batchOf, decode, encode, fieldsOf, unpackBatch, type Outcome, type StreamEntry } from './codec.js';
import { sleep, unavailable, type ClusterContext } from './context.js';
import type { Idempotency } from './idempotency.js';
import type { Membership } from './membership.js';
import type { Placement } from './placement.js';
import type { Registry } from './registry.js';

interface Pending {
  /** Gets the reply's record (see {@link encode}). */
  resolve: (record: Buffer) => void;
  timer: NodeJS.Timeout;
}

export class Calls {
  /** Calls sent to the work streams that wait for their reply, by call id. */
  private readonly pending = new Map<string, Pending>();
  /** Blocking reads of this host's reply streams (one per partition: on a Redis Cluster they are on different masters). */
  private readonly replyReaders: Redis[] = [];
  /** Call entries on their way to the work streams, batched (see batching.ts). */
  private readonly sender: Sender;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly registry: Registry,
    private readonly placement: Placement,
    private readonly idempotency: Idempotency,
    private readonly membership: Membership,
  ) {
    this.sender = new Sender(ctx);
  }

  /**
   * Runs `name` somewhere in the cluster: here when the function is known here (or in the
   * registry) and this host has room, else through the work stream; with `stateKey`, on the
   * host {@link Placement.placeOf} picks. With `idempotencyKey`, a key that completed before
   * answers with its recorded result. `nested`: see {@link Placement.runsHere}.
   */
  async invoke(
    name: string,
    input: Uint8Array,
    timeoutMs: number | undefined,
    idempotencyKey?: string,
    stateKey?: string,
    nested = false,
  ): Promise<Outcome> {
    const { ctx, placement } = this;
    // Undefined: the timeout the function was registered with (from the registry).
    const deadline = Date.now() + (timeoutMs ?? (await this.registry.timeoutOf(name)));
    if (
      placement.runsHere(stateKey, nested) &&
      (ctx.host.hashOf(name) !== undefined || (await this.registry.known(name))) &&
      // Looked up in the registry meanwhile: other calls may have taken the room.
      placement.runsHere(stateKey, nested)
    ) {
      return idempotencyKey === undefined
        ? ctx.track(this.runHere(name, input, deadline))
        : ctx.track(this.idempotency.keyed(idempotencyKey, deadline, name, input, () => this.runHere(name, input, deadline)));
    }
    const place = stateKey === undefined ? undefined : placement.placeOf(stateKey);
    return this.send(name, input, deadline, idempotencyKey, place === ctx.hostId ? undefined : place);
  }

  /**
   * Sends a call through the work stream (or to the own work stream of `target`) and waits
   * for its reply (or its deadline).
   */
  private async send(
    name: string,
    input: Uint8Array,
    deadline: number,
    idempotencyKey: string | undefined,
    target: string | undefined,
  ): Promise<Outcome> {
    const { ctx } = this;
    if (!ctx.live.some((h) => h.capacity > 0)) {
      // The list is from the last heartbeat: look again before saying no.
      try {
        ctx.live = await this.membership.hosts();
      } catch (err) {
        const cause = (err as NuvolaError).details?.['cause'] ?? (err as Error).message;
        return { error: unavailable(`finding a host for '${name}'`, new Error(String(cause))).toWire() };
      }
    }
    if (!ctx.live.some((h) => h.capacity > 0)) {
      return {
        error: makeError(
          ErrorCode.CLUSTER_UNAVAILABLE,
          `cluster '${ctx.settings.name}': no live host takes calls (every host has capacity 0, or none is alive); start a host`,
          { function: name, cluster: ctx.settings.name },
        ).toWire(),
      };
    }
    // The code this host knows under the name: a host with older code fetches this one.
    const fields: (string | Buffer)[] = ['fn', name, ...this.registry.codeField(name)];
    if (input.byteLength > 0) fields.push('in', Buffer.from(input.buffer, input.byteOffset, input.byteLength));
    if (idempotencyKey !== undefined) fields.push('idem', idempotencyKey);
    return decode(await this.request(name, fields, deadline, target));
  }

  /**
   * Adds a call to the work stream and resolves with its reply's record, or with an error
   * record at the deadline or when Redis is away.
   */
  request(name: string, fields: (string | Buffer)[], deadline: number, target?: string): Promise<Buffer> {
    const { ctx } = this;
    const id = randomUUID();
    const answer = new Promise<Buffer>((resolve) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          const error = makeError(
            ErrorCode.TIMEOUT,
            `'${name}' sent to cluster '${ctx.settings.name}' got no answer within its timeout; with an idempotency key a retry returns the result if it completed`,
            { function: name, cluster: ctx.settings.name, invocation: id },
          );
          resolve(encode({ error: error.toWire() }));
        },
        Math.max(1, deadline - Date.now()),
      );
      this.pending.set(id, { resolve, timer });
    });
    // The partition it goes to (a host's own stream is in partition 0's slot), and so the
    // reply stream it is answered on: in that slot, beside the entry (see ClusterKeys.reply).
    const part = target === undefined ? this.sender.partition() : 0;
    const route = part === 0 ? [] : ['rt', ctx.keys.tags[part]!];
    // Signed as it leaves: alone, or in a batch under one MAC (batching.ts).
    const entry = ['id', id, 'from', ctx.hostId, ...route, 'dl', String(deadline), ...fields];
    // Not awaited: the deadline's timer settles the call even when Redis never answers.
    const failed = (err: unknown): void => {
      const pending = this.pending.get(id);
      if (pending !== undefined) {
        clearTimeout(pending.timer);
        this.pending.delete(id);
        pending.resolve(encode({ error: unavailable(`sending '${name}'`, err).toWire() }));
      }
    };
    // A group part goes in an entry of its own: the parts of a group are meant for different hosts.
    this.sender.send(entry, failed, target ?? part, fields.includes('gid'));
    return answer;
  }

  /** Runs a call on this host's pool (the caller counts it in `inflight`). */
  async runHere(name: string, input: Uint8Array, deadline: number, hash?: string): Promise<Outcome> {
    const { ctx } = this;
    try {
      await this.registry.arrive(name, hash, deadline, `'${name}'`);
    } catch (err) {
      // It never started: an idempotency key's lease is given back, nothing recorded.
      const outcome = { error: toWire(err, ErrorCode.GUEST_TRAP) };
      ctx.unstarted.add(outcome);
      return outcome;
    }
    try {
      const { output, returnCode } = await ctx.host.run(name, input, deadline - Date.now());
      return { output, returnCode, host: ctx.hostId };
    } catch (err) {
      const outcome = { error: toWire(err, ErrorCode.GUEST_TRAP) };
      // Closing: the call was cut short, not answered by the guest; another host may run it.
      // Timed out in its worker's queue: it never started.
      if (outcome.error.code === ErrorCode.CLOSED || outcome.error.details?.['started'] === false) ctx.unstarted.add(outcome);
      return outcome;
    }
  }

  /** The loops that read this host's reply streams, one per partition. */
  replyLoops(): Promise<void>[] {
    return this.ctx.keys.tags.map((tag) => {
      const reader = this.ctx.connect(true);
      this.replyReaders.push(reader);
      return this.replyLoop(reader, this.ctx.keys.reply(this.ctx.hostId, tag));
    });
  }

  /** Reads one of this host's reply streams and settles the waiting calls. */
  private async replyLoop(reader: Redis, stream: string): Promise<void> {
    const { ctx } = this;
    // From the start: a host id's reply stream holds only replies to it (a previous life's are ignored).
    let last = '0-0';
    while (!ctx.closed) {
      let read: [Buffer, StreamEntry[]][] | null;
      try {
        read = (await reader.xreadBuffer('COUNT', 1024, 'BLOCK', 1000, 'STREAMS', stream, last)) as [Buffer, StreamEntry[]][] | null;
      } catch (err) {
        if (ctx.closed) return;
        ctx.warn(`cluster: reading replies failed (${(err as Error).message}); retrying`);
        await sleep(200);
        continue;
      }
      for (const [entryId, entry] of read?.[0]?.[1] ?? []) {
        last = entryId.toString();
        // A batch of replies under one MAC (batching.ts), or one reply with its own; what fails
        // is dropped: the caller waits for the real one (or its deadline).
        const batch = batchOf(entry);
        let replies: Buffer[][] | undefined = [entry];
        if (batch !== undefined) {
          replies = ctx.entries.verifiedBatch('replies', batch.packed, batch.mac, `reply batch ${last}`) ? unpackBatch(batch.packed) : [];
          if (replies === undefined) ctx.reject('replies', `reply batch ${last} (not a framed list)`);
        }
        for (const raw of replies ?? []) {
          const f = fieldsOf(raw);
          const id = f.get('id')?.toString() ?? '';
          const record = f.get('r');
          const pending = this.pending.get(id);
          if (pending === undefined) continue; // answered twice (a call run again after its host was thought dead), or timed out
          if (batch === undefined && !ctx.entries.verifiedReply(id, record, f.get('m'))) continue;
          if (record === undefined) continue; // (in a verified batch: never)
          this.pending.delete(id);
          clearTimeout(pending.timer);
          pending.resolve(record);
        }
      }
    }
  }

  /** Closing: fails every call waiting for a reply, and stops reading replies. */
  close(): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.resolve(encode({ error: makeError(ErrorCode.CLOSED, 'the runtime is closed', { invocation: id }).toWire() }));
    }
    this.pending.clear();
    for (const reader of this.replyReaders) reader.disconnect();
  }
}
