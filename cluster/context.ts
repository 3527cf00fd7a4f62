/**
 * Main thread. What the parts of one host's membership share: its settings, the cluster's
 * keys, the command connection to Redis (with the cluster's scripts), the signed entry forms,
 * the count of calls running here, the live hosts at the last heartbeat, and the warnings.
 * Each part (membership, registry, calls, consumer, idempotency, groups) gets it from
 * cluster.ts; none of them keeps a second copy of any of this.
 */
import type { Redis } from 'ioredis';
import { ErrorCode, makeError, type NuvolaError } from '../runtime/errors.js';
import { connectRedis, type RedisTarget } from '../state/redis-connect.js';
import type { Outcome } from './codec.js';
import { Entries, type HostInfo, type Rejected } from './entries.js';
import { clusterKeys, SCRIPTS, type ClusterKeys } from './keys.js';
import type { LocalHost } from './port.js';
import { Seal } from './seal.js';
import type { ClusterSettings } from './settings.js';

/** The command connection, with the cluster's scripts (keys.ts) as commands. */
export interface Scripted extends Redis {
  nuvolaHeartbeat(
    alive: string,
    hosts: string,
    epoch: string,
    id: string,
    timeoutMs: number,
    info: string,
    fresh: string,
  ): Promise<[string[], string, (string | null)[]]>;
  nuvolaLive(alive: string, hosts: string): Promise<(string | null)[]>;
  nuvolaForget(alive: string, hosts: string, work: string, queue: string, poke: string, id: string): Promise<number>;
  nuvolaForgetPart(part: string, id: string): Promise<number>;
  nuvolaPublish(
    functions: string,
    module: string,
    name: string,
    hash: string,
    entry: string,
    bytes: Buffer,
    replace: string,
  ): Promise<number | string>;
  nuvolaRelease(key: string, value: string | Buffer): Promise<number>;
  nuvolaUnpublish(functions: string, module: string, name: string, hash: string): Promise<number>;
  nuvolaRoute(alive: string, queue: string, work: string, target: string, ...fields: (string | Buffer)[]): Promise<number>;
  nuvolaRenew(running: string, holder: string, leaseMs: number): Promise<number>;
  nuvolaBeginManyBuffer(keys: number, ...args: (string | number | Buffer)[]): Promise<[number, Buffer?][]>;
  nuvolaRecordManyBuffer(keys: number, ...args: (string | number | Buffer)[]): Promise<Buffer[]>;
  nuvolaGroupAdd(stream: string, ttlMs: number, ...fields: (string | Buffer)[]): Promise<number>;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** The wait before the `attempt`th retry of a write that must land (0, 1, 2 …): 100 ms more each time, at most 1 s. */
export const backoff = (attempt: number): Promise<void> => sleep(Math.min(1000, 100 * (attempt + 1)));

const NOT_SENT = 'the call was not sent — retry it (with an idempotency key, a retry never runs it twice to completion)';

/** Redis failed `what`; `outcome` says what became of the call and what to do. */
export function unavailable(what: string, err: unknown, outcome = NOT_SENT): NuvolaError {
  return makeError(
    ErrorCode.CLUSTER_UNAVAILABLE,
    `cluster: ${what} failed, Redis is unreachable or not answering (${(err as Error).message}); ${outcome}`,
    { cause: (err as Error).message },
  );
}

/** Resolves once `client` is connected; rejects after `ms`. */
export function ready(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection within ${ms} ms`)), ms);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class ClusterContext {
  /** The cluster's keys, for as many work partitions as this host uses (see {@link usePartitions}). */
  keys: ClusterKeys;
  /** Commands (the blocking reads have connections of their own, see {@link connect}). */
  readonly redis: Scripted;
  /** What hosts leave in Redis for each other, signed and verified. */
  readonly entries: Entries;
  /** Calls running on this host now (local and taken from the work streams). */
  inflight = 0;
  /** Calls this host has completed, local and remote. */
  completed = 0;
  /** Calls this host took from the work streams. */
  remote = 0;
  closed = false;
  /** Set when close() lets Redis go: no more answers. */
  disconnected = false;
  /** Hosts seen alive at the last heartbeat (this one included). */
  live: HostInfo[] = [];
  /** Outcomes of calls that never started (not recorded under an idempotency key). */
  readonly unstarted = new WeakSet<Outcome>();
  /** Runs after a call here ended and gave its room back (the consumer's: calls waiting for room start). */
  onRelease: () => void = () => undefined;
  private lastWarning = '';
  private readonly rejectedCounts: Rejected = { calls: 0, replies: 0, functions: 0, modules: 0, records: 0, hosts: 0, messages: 0 };
  /** When each kind of rejection was last logged (at most one line per kind per 10 s). */
  private readonly rejectedLogged = new Map<keyof Rejected, number>();

  constructor(
    readonly settings: ClusterSettings,
    private readonly target: RedisTarget,
    readonly host: LocalHost,
  ) {
    this.keys = clusterKeys(settings.name, Math.max(1, settings.partitions));
    this.entries = new Entries(new Seal(settings.secrets, settings.name), settings.hostId, (kind, what) => this.reject(kind, what));
    const redis = this.connect(false) as Scripted;
    for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, script);
    this.redis = redis;
  }

  get hostId(): string {
    return this.settings.hostId;
  }

  /** Work partitions this host reads (every live host reads at least as many as it sends to). */
  get partitions(): number {
    return this.keys.parts.length;
  }

  /**
   * Settles the number of work partitions before the host starts. A cluster has one count
   * (the partitions' keys depend on it): the first host to join stores its own —
   * `settings.partitions`, or when 0 the Redis topology's, one per master of a Redis Cluster
   * and 1 on a single Redis — and every later one takes the stored count.
   */
  async usePartitions(): Promise<void> {
    const { settings } = this;
    let n = settings.partitions;
    if (n === 0) {
      const nodes = (this.redis as unknown as { nodes?: (role: string) => unknown[] }).nodes;
      n = typeof nodes === 'function' ? Math.max(1, nodes.call(this.redis, 'master').length) : 1;
    }
    const key = this.keys.partitionCount;
    await this.bounded(this.redis.set(key, String(n), 'NX'));
    const stored = Number(await this.bounded(this.redis.get(key)));
    if (Number.isInteger(stored) && stored >= 1 && stored <= 256 && stored !== n) {
      this.warn(
        `cluster '${settings.name}': it spreads its work over ${stored} partitions (set by the first host that joined); this host's ${settings.partitions === 0 ? 'Redis topology' : 'cluster.partitions'} says ${n}, ignored. To change it, stop every host and delete ${key}`,
      );
      n = stored;
    }
    this.keys = clusterKeys(settings.name, n);
  }

  /** A new connection to the cluster's Redis: `blocking` for a reader that waits in XREAD. */
  connect(blocking: boolean): Redis {
    // Commands fail at once while Redis is away (the caller gets E_CLUSTER_UNAVAILABLE); the
    // blocking reads wait for the reconnection.
    const client = connectRedis(this.target, {
      offlineQueue: blocking,
      maxRetriesPerRequest: blocking ? null : 1,
      connectionName: `nuvola:${this.settings.name}:${this.settings.hostId}`,
    });
    client.on('error', (err: Error) => this.warn(`redis: ${err.message}`));
    return client;
  }

  /** Whether calls should stay here: this host runs fewer calls than its capacity. */
  hasRoom(): boolean {
    return this.inflight < this.settings.capacity;
  }

  /** Counts a call running on this host (for the capacity and the heartbeat's load). */
  track<T>(run: Promise<T>): Promise<T> {
    this.inflight++;
    const done = (): void => this.release();
    run.then(done, done);
    return run;
  }

  /** A call counted in `inflight` ended. */
  release(): void {
    this.inflight--;
    this.completed++;
    this.onRelease();
  }

  /**
   * Rejects when Redis has not answered `command` within max(1 s, hostTimeoutMs): a Redis that
   * stops answering (stopped, partitioned) must not hold a caller, a heartbeat or close()
   * forever. Only for commands off the per-call path (a timer per command there costs a fifth
   * of the throughput; those calls are bounded by their callers' deadlines instead).
   */
  bounded<T>(command: Promise<T>): Promise<T> {
    const ms = Math.max(1000, this.settings.hostTimeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no reply from Redis within ${ms} ms`)), ms);
    });
    return Promise.race([command, limit]).finally(() => clearTimeout(timer));
  }

  /** Logs a warning, unless it is the one logged last. */
  warn(message: string): void {
    if (message === this.lastWarning) return;
    this.lastWarning = message;
    this.host.log('warn', message);
  }

  /** What this host dropped for failing verification, by kind, since it joined. */
  get rejected(): Rejected {
    return { ...this.rejectedCounts };
  }

  /** Counts an entry that failed verification, and says so now and then. */
  reject(kind: keyof Rejected, what: string): void {
    this.rejectedCounts[kind]++;
    const now = Date.now();
    if (now - (this.rejectedLogged.get(kind) ?? 0) < 10_000) return;
    this.rejectedLogged.set(kind, now);
    this.host.log(
      'warn',
      `cluster '${this.settings.name}': dropped ${what}: it failed verification (${this.rejectedCounts[kind]} ${kind} so far). Something without the cluster's secret writes to its Redis, or a host has another cluster.secret — check Redis ACLs and every host's secret`,
    );
  }
}
