/**
 * Main thread. Calls this host takes from the work streams — every shared partition and its
 * own — as long as it has room: an entry holds one call or a batch of them (batching.ts), each
 * verified, run (a plain call, a keyed one, or a group part) and answered on its caller's
 * reply stream (replies batched per caller); the entry is acknowledged and deleted once every
 * call in it is answered. On start and after each reconnection it first takes the calls still
 * pending under its id. Entries it has no room for go back to their partition's end (its own
 * stream's wait here for room).
 */
import type { Redis } from 'ioredis';
import { ErrorCode } from '../runtime/errors.js';
import { Answers } from './batching.js';
import type { Calls } from './calls.js';
import { batchOf, encode, fieldsOf, packBatch, unpackBatch, type Outcome, type StreamEntry } from './codec.js';
import { backoff, sleep, type ClusterContext } from './context.js';
import type { Groups } from './groups.js';
import type { Idempotency } from './idempotency.js';
import { GROUP } from './keys.js';

/** An entry's calls and whether its batch MAC vouched for them (see Consumer.open); null: a forged batch. */
type Opened = { calls: Buffer[][]; trusted: boolean } | null;

export class Consumer {
  /** Blocking reads of each shared work partition (one connection each: on a Redis Cluster they are on different masters). */
  private readonly workReaders: Redis[] = [];
  /** Blocking reads of this host's own work stream. */
  private readonly queueReader: Redis;
  /** Replies and acknowledgements, batched (see batching.ts). */
  private readonly answers: Answers;
  /** Calls in the last batch entry read (1 for a lone call): how many entries a read asks for. */
  private perEntry = 1;
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
    this.queueReader = this.reader();
    this.answers = new Answers(ctx);
    ctx.onRelease = () => {
      // Calls sent to this host for their state key wait here for room, not back in the stream.
      while (this.waiting.length > 0 && ctx.inflight < ctx.settings.capacity) {
        const [stream, entry] = this.waiting.shift()!;
        void this.execute(stream, entry);
      }
      this.wake();
    };
  }

  /** A connection for a work loop, counting its connections (see workLoop). */
  private reader(): Redis {
    const reader = this.ctx.connect(true);
    reader.on('ready', () => this.connections.set(reader, (this.connections.get(reader) ?? 0) + 1));
    return reader;
  }

  /** The consumer group on every shared work partition and on this host's own stream (from their start). */
  async createGroups(): Promise<void> {
    const { ctx } = this;
    for (const stream of [...ctx.keys.parts, ctx.keys.queue(ctx.hostId)]) {
      await ctx.redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
        if (!err.message.includes('BUSYGROUP')) throw err;
      });
    }
  }

  /** The loops that take calls from each shared work partition and from this host's own stream. */
  loops(): Promise<void>[] {
    const { ctx } = this;
    const loops = ctx.keys.parts.map((part) => {
      const reader = this.reader();
      this.workReaders.push(reader);
      return this.workLoop(reader, part);
    });
    return [...loops, this.workLoop(this.queueReader, ctx.keys.queue(ctx.hostId))];
  }

  /** Wakes the work loops waiting for room. */
  private wake(): void {
    for (const freed of this.slotFreed) freed();
    this.slotFreed.clear();
  }

  /** Closing: wakes the work loops (they end) and stops their reads. */
  close(): void {
    this.wake();
    for (const reader of this.workReaders) reader.disconnect();
    this.queueReader.disconnect();
  }

  /**
   * Takes calls from one work stream (a shared partition, or this host's own) while this host
   * has room. One loop and one connection per stream: a read blocking on both streams at once
   * cost a seventh of the throughput through the shared one (`nuvola bench cluster`). A read
   * asks for as many entries as the calls it has room for would fill, judged by the last
   * batch read: a batch may take it past its capacity by less than one batch.
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
    const own = stream === ctx.keys.queue(ctx.hostId);
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
        const count = from !== '>' ? room : Math.max(1, Math.floor(room / this.perEntry));
        read = (
          from !== '>'
            ? await reader.xreadgroupBuffer('GROUP', GROUP, id, 'COUNT', count, 'STREAMS', stream, from)
            : await reader.xreadgroupBuffer('GROUP', GROUP, id, 'COUNT', count, 'BLOCK', 1000, 'STREAMS', stream, from)
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
        // History: run every call this host id still owes, room or not (not those waiting here);
        // one answered whose acknowledgement was lost is acknowledged now.
        for (const entry of entries) {
          if (this.answered.has(`${stream} ${entry[0].toString()}`)) this.answers.ack(stream, entry[0]);
          else if (!this.waiting.some(([s, e]) => s === stream && e[0].equals(entry[0]))) void this.execute(stream, entry, retaken);
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
        const room = ctx.settings.capacity - ctx.inflight;
        if (entry[1] === null || entry[1] === undefined) continue; // deleted meanwhile
        if (room <= 0) {
          if (own) this.waiting.push([stream, entry]);
          else void this.handBack(stream, entry);
          continue;
        }
        const opened = this.open(stream, entry);
        const calls = opened?.calls.length ?? 1;
        this.perEntry = calls > 1 ? calls : Math.max(1, this.perEntry >> 1);
        if (opened?.trusted === true && calls > room && !own) this.split(stream, entry, opened.calls, room);
        else void this.execute(stream, entry, false, opened);
      }
    }
  }

  /**
   * Moves an entry this host (or a dead one) took, or that waits in a dead host's own stream,
   * to the end of a shared work partition, for any host: its own partition's, or for a host's
   * own stream the first partition (in the same slot).
   */
  async handBack(stream: string, [entryId, raw]: StreamEntry): Promise<void> {
    if (raw === null || raw === undefined) return;
    const { ctx } = this;
    const to = ctx.keys.parts.includes(stream) ? stream : ctx.keys.work;
    try {
      await ctx.redis
        .multi()
        .xadd(to, '*', ...raw)
        .xack(stream, GROUP, entryId)
        .xdel(stream, entryId)
        .exec();
      this.done(`${stream} ${entryId.toString()}`); // a re-read after a reconnection skips it
    } catch {
      // Still pending under this host: run it once there is room (and Redis is back).
      void this.execute(stream, [entryId, raw]);
    }
  }

  /**
   * The calls of an entry: a batch's, verified once by its MAC (`trusted`), or the entry itself
   * (its MAC checked when it runs). Null for a batch that fails: counted, never run.
   */
  private open(stream: string, [entryId, raw]: StreamEntry): Opened {
    const batch = batchOf(raw);
    if (batch === undefined) return { calls: [raw], trusted: false };
    const what = `batch entry ${entryId.toString()} of ${stream}`;
    if (!this.ctx.entries.verifiedBatch('calls', batch.packed, batch.mac, what)) return null;
    const calls = unpackBatch(batch.packed);
    if (calls === undefined) this.ctx.reject('calls', `${what} (not a framed list)`);
    return calls === undefined ? null : { calls, trusted: true };
  }

  /**
   * Runs the calls of one entry taken from `stream` and answers their callers; each counted in
   * `inflight` until answered. The entry is acknowledged with the last reply (one left
   * unanswered — cut short by closing — leaves it pending for another host, which runs them
   * all again: at least once). `retaken`: the entry was taken before, by a host now dead or
   * by a previous life of this host id, and its calls may have run partly. `only`: the calls
   * of the entry to run here, the others being `moved` to the end of the stream meanwhile —
   * resolving with those to run here after all (when moving them failed).
   */
  async execute(stream: string, [entryId, raw]: StreamEntry, retaken = false, opened?: Opened, moved?: Promise<Buffer[][]>): Promise<void> {
    if (raw === null || raw === undefined) return; // deleted meanwhile
    const { ctx } = this;
    const entry = `${stream} ${entryId.toString()}`;
    // Read again after a reconnection: it runs here already, or has just been answered.
    if (this.executing.has(entry) || this.answered.has(entry)) return;
    if (opened === undefined) opened = this.open(stream, [entryId, raw]);
    const calls = opened?.calls;
    const trusted = opened?.trusted === true;
    let finished = (): void => undefined;
    this.executing.set(entry, new Promise<void>((resolve) => (finished = resolve)));
    // Calls not answered yet (and the move of the others); `spoiled`: one was left unanswered.
    const state = { left: (calls?.length ?? 0) + (moved === undefined ? 0 : 1), spoiled: false };
    const ack = { stream, id: entryId };
    /** One call is done with: whether the entry is now answered (and to be acknowledged). */
    const last = (): boolean => --state.left === 0 && !state.spoiled;
    const run = (call: Buffer[], i: number, n: number): Promise<void> => {
      const what = `call entry ${entryId.toString()}${n > 1 ? ` (call ${i})` : ''} of ${stream}`;
      // Injected or altered: never run, never answered (its reply route is not to be trusted).
      // A copy of a group part that runs (or ran) here: run again, its ranks would talk twice.
      if ((!trusted && !ctx.entries.verifiedCall(call, what)) || this.groups.copiedPart(call)) {
        if (last()) this.answers.ack(stream, entryId);
        return Promise.resolve();
      }
      ctx.inflight++;
      return this.executeCounted(call, retaken, ack, last, state).finally(() => ctx.release());
    };
    try {
      if (calls === undefined || calls.length === 0) {
        this.answers.ack(stream, entryId);
      } else {
        const running = calls.map((call, i) => run(call, i, calls.length));
        if (moved !== undefined) {
          const rest = await moved;
          state.left += rest.length;
          if (last()) this.answers.ack(stream, entryId);
          running.push(...rest.map((call, i) => run(call, calls.length + i, calls.length + rest.length)));
        }
        await Promise.all(running);
      }
      if (!state.spoiled) this.done(entry);
    } finally {
      this.executing.delete(entry);
      finished();
    }
  }

  /**
   * Takes the first `room` calls of a batch entry to run here and adds the others to the end
   * of its stream (one entry) for any host: a host takes no more calls than it has room for.
   */
  private split(stream: string, entry: StreamEntry, calls: Buffer[][], room: number): void {
    const { ctx } = this;
    const rest = calls.slice(room);
    // Signed again by this host: one alone, or a batch under one MAC.
    const fields = rest.length === 1 ? ctx.entries.call(rest[0]!) : ctx.entries.batch('calls', packBatch(rest));
    const moved = ctx.redis.xadd(stream, '*', ...fields).then(
      () => [],
      () => rest, // run here after all: the entry is acknowledged only once they are answered
    );
    void this.execute(stream, entry, false, { calls: calls.slice(0, room), trusted: true }, moved);
  }

  /** Remembers an entry this host is done with (answered, or moved on) — the last 4096. */
  private done(entry: string): void {
    this.answered.add(entry);
    if (this.answered.size > 4096) this.answered.delete(this.answered.values().next().value!);
  }

  /**
   * Runs one call (its fields `raw`, verified) and answers it — with its entry's
   * acknowledgement when `last()` says it is the entry's last call (see execute).
   */
  private async executeCounted(
    raw: Buffer[],
    retaken: boolean,
    entry: { stream: string; id: Buffer },
    last: () => boolean,
    state: { spoiled: boolean },
  ): Promise<void> {
    const { ctx } = this;
    const f = fieldsOf(raw);
    const id = f.get('id')?.toString() ?? '';
    const name = f.get('fn')?.toString() ?? '';
    const from = f.get('from')?.toString() ?? '';
    const tag = f.get('rt')?.toString();
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
      if (ctx.closed && 'error' in outcome && outcome.error.code === ErrorCode.CLOSED) {
        state.spoiled = true;
        last();
        return;
      }
      record = encode(outcome);
    }
    const ack = last() ? entry : undefined;
    // A reply stream of this cluster only (the route is signed with the call, so a tag of
    // another cluster never comes from one of its hosts; this is belt and braces).
    const own = ctx.settings.name;
    const stream = ctx.keys.reply(from, tag !== undefined && tag.startsWith(`${own}~`) ? tag : own);
    // Answers still go out while closing (until Redis is let go).
    for (let attempt = 0; !ctx.disconnected; attempt++) {
      try {
        await this.answers.reply(stream, id, record, ack);
        return;
      } catch (err) {
        // Past the caller's deadline (and a margin for clocks) nobody waits for the answer: the
        // call gives its slot back. (A reply stream Redis cannot write to — a key of another
        // type planted there — would otherwise hold the slot, and in the end the host, forever.)
        if (Date.now() > deadline + ctx.settings.hostTimeoutMs) {
          ctx.warn(`cluster: answering call ${id} failed (${(err as Error).message}) past its deadline; given up`);
          if (ack !== undefined) this.answers.ack(ack.stream, ack.id);
          return;
        }
        // Unacknowledged, the entry stays pending under this host: keep trying while the caller waits.
        ctx.warn(`cluster: answering call ${id} failed (${(err as Error).message}); retrying`);
        await backoff(attempt);
      }
    }
    state.spoiled = true;
  }
}
