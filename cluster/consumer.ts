/**
 * Main thread. Calls this host takes from the work streams — the shared one and its own — as
 * long as it has room: each entry verified, run (a plain call, a keyed one, or a group part),
 * and answered on its caller's reply stream by one script that also acknowledges and deletes
 * the entry. On start and after each reconnection it first takes the calls still pending
 * under its id. Entries it has no room for go back to the shared stream (its own stream's
 * wait here for room).
 */
import type { Redis } from 'ioredis';
import { ErrorCode } from '../runtime/errors.js';
import type { Calls } from './calls.js';
import { encode, fieldsOf, type Outcome, type StreamEntry } from './codec.js';
import { backoff, sleep, type ClusterContext } from './context.js';
import type { Groups } from './groups.js';
import type { Idempotency } from './idempotency.js';
import { GROUP } from './keys.js';

export class Consumer {
  /** Blocking reads of the shared work stream. */
  private readonly workReader: Redis;
  /** Blocking reads of this host's own work stream. */
  private readonly queueReader: Redis;
  /** Connections each work stream reader made so far (see workLoop). */
  private readonly connections = new Map<Redis, number>();
  /** Calls sent to this host's own stream that wait here for room (see ClusterContext.release). */
  private readonly waiting: [string, StreamEntry][] = [];
  /** The work loops waiting for room. */
  private readonly slotFreed = new Set<() => void>();
  /**
   * Calls taken from a work stream and running here, as `<stream> <entry id>`, each settling
   * when it is done (close() gives them a moment to answer).
   */
  readonly executing = new Map<string, Promise<void>>();
  /** The calls this host is done with (answered or moved on), the last 4096, as in `executing`. */
  private readonly answered = new Set<string>();

  constructor(
    private readonly ctx: ClusterContext,
    private readonly calls: Calls,
    private readonly idempotency: Idempotency,
    private readonly groups: Groups,
  ) {
    this.workReader = ctx.connect(true);
    this.queueReader = ctx.connect(true);
    for (const reader of [this.workReader, this.queueReader]) {
      reader.on('ready', () => this.connections.set(reader, (this.connections.get(reader) ?? 0) + 1));
    }
    ctx.onRelease = () => {
      // Calls sent to this host for their state key wait here for room, not back in the stream.
      while (this.waiting.length > 0 && ctx.inflight < ctx.settings.capacity) {
        const [stream, entry] = this.waiting.shift()!;
        void this.execute(stream, entry);
      }
      this.wake();
    };
  }

  /** The consumer group on the shared work stream and on this host's own (from their start). */
  async createGroups(): Promise<void> {
    const { ctx } = this;
    for (const stream of [ctx.keys.work, ctx.keys.queue(ctx.hostId)]) {
      await ctx.redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
        if (!err.message.includes('BUSYGROUP')) throw err;
      });
    }
  }

  /** The loops that take calls from the shared work stream and from this host's own. */
  loops(): Promise<void>[] {
    return [this.workLoop(this.workReader, this.ctx.keys.work), this.workLoop(this.queueReader, this.ctx.keys.queue(this.ctx.hostId))];
  }

  /** Wakes the work loops waiting for room. */
  private wake(): void {
    for (const freed of this.slotFreed) freed();
    this.slotFreed.clear();
  }

  /** Closing: wakes the work loops (they end) and stops their reads. */
  close(): void {
    this.wake();
    this.workReader.disconnect();
    this.queueReader.disconnect();
  }

  /**
   * Takes calls from one work stream (the shared one, or this host's own) while this host has
   * room. One loop and one connection per stream: a read blocking on both streams at once
   * cost a seventh of the throughput through the shared one (`nuvola bench cluster`).
   */
  private async workLoop(reader: Redis, stream: string): Promise<void> {
    const { ctx } = this;
    // First the calls a previous life of this host id took and never answered ('0': this
    // consumer's pending entries, then after the last one read), then new ones ('>').
    let from = '0';
    // The first pass reads what a previous process of this host id took (it may have run
    // partly); a later one, after a reconnection, what this process's lost reads took.
    let retaken = true;
    let connections = this.connections.get(reader) ?? 0;
    const own = stream !== ctx.keys.work;
    while (!ctx.closed) {
      if (connections !== (this.connections.get(reader) ?? 0)) {
        // Reconnected: a read whose reply was lost left calls pending under this host. Read
        // the pending ones again (those running here, or done with, are skipped).
        connections = this.connections.get(reader) ?? 0;
        from = '0';
      }
      const room = ctx.settings.capacity - ctx.inflight - (own ? this.waiting.length : 0);
      if (room <= 0) {
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            clearTimeout(timer);
            this.slotFreed.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, 200);
          timer.unref();
          this.slotFreed.add(wake);
        });
        continue;
      }
      let read: [Buffer, StreamEntry[]][] | null;
      try {
        const id = ctx.hostId;
        // Reading history never blocks.
        read = (
          from !== '>'
            ? await reader.xreadgroupBuffer('GROUP', GROUP, id, 'COUNT', room, 'STREAMS', stream, from)
            : await reader.xreadgroupBuffer('GROUP', GROUP, id, 'COUNT', room, 'BLOCK', 1000, 'STREAMS', stream, from)
        ) as [Buffer, StreamEntry[]][] | null;
      } catch (err) {
        if (ctx.closed) return;
        if ((err as Error).message.includes('NOGROUP')) {
          await this.createGroups().catch(() => undefined);
        } else {
          ctx.warn(`cluster: reading the work stream failed (${(err as Error).message}); retrying`);
        }
        await sleep(200);
        continue;
      }
      const entries = read?.[0]?.[1] ?? [];
      if (from !== '>') {
        // History: run every call this host id still owes, room or not (not those waiting here).
        for (const entry of entries) {
          if (!this.waiting.some(([s, e]) => s === stream && e[0].equals(entry[0]))) void this.execute(stream, entry, retaken);
        }
        if (entries.length === 0) {
          from = '>';
          retaken = false;
        } else {
          from = entries[entries.length - 1]![0].toString();
        }
        continue;
      }
      // A read issued with room may return after local calls (or the other stream's) took
      // it: calls sent here for their state key wait for room here; others go back.
      for (const entry of entries) {
        if (ctx.inflight < ctx.settings.capacity) void this.execute(stream, entry);
        else if (own) this.waiting.push([stream, entry]);
        else void this.handBack(stream, entry);
      }
    }
  }

  /**
   * Moves a call this host (or a dead one) took, or that waits in a dead host's own stream,
   * to the end of the shared work stream, for any host.
   */
  async handBack(stream: string, [entryId, raw]: StreamEntry): Promise<void> {
    if (raw === null || raw === undefined) return;
    const { ctx } = this;
    try {
      await ctx.redis
        .multi()
        .xadd(ctx.keys.work, '*', ...raw)
        .xack(stream, GROUP, entryId)
        .xdel(stream, entryId)
        .exec();
      this.done(`${stream} ${entryId.toString()}`); // a re-read after a reconnection skips it
    } catch {
      // Still pending under this host: run it once there is room (and Redis is back).
      void this.execute(stream, [entryId, raw]);
    }
  }

  /** Acknowledges and deletes an entry of `stream` that is not to be answered (best effort). */
  private async drop(stream: string, entryId: Buffer): Promise<void> {
    await this.ctx.redis
      .multi()
      .xack(stream, GROUP, entryId)
      .xdel(stream, entryId)
      .exec()
      .catch(() => undefined);
  }

  /**
   * Runs one call taken from `stream` and answers its caller; counted in `inflight` until
   * answered. `retaken`: the call was taken before, by a host now dead or by a previous life
   * of this host id, and may have run partly.
   */
  async execute(stream: string, [entryId, raw]: StreamEntry, retaken = false): Promise<void> {
    if (raw === null || raw === undefined) return; // deleted meanwhile
    const { ctx } = this;
    const entry = `${stream} ${entryId.toString()}`;
    // Read again after a reconnection: it runs here already, or has just been answered.
    if (this.executing.has(entry) || this.answered.has(entry)) return;
    if (!ctx.entries.verifiedCall(raw, `call entry ${entryId.toString()} of ${stream}`)) {
      // Injected or altered: never run, never answered (its reply route is not to be trusted).
      this.done(entry);
      await this.drop(stream, entryId);
      return;
    }
    if (this.groups.copiedPart(raw)) {
      // A copy of a group part that runs (or ran) here: run again, its ranks would talk twice.
      this.done(entry);
      await this.drop(stream, entryId);
      return;
    }
    let finished = (): void => undefined;
    this.executing.set(entry, new Promise<void>((resolve) => (finished = resolve)));
    ctx.inflight++;
    try {
      if (await this.executeCounted(stream, entryId, raw, retaken)) this.done(entry);
    } finally {
      this.executing.delete(entry);
      finished();
      ctx.release();
    }
  }

  /** Remembers an entry this host is done with (answered, or moved on) — the last 4096. */
  private done(entry: string): void {
    this.answered.add(entry);
    if (this.answered.size > 4096) this.answered.delete(this.answered.values().next().value!);
  }

  /** Resolves with whether the call was answered. */
  private async executeCounted(stream: string, entryId: Buffer, raw: Buffer[], retaken: boolean): Promise<boolean> {
    const { ctx } = this;
    const f = fieldsOf(raw);
    const id = f.get('id')?.toString() ?? '';
    const name = f.get('fn')?.toString() ?? '';
    const from = f.get('from')?.toString() ?? '';
    const deadline = Number(f.get('dl')?.toString() ?? '0');
    const input = f.get('in') ?? Buffer.alloc(0);
    const key = f.get('idem')?.toString();
    const hash = f.get('h')?.toString();
    ctx.remote++;
    const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    const run = (): Promise<Outcome> => this.calls.runHere(name, bytes, deadline, hash);
    let record: Buffer;
    if (f.has('gid')) {
      record = await this.groups.runTaken(f, bytes, retaken);
    } else {
      const outcome = key === undefined ? await run() : await this.idempotency.keyed(key, deadline, name, bytes, run);
      // Cut short by this host closing: left unanswered, so another host takes the call.
      if (ctx.closed && 'error' in outcome && outcome.error.code === ErrorCode.CLOSED) return false;
      record = encode(outcome);
    }
    // Answers still go out while closing (until Redis is let go).
    for (let attempt = 0; !ctx.disconnected; attempt++) {
      try {
        await ctx.redis.nuvolaAnswer(
          stream,
          ctx.keys.reply(from),
          GROUP,
          entryId.toString(),
          id,
          record,
          Math.max(60_000, 10 * ctx.settings.hostTimeoutMs),
          ctx.entries.reply(id, record),
        );
        return true;
      } catch (err) {
        // Past the caller's deadline (and a margin for clocks) nobody waits for the answer: the
        // call gives its slot back. (A reply stream Redis cannot write to — a key of another
        // type planted there — would otherwise hold the slot, and in the end the host, forever.)
        if (Date.now() > deadline + ctx.settings.hostTimeoutMs) {
          ctx.warn(`cluster: answering call ${id} failed (${(err as Error).message}) past its deadline; given up`);
          await this.drop(stream, entryId);
          return true;
        }
        // Unacknowledged, the entry stays pending under this host: keep trying while the caller waits.
        ctx.warn(`cluster: answering call ${id} failed (${(err as Error).message}); retrying`);
        await backoff(attempt);
      }
    }
    return false;
  }
}
