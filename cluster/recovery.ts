/**
 * Main thread. Recovery of dead hosts' calls: a live host with room claims the entries a dead
 * host took in any work partition and never answered (`XPENDING … <dead>`, then `XCLAIM`,
 * whose minimum idle time lets only one host take each) and runs them; the calls in the dead
 * host's own stream, taken or not, move to the shared stream (at most 500 per beat). Once
 * nothing of the dead host is left, it is forgotten: its consumer in each other partition by
 * one script there, then the rest by one script. Runs beside the heartbeat, one recovery at a time.
 */
import { batchOf, unpackBatch, type StreamEntry } from './codec.js';
import type { Consumer } from './consumer.js';
import type { ClusterContext } from './context.js';
import { GROUP } from './keys.js';

/** An entry of `XPENDING`'s extended form: id, consumer, idle time, deliveries. */
type PendingEntry = [id: string, consumer: string, idleMs: number, deliveries: number];

export class Recovery {
  private recovering = false;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly consumer: Consumer,
  ) {}

  /**
   * Recovers the calls of `dead` hosts (this one aside) beside the heartbeat (a long recovery
   * must not stop this host's beats), one recovery at a time; a host that only sends leaves it
   * to hosts that take calls.
   */
  start(dead: string[]): void {
    const { ctx } = this;
    const others = dead.filter((id) => id !== ctx.hostId);
    if (others.length === 0 || this.recovering || ctx.settings.capacity <= 0) return;
    this.recovering = true;
    void (async () => {
      for (const id of others) await this.recover(id);
    })()
      .catch((err: Error) => ctx.warn(`cluster: recovering dead hosts' calls failed (${err.message}); retrying at the next beat`))
      .finally(() => (this.recovering = false));
  }

  /**
   * Claims the calls a dead host took and never answered, and runs them here; moves the calls
   * waiting in its own work stream to the shared one. Two hosts may both see it dead: XCLAIM's
   * minimum idle time lets only the first take each call.
   */
  private async recover(dead: string): Promise<void> {
    const { ctx } = this;
    const queue = ctx.keys.queue(dead);
    const drained = await this.drain(queue);
    let left = false;
    for (const part of ctx.keys.parts) {
      const room = ctx.settings.capacity - ctx.inflight;
      if (room <= 0) return; // a host with room will; or this one at a later beat
      const pending = await this.pending(part, room, dead);
      if (pending.length === 0) continue;
      left = true;
      const claimed = await this.claim(
        part,
        pending.map((p) => p[0]),
      );
      const calls = claimed.reduce((n, [, raw]) => n + (raw === null || raw === undefined ? 0 : callCount(raw)), 0);
      if (calls > 0) ctx.host.log('info', `cluster: took over ${calls} unanswered calls of dead host '${dead}'`);
      for (const entry of claimed) void this.consumer.execute(part, entry, true);
    }
    if (left) return;
    // Forgotten only once nothing of it is left (checked and done in one script per slot).
    if (drained) {
      for (const part of ctx.keys.parts.slice(1)) if ((await ctx.redis.nuvolaForgetPart(part, dead)) === 0) return;
      const { alive, hosts, work } = ctx.keys;
      if ((await ctx.redis.nuvolaForget(alive, hosts, work, queue, ctx.keys.poke(dead), dead)) === 1) {
        ctx.host.log('info', `cluster: host '${dead}' is gone (it left, or its heartbeat expired)`);
      }
    }
  }

  /** Up to `count` entries of `stream` idle for a heartbeat or more (of `consumer` only, if given). */
  private async pending(stream: string, count: number, consumer?: string): Promise<PendingEntry[]> {
    const idle = this.ctx.settings.heartbeatMs;
    return (await (consumer === undefined
      ? this.ctx.redis.xpending(stream, GROUP, 'IDLE', idle, '-', '+', count)
      : this.ctx.redis.xpending(stream, GROUP, 'IDLE', idle, '-', '+', count, consumer))) as PendingEntry[];
  }

  /** Takes entries of `stream` for this host, if their idle time still allows (see XCLAIM). */
  private async claim(stream: string, ids: string[]): Promise<StreamEntry[]> {
    return (await this.ctx.redis.callBuffer(
      'XCLAIM',
      stream,
      GROUP,
      this.ctx.hostId,
      this.ctx.settings.heartbeatMs,
      ...ids,
    )) as StreamEntry[];
  }

  /**
   * Moves every call of a dead host's own work stream to the shared one: those it (or another
   * host that is gone) took and never answered, and those nobody took yet. Resolves with
   * whether the stream is empty now.
   */
  private async drain(queue: string): Promise<boolean> {
    const { ctx } = this;
    try {
      // A bounded batch per beat; the rest at the next ones.
      for (let moved = 0; moved < 500;) {
        const live = new Set(ctx.live.map((h) => h.id));
        const pending = await this.pending(queue, 100);
        // Taken by hosts now gone — or by this one, by a read whose reply was lost.
        const orphans = pending
          .filter((p) => !live.has(p[1]) || (p[1] === ctx.hostId && !this.consumer.executing.has(`${queue} ${p[0]}`)))
          .map((p) => p[0]);
        let entries: StreamEntry[];
        if (orphans.length > 0) {
          entries = await this.claim(queue, orphans);
        } else {
          const read = (await ctx.redis.xreadgroupBuffer('GROUP', GROUP, ctx.hostId, 'COUNT', 100, 'STREAMS', queue, '>')) as
            [Buffer, StreamEntry[]][] | null;
          entries = read?.[0]?.[1] ?? [];
        }
        if (entries.length === 0) return (await ctx.redis.xlen(queue)) === 0;
        for (const entry of entries) await this.consumer.handBack(queue, entry);
        moved += entries.length;
      }
      return false;
    } catch (err) {
      if ((err as Error).message.includes('NOGROUP')) return true; // no such stream: nothing to move
      throw err;
    }
  }
}

/** Calls in an entry: a batch's (verified when run), or 1. */
function callCount(raw: Buffer[]): number {
  const batch = batchOf(raw);
  return batch === undefined ? 1 : (unpackBatch(batch.packed)?.length ?? 0);
}
