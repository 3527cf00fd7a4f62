/**
 * Main thread. Groups spread over hosts (`invokeGroup(…, { placement: 'hosts' })`): the ranks
 * split in contiguous parts, one per host that takes calls, each part sent through the work
 * stream; a message to a rank on another host goes to that rank's inbox stream, which the host
 * running it reads; a failing rank posts to the group's control stream and every part stops.
 * A host never runs a copy of a part it runs or ran while any part of the group is on it.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ErrorCode, fromWire, makeError, toWire, type WireError } from '../runtime/errors.js';
import type { Calls } from './calls.js';
import { decodePart, encodePart, fieldsOf, type Outcome, type StreamEntry } from './codec.js';
import { sleep, unavailable, type ClusterContext } from './context.js';
import type { Membership } from './membership.js';
import type { RemotePart } from './port.js';
import { unknownFunction, type Registry } from './registry.js';

export class Groups {
  /** Blocking reads of the inboxes of the group ranks running here. */
  private readonly inboxReader: Redis;
  /**
   * Parts of groups spread over hosts that run here, by `<group id>/<first rank>` (one host may
   * run two parts of a group).
   */
  private readonly parts = new Map<string, { group: string; part: RemotePart }>();
  /**
   * Groups with a part taken here, by group id: the parts running here, and the first ranks of
   * every part taken here since the first of them started (a copied entry is not run twice).
   */
  private readonly groupRuns = new Map<string, { active: number; firsts: Set<number> }>();

  constructor(
    private readonly ctx: ClusterContext,
    private readonly registry: Registry,
    private readonly calls: Calls,
    private readonly membership: Membership,
  ) {
    this.inboxReader = ctx.connect(true);
  }

  /**
   * Runs `size` ranks of `name` as one group spread over the cluster's hosts: the ranks are
   * split in contiguous parts, one per host that takes calls, each part sent through the work
   * stream; messages between ranks on different hosts go through Redis streams (one per
   * receiving rank, so each sender's messages arrive in order). The first failing rank ends the
   * group on every host. Resolves with each rank's outcome in rank order.
   */
  async invokeGroup(name: string, size: number, input: Uint8Array, timeoutMs: number | undefined): Promise<Outcome[]> {
    const { ctx } = this;
    if (timeoutMs === undefined && ctx.host.hashOf(name) === undefined) {
      // Not registered here: the registry must have it, and says its timeout.
      try {
        const registration = await this.registry.lookup(name);
        if (registration === null) return [{ error: unknownFunction(name, ctx.settings.name).toWire() }];
        timeoutMs = registration.timeoutMs;
      } catch (err) {
        return [{ error: toWire(err) }];
      }
    }
    const deadline = Date.now() + (timeoutMs ?? ctx.host.defaultTimeoutMs);
    try {
      ctx.live = await this.membership.hosts();
    } catch (err) {
      return [{ error: toWire(err) }];
    }
    const takers = ctx.live.filter((h) => h.capacity > 0).length;
    if (takers === 0) {
      const error = makeError(ErrorCode.CLUSTER_UNAVAILABLE, `cluster '${ctx.settings.name}': no live host takes calls; start a host`, {
        function: name,
      });
      return [{ error: error.toWire() }];
    }
    const parts = Math.min(size, takers);
    const group = randomUUID();
    const ranksOf = (p: number): number[] => {
      const from = Math.floor((p * size) / parts);
      const to = Math.floor(((p + 1) * size) / parts);
      return Array.from({ length: to - from }, (_, i) => from + i);
    };
    let aborted = false;
    const abort = (error: WireError): void => {
      if (aborted) return;
      aborted = true;
      this.failed(group, error);
    };
    try {
      const results = await Promise.all(
        Array.from({ length: parts }, async (_, p) => {
          const ranks = ranksOf(p);
          const fields: (string | Buffer)[] = [
            'fn',
            name,
            ...this.registry.codeField(name),
            'gid',
            group,
            'size',
            String(size),
            'ranks',
            JSON.stringify(ranks),
          ];
          if (input.byteLength > 0) fields.push('in', Buffer.from(input.buffer, input.byteOffset, input.byteLength));
          const outcomes = decodePart(await this.calls.request(name, fields, deadline), ranks.length);
          const failed = outcomes.find((o): o is { error: WireError } => 'error' in o);
          if (failed !== undefined) abort(failed.error);
          return outcomes;
        }),
      );
      return results.flat();
    } finally {
      const keys = [ctx.keys.control(group), ...Array.from({ length: size }, (_, r) => ctx.keys.inbox(group, r))];
      void ctx.redis.del(...keys).catch(() => undefined);
    }
  }

  /**
   * Runs a part of a group taken from a work stream (its fields `f`); its record lists each of
   * its ranks' outcomes. `retaken`: the part was taken before by a host now dead (or a previous
   * life of this one) — its ranks may have talked already, so the group fails instead.
   */
  async runTaken(f: Map<string, Buffer>, input: Uint8Array, retaken: boolean): Promise<Buffer> {
    const name = f.get('fn')?.toString() ?? '';
    const group = f.get('gid')?.toString() ?? '';
    const ranks = JSON.parse(f.get('ranks')?.toString() ?? '[]') as number[];
    if (retaken) {
      // Its ranks may have sent and received messages already: running them again would
      // replay the group's conversation out of step. The group fails instead.
      const error = makeError(
        ErrorCode.WORKER_LOST,
        `ranks ${ranks.join(', ')} of group '${name}' were on a host that died (or restarted) mid-run; a group cannot resume — invoke it again`,
        { function: name, ranks },
      ).toWire();
      this.failed(group, error);
      this.partEnded(group);
      return encodePart([{ error }]);
    }
    const size = Number(f.get('size')?.toString() ?? '0');
    const deadline = Number(f.get('dl')?.toString() ?? '0');
    return this.runPart(name, group, size, ranks, input, deadline, f.get('h')?.toString());
  }

  /** Runs a part of a group spread over hosts; its record lists each of its ranks' outcomes. */
  private async runPart(
    name: string,
    group: string,
    size: number,
    ranks: number[],
    input: Uint8Array,
    deadline: number,
    hash: string | undefined,
  ): Promise<Buffer> {
    const { ctx } = this;
    // The entry counted one call; a part holds one instance per rank.
    ctx.inflight += ranks.length - 1;
    let published = false;
    const part: RemotePart = {
      ranks,
      send: (from, to, data) => {
        this.message(group, from, to, Buffer.from(data)).catch((err: Error) => {
          if (part.id !== undefined) ctx.host.abortPart(part.id, unavailable(`sending a message to rank ${to}`, err, 'the group stops'));
        });
      },
      aborted: (error) => {
        published = true;
        this.failed(group, error.toWire());
      },
    };
    try {
      const left = await this.registry.arrive(name, hash, deadline, `a part of group '${name}'`);
      const run = ctx.host.runPart(name, size, input, left, part);
      this.parts.set(`${group}/${ranks[0]}`, { group, part });
      this.poke();
      const results = await run;
      return encodePart(results.map((r) => ({ ...r, host: ctx.hostId })));
    } catch (err) {
      const wire = toWire(err);
      if (!published) this.failed(group, wire);
      return encodePart([{ error: wire }]);
    } finally {
      this.parts.delete(`${group}/${ranks[0]}`);
      ctx.inflight -= ranks.length - 1;
      this.partEnded(group);
    }
  }

  /**
   * Whether a (verified) call entry is a part of a group whose part with the same first rank
   * this host runs or ran while any part of the group still runs here — a copy of its entry
   * (counted as rejected). Else a group part is noted as run here.
   */
  copiedPart(raw: Buffer[]): boolean {
    const f = fieldsOf(raw);
    const group = f.get('gid')?.toString();
    if (group === undefined) return false;
    const first = (JSON.parse(f.get('ranks')?.toString() ?? '[]') as number[])[0] ?? -1;
    let runs = this.groupRuns.get(group);
    if (runs === undefined) this.groupRuns.set(group, (runs = { active: 0, firsts: new Set() }));
    if (runs.firsts.has(first)) {
      this.ctx.reject('calls', `a copy of the entry of ranks from ${first} of group ${group} (they run or ran here)`);
      return true;
    }
    runs.firsts.add(first);
    runs.active++;
    return false;
  }

  /** A part of `group` taken here ended: the group is forgotten once none runs here. */
  private partEnded(group: string): void {
    const runs = this.groupRuns.get(group);
    if (runs !== undefined && --runs.active <= 0) {
      this.groupRuns.delete(group);
      this.ctx.entries.forgetGroup(group);
    }
  }

  /** Sends a message to a rank on another host (numbered and authenticated, see entries.ts). */
  private message(group: string, from: number, to: number, data: Buffer): Promise<number> {
    return this.add(this.ctx.keys.inbox(group, to), ...this.ctx.entries.message(group, from, to, data));
  }

  /** Tells every part of a group that a rank failed. */
  private failed(group: string, error: WireError): void {
    this.add(this.ctx.keys.control(group), ...this.ctx.entries.failure(group, error)).catch(() => undefined);
  }

  /** Adds to a group's stream, which lapses a minute after its last entry (or `hostTimeoutMs`, if longer). */
  private add(stream: string, ...fields: (string | Buffer)[]): Promise<number> {
    return this.ctx.redis.nuvolaGroupAdd(stream, Math.max(60_000, this.ctx.settings.hostTimeoutMs), ...fields);
  }

  /** Wakes the inbox reader: the set of group streams to read changed. */
  private poke(): void {
    void this.ctx.redis.xadd(this.ctx.keys.poke(this.ctx.hostId), 'MAXLEN', '~', '100', '*', 'p', '1').catch(() => undefined);
  }

  /** Reads the inboxes (and control streams) of the group ranks running here and hands their messages to the pool. */
  async inboxLoop(): Promise<void> {
    const { ctx } = this;
    const last = new Map<string, string>();
    const poke = ctx.keys.poke(ctx.hostId);
    while (!ctx.closed) {
      const streams = [poke];
      // A rank's inbox goes to its part; a group's control stream to each of its parts here.
      const route = new Map<string, { group: string; parts: RemotePart[]; rank: number | undefined }>();
      for (const { group, part } of this.parts.values()) {
        const control = ctx.keys.control(group);
        const to = route.get(control);
        if (to === undefined) {
          streams.push(control);
          route.set(control, { group, parts: [part], rank: undefined });
        } else {
          to.parts.push(part);
        }
        for (const rank of part.ranks) {
          const inbox = ctx.keys.inbox(group, rank);
          streams.push(inbox);
          route.set(inbox, { group, parts: [part], rank });
        }
      }
      for (const stream of last.keys()) if (stream !== poke && !route.has(stream)) last.delete(stream);
      let read: [Buffer, StreamEntry[]][] | null;
      try {
        read = (await this.inboxReader.xreadBuffer(
          'COUNT',
          1024,
          'BLOCK',
          1000,
          'STREAMS',
          ...streams,
          ...streams.map((s) => last.get(s) ?? '0-0'),
        )) as [Buffer, StreamEntry[]][] | null;
      } catch (err) {
        if (ctx.closed) return;
        ctx.warn(`cluster: reading group messages failed (${(err as Error).message}); retrying`);
        await sleep(200);
        continue;
      }
      for (const [streamName, entries] of read ?? []) {
        const stream = streamName.toString();
        const to = route.get(stream);
        for (const [entryId, raw] of entries) {
          last.set(stream, entryId.toString());
          if (to === undefined) continue;
          // Parts that ended while the read was out get nothing.
          const running = new Set([...this.parts.values()].map((p) => p.part));
          const live = to.parts.filter((part) => part.id !== undefined && running.has(part));
          if (live.length === 0) continue;
          const f = fieldsOf(raw);
          const verdict = ctx.entries.verifiedGroupEntry(to.group, to.rank, f, `an entry of ${stream}`);
          if (verdict === 'lost') {
            const error = makeError(
              ErrorCode.CLUSTER_INTEGRITY,
              `a message from rank ${f.get('f')?.toString() ?? '?'} to rank ${to.rank} of a group spread over cluster '${ctx.settings.name}' was lost (removed from Redis by something without the cluster's secret?); the group stops — invoke it again, and check who may write to Redis`,
              { cluster: ctx.settings.name, rank: to.rank },
            );
            for (const part of live) if (part.id !== undefined) ctx.host.abortPart(part.id, error);
            continue;
          }
          if (verdict === 'dropped') continue;
          for (const part of live) {
            if (part.id === undefined) continue;
            if (to.rank === undefined) {
              ctx.host.abortPart(part.id, fromWire(JSON.parse(f.get('e')?.toString() ?? '{}') as WireError));
              continue;
            }
            const data = f.get('d') ?? Buffer.alloc(0);
            const shared = new SharedArrayBuffer(data.byteLength);
            new Uint8Array(shared).set(data);
            ctx.host.deliver(part.id, Number(f.get('f')?.toString() ?? '-1'), to.rank, shared);
          }
        }
      }
    }
  }

  /** Closing: stops reading group messages. */
  close(): void {
    this.inboxReader.disconnect();
  }
}
