/**
 * Main thread. What a host writes to Redis on the per-call path, batched both ways: calls
 * bound for the same stream go out as one entry (`XADD` of a batch, see codec.ts), replies to
 * one caller as one entry of its reply stream, and acknowledgements of a stream's entries as
 * one `XACK` and one `XDEL`. Nothing waits for a batch to fill: a write goes out at the end of
 * the event-loop turn it was made in when nothing is on its way to that stream; while one is,
 * the next ones gather and go out together as soon as it lands — so at low load every call
 * goes alone and at once, and under load a batch holds what came meanwhile.
 */
import { packBatch } from './codec.js';
import type { ClusterContext } from './context.js';
import { GROUP } from './keys.js';

/** At most this many calls (or replies) in one entry; more go out as several entries at once. */
export const MAX_BATCH = 64;
/** At most about this many bytes in one entry. */
const MAX_BATCH_BYTES = 1 << 20;

/** A call entry's fields (signed as it leaves), and what to do when Redis refused it. */
interface Queued {
  fields: (string | Buffer)[];
  failed: (err: unknown) => void;
  /** In an entry of its own. */
  alone: boolean;
}

/** Entries in groups of at most {@link MAX_BATCH} and about {@link MAX_BATCH_BYTES}. */
function chunks<T extends { fields: (string | Buffer)[]; alone?: boolean }>(items: T[], most: number): T[][] {
  const out: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (item.alone === true) {
      out.push([item]);
      continue;
    }
    const size = item.fields.reduce((n, f) => n + f.length, 0);
    if (chunk.length > 0 && (chunk.length >= most || bytes + size > MAX_BATCH_BYTES)) {
      out.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) out.push(chunk);
  return out;
}

/**
 * One entry's fields for a batch of calls or replies (their fields unsigned): signed alone
 * when it is one, else the batch under one MAC (entries.ts).
 */
function entryOf(ctx: ClusterContext, kind: 'calls' | 'replies', batch: { fields: (string | Buffer)[] }[]): (string | Buffer)[] {
  if (batch.length > 1) return ctx.entries.batch(kind, packBatch(batch.map((q) => q.fields)));
  const fields = batch[0]!.fields;
  // A reply's fields: id, <call id>, r, <record>.
  return kind === 'calls' ? ctx.entries.call(fields) : [...fields, 'm', ctx.entries.reply(String(fields[1]), fields[3] as Buffer)];
}

/**
 * Calls on their way to the work streams. Calls for any host go to one of the shared
 * partitions: the one filling now (see {@link partition}) — a batch fills while the others'
 * are sent. Calls for one host's own stream (their state key's home) go through `ROUTE`, one
 * entry each (that host runs them as room frees; a batch would run at once), and so do group
 * parts (each part is meant for another host); they still leave together, pipelined.
 */
export class Sender {
  /** Calls for any host, not sent yet, by partition. */
  private readonly shared = new Map<number, Queued[]>();
  /** Partitions with an `XADD` on its way. */
  private readonly busy = new Set<number>();
  /** The partition calls go to now: the next one once its batch leaves. */
  private filling = 0;
  /** Calls for one host's own stream, by host, not sent yet; and the hosts with a send on its way. */
  private readonly targeted = new Map<string, Queued[]>();
  private readonly busyTargets = new Set<string>();
  private scheduled = false;

  constructor(private readonly ctx: ClusterContext) {}

  /** The partition the next call for any host goes to (its entry names that partition's reply stream). */
  partition(): number {
    return this.filling % this.ctx.partitions;
  }

  /**
   * Sends a call entry (signed as it leaves, alone or in a batch) to shared work partition `to`, or to the own stream of host
   * `to`; `alone`: in an entry of its own. `failed` runs when Redis refused it (the caller's
   * deadline bounds the wait otherwise).
   */
  send(fields: (string | Buffer)[], failed: (err: unknown) => void, to: number | string, alone = false): void {
    const queues: Map<number | string, Queued[]> = typeof to === 'number' ? this.shared : this.targeted;
    const queue = queues.get(to);
    const q = { fields, failed, alone: alone || typeof to === 'string' };
    if (queue === undefined) queues.set(to, [q]);
    else queue.push(q);
    this.schedule();
  }

  /** Flushes at the end of this event-loop turn (once, however many calls came in it). */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const { ctx } = this;
    for (const [p, batch] of this.shared) {
      if (this.busy.has(p)) continue;
      this.shared.delete(p);
      this.busy.add(p);
      // The next calls fill the next partition while this one's batch is on its way.
      if (p === this.partition()) this.filling = p + 1;
      const stream = ctx.keys.parts[p]!;
      this.write(
        batch,
        (fields) => ctx.redis.xadd(stream, '*', ...fields),
        () => this.busy.delete(p),
      );
    }
    for (const [target, batch] of this.targeted) {
      if (this.busyTargets.has(target)) continue;
      this.targeted.delete(target);
      this.busyTargets.add(target);
      const { alive, work } = ctx.keys;
      this.write(
        batch,
        (fields) => ctx.redis.nuvolaRoute(alive, ctx.keys.queue(target), work, target, ...fields),
        () => this.busyTargets.delete(target),
      );
    }
  }

  /**
   * Writes a batch as one entry (or a few: at most {@link MAX_BATCH} calls, and no more than
   * the roomiest live host takes at once, so a batch never has to be split by its taker when
   * one host has room for it); `idle` once every one landed or failed.
   */
  private write(batch: Queued[], add: (fields: (string | Buffer)[]) => Promise<unknown>, idle: () => void): void {
    let most = 1;
    for (const h of this.ctx.live) most = Math.max(most, h.capacity);
    const sent = chunks(batch, Math.min(MAX_BATCH, most)).map((chunk) =>
      add(entryOf(this.ctx, 'calls', chunk)).catch((err: unknown) => {
        for (const q of chunk) q.failed(err);
      }),
    );
    void Promise.all(sent).then(() => {
      idle();
      if (this.shared.size > 0 || this.targeted.size > 0) this.schedule();
    });
  }
}

/** A reply on its way: its caller's reply stream and the signed fields; `landed` with whether Redis took it. */
interface Reply {
  stream: string;
  fields: (string | Buffer)[];
  landed: (err?: unknown) => void;
  /** An entry to acknowledge with it (in the same transaction: the last reply of the entry's calls). */
  ack?: { stream: string; id: Buffer };
}

/** The hash tag of a key (keys.ts: every key has one). */
const tagOf = (key: string): string => /\{([^}]*)\}/.exec(key)?.[1] ?? key;

/**
 * Replies and acknowledgements on their way from the host that ran the calls. The replies to
 * one caller gathered in a turn go as one entry; acknowledgements as one `XACK` and one
 * `XDEL` per work stream. What shares a slot goes in one `MULTI`, replies first, so an entry
 * whose last reply goes out is acknowledged with it, atomically: a host that dies before
 * leaves it pending (another host claims it), after it the caller has every answer. (An
 * entry in another slot than its caller's reply stream — partitions on a Redis Cluster — is
 * acknowledged once the reply landed, by {@link ack}.) A reply stream's expiry is renewed at
 * most every few seconds, not with every reply. One flush at a time.
 */
export class Answers {
  private replies: Reply[] = [];
  /** Entries to acknowledge and delete, by stream. */
  private acks = new Map<string, Buffer[]>();
  private sending = false;
  private scheduled = false;
  /** Reply streams by when this host last renewed their expiry. */
  private readonly renewed = new Map<string, number>();
  /** Whether every key may go in one transaction (a single Redis, not a Redis Cluster). */
  private readonly oneSlot: boolean;

  constructor(private readonly ctx: ClusterContext) {
    this.oneSlot = typeof (ctx.redis as unknown as { nodes?: unknown }).nodes !== 'function';
  }

  /**
   * Sends the reply `record` to call `id` on `stream` (signed as it leaves, alone or in a
   * batch), with `ack` the entry to acknowledge once it landed (atomically with it when they
   * share a slot); resolves once it landed (rejects with Redis's error).
   */
  reply(stream: string, id: string, record: Buffer, ack?: { stream: string; id: Buffer }): Promise<void> {
    const fields = ['id', id, 'r', record];
    return new Promise<void>((resolve, reject) => {
      const landed = (err?: unknown): void => {
        if (err !== undefined) return reject(err as Error);
        // Not in the reply's slot: acknowledged now that the reply is there.
        if (ack !== undefined && !this.together(stream, ack.stream)) this.ack(ack.stream, ack.id);
        resolve();
      };
      this.replies.push({ stream, fields, landed, ...(ack !== undefined && this.together(stream, ack.stream) ? { ack } : {}) });
      this.schedule();
    });
  }

  /** Acknowledges and deletes an entry (best effort: one left pending is read again and acknowledged then). */
  ack(stream: string, entryId: Buffer): void {
    const ids = this.acks.get(stream);
    if (ids === undefined) this.acks.set(stream, [entryId]);
    else ids.push(entryId);
    this.schedule();
  }

  /** Whether two keys may go in one transaction. */
  private together(a: string, b: string): boolean {
    return this.oneSlot || tagOf(a) === tagOf(b);
  }

  private schedule(): void {
    if (this.scheduled || this.sending) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const { ctx } = this;
    if (this.replies.length === 0 && this.acks.size === 0) return;
    this.sending = true;
    const replies = this.replies;
    const acks = this.acks;
    this.replies = [];
    this.acks = new Map();
    for (const r of replies) {
      if (r.ack === undefined) continue;
      const ids = acks.get(r.ack.stream);
      if (ids === undefined) acks.set(r.ack.stream, [r.ack.id]);
      else ids.push(r.ack.id);
    }
    // The commands by slot (one group on a single Redis); each reply batch with what settles it.
    const groups = new Map<string, { args: (string | Buffer | number)[][]; settle: ((err?: unknown) => void)[] }>();
    const group = (key: string): { args: (string | Buffer | number)[][]; settle: ((err?: unknown) => void)[] } => {
      const slot = this.oneSlot ? '' : tagOf(key);
      let g = groups.get(slot);
      if (g === undefined) groups.set(slot, (g = { args: [], settle: [] }));
      return g;
    };
    const byStream = new Map<string, Reply[]>();
    for (const r of replies) {
      const list = byStream.get(r.stream);
      if (list === undefined) byStream.set(r.stream, [r]);
      else list.push(r);
    }
    const ttl = Math.max(60_000, 10 * ctx.settings.hostTimeoutMs);
    const now = Date.now();
    for (const [stream, list] of byStream) {
      const g = group(stream);
      for (const chunk of chunks(list, MAX_BATCH)) {
        g.args.push(['xadd', stream, 'MAXLEN', '~', '10000', '*', ...entryOf(ctx, 'replies', chunk)]);
        g.settle.push((err) => chunk.forEach((r) => r.landed(err)));
      }
      // Expires a while after the last reply (a caller gone for good leaves nothing behind).
      if (now - (this.renewed.get(stream) ?? 0) > ttl / 10) {
        this.renewed.set(stream, now);
        if (this.renewed.size > 4096) this.renewed.delete(this.renewed.keys().next().value!);
        g.args.push(['pexpire', stream, ttl]);
        g.settle.push((err) => err !== undefined && this.renewed.delete(stream));
      }
    }
    for (const [stream, ids] of acks) {
      const g = group(stream);
      g.args.push(['xack', stream, GROUP, ...ids], ['xdel', stream, ...ids]);
      g.settle.push(
        () => undefined,
        () => undefined,
      );
    }
    await Promise.all([...groups.values()].map((g) => this.send(g.args, g.settle)));
    this.sending = false;
    if (this.replies.length > 0 || this.acks.size > 0) this.schedule();
  }

  /** Sends commands of one slot (in one transaction when several) and settles each with its outcome. */
  private async send(args: (string | Buffer | number)[][], settle: ((err?: unknown) => void)[]): Promise<void> {
    const { redis } = this.ctx;
    try {
      if (args.length === 1) {
        const [command, ...rest] = args[0]!;
        await redis.call(command as string, ...rest);
        settle[0]!();
        return;
      }
      const results = (await redis.multi(args).exec()) as [Error | null, unknown][] | null;
      if (results === null) throw new Error('the transaction was aborted');
      results.forEach(([err], i) => settle[i]!(err ?? undefined));
    } catch (err) {
      for (const s of settle) s(err);
    }
  }
}

/** One keyed call's begin or record, waiting for the turn's script. */
interface Booked<T> {
  keys: [string, string];
  args: (string | Buffer)[];
  settle: (result: T | undefined, err?: unknown) => void;
}

/**
 * The idempotency bookkeeping of keyed calls (idempotency.ts), batched: the begins (and the
 * records) asked for in one event-loop turn go to Redis as one script (`BEGIN_MANY`,
 * `RECORD_MANY`), one at a time on their way — as the calls of a batch start and end together.
 * A lone one goes at the end of its turn. Every key is under `{<name>}`: one slot.
 */
export class Bookkeeping {
  private readonly begins = new Batch<[number, Buffer?]>((keys, args) =>
    this.ctx.redis.nuvolaBeginManyBuffer(keys.length, ...keys, this.ctx.settings.hostTimeoutMs, ...args),
  );
  private readonly records = new Batch<Buffer>((keys, args) =>
    this.ctx.redis.nuvolaRecordManyBuffer(keys.length, ...keys, this.ctx.settings.idempotencyTtlMs, ...args),
  );

  constructor(private readonly ctx: ClusterContext) {}

  /** Begins one keyed call (keys.ts `BEGIN_MANY`): {1, record}, {2, holder} or {0}. */
  begin(done: string, running: string, holder: string): Promise<[number, Buffer?]> {
    return this.begins.add([done, running], [holder]);
  }

  /** Records one keyed call's result (keys.ts `RECORD_MANY`): the record that stands. */
  record(done: string, running: string, holder: string, record: Buffer): Promise<Buffer> {
    return this.records.add([done, running], [holder, record]);
  }
}

/** Requests of one script gathered per turn, one script call on its way at a time. */
class Batch<T> {
  private queued: Booked<T>[] = [];
  private sending = false;
  private scheduled = false;

  constructor(private readonly call: (keys: string[], args: (string | Buffer)[]) => Promise<T[]>) {}

  add(keys: [string, string], args: (string | Buffer)[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ keys, args, settle: (result, err) => (err === undefined ? resolve(result!) : reject(err as Error)) });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.sending) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.queued.length === 0) return;
    this.sending = true;
    const batch = this.queued.splice(0, MAX_BATCH);
    try {
      const results = await this.call(
        batch.flatMap((b) => b.keys),
        batch.flatMap((b) => b.args),
      );
      batch.forEach((b, i) => b.settle(results[i]));
    } catch (err) {
      for (const b of batch) b.settle(undefined, err);
    }
    this.sending = false;
    if (this.queued.length > 0) this.schedule();
  }
}
