/**
 * Main thread. One host's membership in a cluster of runtimes that share a Redis, put
 * together from its parts (README "File map"): membership.ts (heartbeat, live hosts),
 * recovery.ts (dead hosts' calls), registry.ts (registered functions, fetch), placement.ts,
 * calls.ts (calls this host makes, replies), consumer.ts (calls it takes), idempotency.ts and
 * groups.ts, over one context.ts. `runtime/runtime.ts` loads this file only in cluster mode.
 *
 * Guarantees (docs/guides/many-hosts.md): a call sent through the work stream is delivered at least
 * once — if its host dies before answering, another host claims it once the dead host's
 * heartbeat has expired; the caller resolves or rejects exactly once, by its own deadline at
 * the latest (E_TIMEOUT). With an idempotency key, the first completion is recorded and every
 * later run or retry with that key answers with the recorded result, so the caller sees one
 * result even when the function ran twice (a host that was slow, not dead).
 */
import { ErrorCode, makeError } from '../runtime/errors.js';
import type { RedisTarget } from '../state/redis-connect.js';
import { Calls } from './calls.js';
import type { Outcome } from './codec.js';
import { Consumer } from './consumer.js';
import { ClusterContext, ready, sleep } from './context.js';
import type { HostInfo, Rejected } from './entries.js';
import { Groups } from './groups.js';
import { Idempotency } from './idempotency.js';
import type { ClusterKeys } from './keys.js';
import { Membership } from './membership.js';
import { Placement } from './placement.js';
import type { LocalHost } from './port.js';
import { Recovery } from './recovery.js';
import { Registry } from './registry.js';
import type { ClusterSettings } from './settings.js';

export { decode, encode, type Outcome } from './codec.js';
export type { HostInfo, Rejected } from './entries.js';
export { moduleHash, settle } from './outcome.js';
export { homeOf } from './placement.js';
export type { LocalHost, RemotePart } from './port.js';
export type { ClusterSettings } from './settings.js';

/** How long joining waits for Redis to answer, in ms. */
const JOIN_WAIT_MS = 5000;

export class Cluster {
  private readonly ctx: ClusterContext;
  private readonly membership: Membership;
  private readonly registry: Registry;
  private readonly placement: Placement;
  private readonly idempotency: Idempotency;
  private readonly calls: Calls;
  private readonly groups: Groups;
  private readonly consumer: Consumer;
  private readonly recovery: Recovery;
  private loops: Promise<void>[] = [];

  private constructor(
    readonly settings: ClusterSettings,
    target: RedisTarget,
    host: LocalHost,
  ) {
    const ctx = (this.ctx = new ClusterContext(settings, target, host));
    this.registry = new Registry(ctx);
    this.membership = new Membership(ctx, {
      afterBeat: (lost) => this.registry.afterBeat(lost),
      renew: () => this.idempotency.renew(),
      recover: (dead) => this.recovery.start(dead),
    });
    this.placement = new Placement(ctx);
    this.idempotency = new Idempotency(ctx);
    this.calls = new Calls(ctx, this.registry, this.placement, this.idempotency, this.membership);
    this.groups = new Groups(ctx, this.registry, this.calls, this.membership);
    this.consumer = new Consumer(ctx, this.calls, this.idempotency, this.groups);
    this.recovery = new Recovery(ctx, this.consumer);
  }

  /** Joins the cluster: creates the work stream's group if needed, beats once, starts the loops. */
  static async join(settings: ClusterSettings, target: RedisTarget, host: LocalHost): Promise<Cluster> {
    const cluster = new Cluster(settings, target, host);
    try {
      await ready(cluster.ctx.redis, JOIN_WAIT_MS);
      await cluster.ctx.usePartitions();
      await cluster.consumer.createGroups();
      await cluster.membership.beat();
    } catch (err) {
      await cluster.close();
      throw makeError(
        ErrorCode.CLUSTER_UNAVAILABLE,
        `cluster '${settings.name}': could not join, Redis is unreachable (${(err as Error).message}); start Redis or check the redis option`,
        { cluster: settings.name },
      );
    }
    cluster.membership.start();
    cluster.loops = [...cluster.calls.replyLoops(), cluster.groups.inboxLoop()];
    // A host that only sends (capacity 0) takes no calls.
    if (settings.capacity > 0) cluster.loops.push(...cluster.consumer.loops());
    return cluster;
  }

  get hostId(): string {
    return this.settings.hostId;
  }

  /** The cluster's keys (its work partitions settled on joining). */
  get keys(): ClusterKeys {
    return this.ctx.keys;
  }

  /** Live hosts, read from Redis now. */
  hosts(): Promise<HostInfo[]> {
    return this.membership.hosts();
  }

  /** What this host dropped for failing verification, by kind, since it joined. */
  get rejected(): Rejected {
    return this.ctx.rejected;
  }

  /** Publishes a registration: the bytes once by content hash, the name with its options. */
  publish(name: string, bytes: Uint8Array, options: Record<string, unknown>): Promise<void> {
    return this.registry.publish(name, bytes, options);
  }

  /** Removes a name from the cluster's registry if it still stands for the code of `hash` (see Registry.unpublish). */
  unpublish(name: string, hash: string): Promise<void> {
    return this.registry.unpublish(name, hash);
  }

  /** Whether calls should stay here: this host runs fewer calls than its capacity. */
  hasRoom(): boolean {
    return this.ctx.hasRoom();
  }

  /** Counts a call running on this host (for the capacity and the heartbeat's load). */
  track<T>(run: Promise<T>): Promise<T> {
    return this.ctx.track(run);
  }

  /** Where a call naming `stateKey` should run (see Placement.placeOf). */
  placeOf(stateKey: string): string | undefined {
    return this.placement.placeOf(stateKey);
  }

  /** Whether a call (naming `stateKey`, if any) should run on this host rather than be sent (see Placement.runsHere). */
  runsHere(stateKey: string | undefined, nested = false): boolean {
    return this.placement.runsHere(stateKey, nested);
  }

  /** Runs `name` somewhere in the cluster (see Calls.invoke: the arguments are its). */
  invoke(...call: Parameters<Calls['invoke']>): Promise<Outcome> {
    return this.calls.invoke(...call);
  }

  /** Runs `size` ranks of `name` as one group spread over the cluster's hosts (see Groups.invokeGroup). */
  invokeGroup(name: string, size: number, input: Uint8Array, timeoutMs: number | undefined): Promise<Outcome[]> {
    return this.groups.invokeGroup(name, size, input, timeoutMs);
  }

  /** Leaves the cluster: stops taking calls, fails waiting ones, and forgets this host at once. */
  async close(): Promise<void> {
    const { ctx } = this;
    if (ctx.closed) return;
    ctx.closed = true;
    this.membership.stop();
    this.consumer.close();
    this.calls.close();
    this.groups.close();
    // Calls from the work streams that finish within a second still answer (later ones are cut
    // short by the pool's close and left to other hosts). A read queued while Redis is away
    // may never settle: do not wait for it past that second either.
    await Promise.race([Promise.allSettled([...this.loops, ...this.consumer.executing.values()]), sleep(1000)]);
    // Leave cleanly: calls still pending under this host are claimed by others at once.
    try {
      if (ctx.redis.status === 'ready') {
        await ctx.bounded(ctx.redis.zadd(ctx.keys.alive, 0, this.hostId));
      }
    } catch {
      // Redis is away: the heartbeat expires by itself.
    }
    ctx.disconnected = true;
    ctx.redis.disconnect();
  }
}
