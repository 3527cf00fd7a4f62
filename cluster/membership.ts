/**
 * Main thread. One host's membership: its heartbeat (`ZADD alive`, server time, every
 * `heartbeatMs`, signed with its load), the list of live hosts read back from Redis, and what
 * each beat sets off — the keyed calls' leases renewed, dead hosts' calls recovered, and this
 * host's registrations published again when Redis lost its data.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { unavailable, type ClusterContext } from './context.js';
import type { HostInfo } from './entries.js';

/** What a heartbeat sets off in the other parts of the membership. */
export interface Beats {
  /** After each beat: `lost` when Redis lost the cluster's data since the last one. */
  afterBeat(lost: boolean): void;
  /** Renews the leases of keyed calls running here. */
  renew(): void;
  /** Recovers the calls of hosts whose heartbeat expired. */
  recover(dead: string[]): void;
}

export class Membership {
  private readonly startedAt = Date.now();
  /** Heartbeats this host sent. */
  private beats = 0;
  /** Per host id, its latest heartbeat seen here and when it was first seen (see hosts()). */
  private readonly beatsSeen = new Map<string, { startedAt: number; beats: number; at: number }>();
  /** The cluster's epoch at the last heartbeat (see HEARTBEAT). */
  private epoch: string | undefined;
  private ticking = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly on: Beats,
  ) {}

  /** Beats every `heartbeatMs` from now on. */
  start(): void {
    this.timer = setInterval(() => void this.tick(), this.ctx.settings.heartbeatMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Live hosts, read from Redis now. */
  async hosts(): Promise<HostInfo[]> {
    const { ctx } = this;
    let infos: (string | null)[];
    try {
      infos = await ctx.bounded(ctx.redis.nuvolaLive(ctx.keys.alive, ctx.keys.hosts));
    } catch (err) {
      throw unavailable('listing hosts', err, 'ask again once Redis is back');
    }
    return this.opened(infos);
  }

  /** The live hosts among heartbeats as stored (verified; one put back by someone else left out). */
  private opened(infos: (string | null)[]): HostInfo[] {
    const { ctx } = this;
    const hosts = new Map<string, HostInfo>();
    const present = new Set<string>();
    const now = Date.now();
    for (const value of infos) {
      if (value === null) continue;
      const info = ctx.entries.openHeartbeat(value);
      if (info === undefined) continue;
      present.add(info.id);
      // Listed while its heartbeats go on: one that has not gone up for hostTimeoutMs (as
      // seen here) was put back by someone else, its host gone.
      const seen = this.beatsSeen.get(info.id);
      const beats = info.beats ?? 0;
      if (seen === undefined || info.startedAt > seen.startedAt || (info.startedAt === seen.startedAt && beats > seen.beats)) {
        this.beatsSeen.set(info.id, { startedAt: info.startedAt, beats, at: now });
      } else if (info.id !== ctx.hostId && now - seen.at > ctx.settings.hostTimeoutMs) {
        continue;
      }
      hosts.set(info.id, info);
    }
    // Forgotten once Redis no longer lists it (a stale one stays remembered while it is there).
    for (const id of this.beatsSeen.keys()) if (!present.has(id)) this.beatsSeen.delete(id);
    return [...hosts.values()];
  }

  /** One heartbeat: renew this host, renew its leases, recover dead hosts' calls. */
  private async tick(): Promise<void> {
    // One beat at a time: a slow Redis must not pile them up.
    if (this.ctx.closed || this.ticking) return;
    this.ticking = true;
    try {
      const dead = await this.beat();
      this.on.renew();
      this.on.recover(dead);
    } catch (err) {
      this.ctx.warn(`cluster: heartbeat failed (${(err as Error).message}); this host counts as dead after hostTimeoutMs without one`);
    } finally {
      this.ticking = false;
    }
  }

  /** Renews this host's heartbeat and the list of live hosts; resolves with the hosts whose heartbeat expired. */
  async beat(): Promise<string[]> {
    const { ctx } = this;
    const info: HostInfo = {
      id: ctx.hostId,
      hostname: hostname(),
      pid: process.pid,
      workers: ctx.host.workers,
      capacity: ctx.settings.capacity,
      inflight: ctx.inflight,
      completed: ctx.completed,
      remote: ctx.remote,
      ownStream: ctx.settings.capacity > 0,
      partitions: ctx.partitions,
      startedAt: this.startedAt,
      beats: ++this.beats,
    };
    const { alive, hosts, epoch: epochKey } = ctx.keys;
    const [dead, epoch, infos] = await ctx.bounded(
      ctx.redis.nuvolaHeartbeat(alive, hosts, epochKey, ctx.hostId, ctx.settings.hostTimeoutMs, ctx.entries.heartbeat(info), randomUUID()),
    );
    this.on.afterBeat(this.epoch !== undefined && epoch !== this.epoch);
    this.epoch = epoch;
    ctx.live = this.opened(infos);
    return dead;
  }
}
