/**
 * Main thread. One host's membership in a cluster of runtimes that share a Redis: its
 * heartbeat, the cluster's function registry (module bytes stored once by content hash), the
 * shared work stream it routes calls through when it is busy and takes calls from when it is
 * not, its reply stream, the recovery of dead hosts' calls, and idempotency keys.
 *
 * Guarantees (docs/guides/many-hosts.md): a call sent through the work stream is delivered at least
 * once — if its host dies before answering, another host claims it once the dead host's
 * heartbeat has expired; the caller resolves or rejects exactly once, by its own deadline at
 * the latest (E_TIMEOUT). With an idempotency key, the first completion is recorded and every
 * later run or retry with that key answers with the recorded result, so the caller sees one
 * result even when the function ran twice (a host that was slow, not dead).
 *
 * Why it is this long: membership, registry, routing, recovery and groups over hosts share one
 * host's connections and state; issue 17 splits it (signing and entry forms already live in
 * seal.ts and entries.ts).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { ErrorCode, fromWire, makeError, NuvolaError, toWire, type WireError } from '../runtime/errors.js';
import { FUNCTION_DEFAULTS } from '../runtime/options.js';
import type { GroupPart } from '../runtime/pool.js';
import { connectRedis, type RedisTarget } from '../state/redis-connect.js';
import { refusedGrants, type Grants } from './grants.js';
import { decode, decodePart, encode, encodePart, Entries, type Outcome, type Rejected } from './entries.js';
import { Seal, sha256 } from './seal.js';

export { decode, encode, type Outcome, type Rejected } from './entries.js';
import { moduleHash, settle } from './outcome.js';

export { moduleHash, settle };
import {
  ANSWER,
  BEGIN,
  clusterKeys,
  FORGET,
  GROUP,
  GROUP_ADD,
  HEARTBEAT,
  LIVE,
  PUBLISH,
  RECORD,
  UNPUBLISH,
  RELEASE,
  RENEW,
  ROUTE,
  type ClusterKeys,
} from './keys.js';

/** Cluster settings (`createRuntime({ redis, cluster })`); times in ms. */
export interface ClusterSettings {
  name: string;
  /** The cluster's shared secrets: the first signs, every one verifies (see seal.ts). */
  secrets: string[];
  /** What this host gives functions fetched from the registry (see grants.ts). */
  grants: Grants;
  hostId: string;
  heartbeatMs: number;
  hostTimeoutMs: number;
  capacity: number;
  idempotencyTtlMs: number;
}

/** A live host as its last heartbeat described it. */
export interface HostInfo {
  id: string;
  hostname: string;
  pid: number;
  workers: number;
  /** Calls it runs at once before routing more to the cluster (0: it only sends). */
  capacity: number;
  /** Calls running on it at its last heartbeat. */
  inflight: number;
  /** Calls it has completed, local and remote. */
  completed: number;
  /** Calls it took from the work stream (sent by other hosts, or by itself when it was busy). */
  remote: number;
  /** It reads its own work stream, so calls can be sent to it for their state key. */
  ownStream?: boolean;
  startedAt: number;
  /**
   * Heartbeats it sent since it started: a reader lists a host only while this goes up (a
   * heartbeat put back in Redis by someone else does not keep a host that left listed).
   */
  beats?: number;
}

/** What the cluster needs from the runtime of its host. */
export interface LocalHost {
  workers: number;
  /** The content hash of `name`'s code when it is registered here as a module, else undefined. */
  hashOf(name: string): string | undefined;
  /**
   * Registers code fetched from the cluster's registry; with `replace`, in place of code
   * fetched before under the name (never of code registered on this host).
   */
  registerFetched(name: string, bytes: Uint8Array, options: Record<string, unknown>, replace: boolean): Promise<void>;
  /** Whether this host's local state tier holds `key`. */
  holds(key: string): boolean;
  /** Runs a registered function on this host's pool. */
  run(name: string, input: Uint8Array, timeoutMs: number): Promise<{ output: Uint8Array; returnCode: number }>;
  /** Runs some ranks of a group whose other ranks are on other hosts. */
  runPart(
    name: string,
    size: number,
    input: Uint8Array,
    timeoutMs: number,
    part: GroupPart,
  ): Promise<{ output: Uint8Array; returnCode: number }[]>;
  /** A message from a rank on another host to a rank of the part `id`. */
  deliver(id: number, from: number, to: number, data: SharedArrayBuffer): void;
  /** A rank on another host failed: the part `id` stops. */
  abortPart(id: number, error: NuvolaError): void;
  log(level: 'info' | 'warn', message: string): void;
}

interface Pending {
  /** Gets the reply's record (see {@link encode}). */
  resolve: (record: Buffer) => void;
  timer: NodeJS.Timeout;
}

interface Scripted extends Redis {
  nuvolaHeartbeat(
    alive: string,
    hosts: string,
    epoch: string,
    id: string,
    timeoutMs: number,
    info: string,
    fresh: string,
  ): Promise<[string[], string]>;
  nuvolaLive(alive: string, hosts: string): Promise<(string | null)[]>;
  nuvolaForget(alive: string, hosts: string, work: string, queue: string, poke: string, id: string): Promise<number>;
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
  nuvolaBeginBuffer(done: string, running: string, holder: string, leaseMs: number): Promise<[number, Buffer?]>;
  nuvolaRenew(running: string, holder: string, leaseMs: number): Promise<number>;
  nuvolaRecordBuffer(done: string, running: string, holder: string, ttlMs: number, record: Buffer): Promise<Buffer>;
  nuvolaAnswer(
    work: string,
    reply: string,
    group: string,
    entry: string,
    id: string,
    record: Buffer,
    ttlMs: number,
    mac: Buffer,
  ): Promise<number>;
  nuvolaGroupAdd(stream: string, ttlMs: number, ...fields: (string | Buffer)[]): Promise<number>;
}

type StreamEntry = [id: Buffer, fields: Buffer[]];

/** How long a function's registered timeout is trusted before it is looked up again, in ms. */
const TIMEOUT_CACHE_MS = 10_000;

/** Hex digits of a code hash a call carries (see send). */
const HASH_PREFIX = 16;

/** How long joining waits for Redis to answer, in ms. */
const JOIN_WAIT_MS = 5000;

/** Resolves once `client` is connected; rejects after `ms`. */
function ready(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection within ${ms} ms`)), ms);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

const NOT_SENT = 'the call was not sent — retry it (with an idempotency key, a retry never runs it twice to completion)';

function unavailable(what: string, err: unknown, outcome = NOT_SENT): NuvolaError {
  return makeError(
    ErrorCode.CLUSTER_UNAVAILABLE,
    `cluster: ${what} failed, Redis is unreachable or not answering (${(err as Error).message}); ${outcome}`,
    { cause: (err as Error).message },
  );
}

export class Cluster {
  readonly keys: ClusterKeys;
  /** Commands. */
  private readonly redis: Scripted;
  /** Blocking reads of the work stream. */
  private readonly workReader: Redis;
  /** Blocking reads of this host's own work stream. */
  private readonly queueReader: Redis;
  /** Blocking reads of this host's reply stream. */
  private readonly replyReader: Redis;
  /** Blocking reads of the inboxes of the group ranks running here. */
  private readonly inboxReader: Redis;
  /**
   * Parts of groups spread over hosts that run here, by `<group id>/<first rank>` (one host may
   * run two parts of a group).
   */
  private readonly parts = new Map<string, { group: string; part: GroupPart }>();
  private readonly pending = new Map<string, Pending>();
  /**
   * Calls with an idempotency key this host runs now, by their lease's key (see
   * ClusterKeys.running) → the lease's holder value: renewed with the heartbeat.
   */
  private readonly leases = new Map<string, string>();
  /** Registered timeouts of functions this host calls without having them (see timeoutOf). */
  private readonly timeouts = new Map<string, { ms: number; at: number }>();
  /**
   * Runs of idempotency keys on this host, by function and key, with their input's hash: a
   * second call with a running key and the same input joins it.
   */
  private readonly keyedRuns = new Map<string, { input: string; run: Promise<Outcome> }>();
  /**
   * Groups with a part taken here, by group id: the parts running here, and the first ranks of
   * every part taken here since the first of them started (a copied entry is not run twice).
   */
  private readonly groupRuns = new Map<string, { active: number; firsts: Set<number> }>();
  /** Calls sent to this host's own stream that wait here for room (see release). */
  private readonly waiting: [string, StreamEntry][] = [];
  /** Outcomes of calls that never started (not recorded under an idempotency key). */
  private readonly unstarted = new WeakSet<Outcome>();
  /**
   * Calls taken from a work stream and running here, as `<stream> <entry id>`, each settling
   * when it is done (close() gives them a moment to answer).
   */
  private readonly executing = new Map<string, Promise<void>>();
  /** The calls this host is done with (answered or moved on), the last 4096, as in `executing`. */
  private readonly answered = new Set<string>();
  /** Fetches of functions from the registry in progress, by name. */
  private readonly fetching = new Map<string, Promise<void>>();
  private readonly startedAt = Date.now();
  private inflight = 0;
  private completed = 0;
  private remote = 0;
  private closed = false;
  /** Set when close() lets Redis go: no more answers. */
  private disconnected = false;
  /** The work loops waiting for room. */
  private readonly slotFreed = new Set<() => void>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private loops: Promise<void>[] = [];
  /** Hosts seen alive at the last heartbeat (this one included). */
  private live: HostInfo[] = [];
  private lastWarning = '';
  private ticking = false;
  /** The cluster's epoch at the last heartbeat (see HEARTBEAT). */
  private epoch: string | undefined;
  /** A republish failed while Redis was away: try again at the next beat. */
  private republishAgain = false;
  /** What this host published (for {@link republish}), by name. */
  private readonly published = new Map<string, { bytes: Uint8Array; options: Record<string, unknown> }>();
  private recovering = false;
  /** Connections each work stream reader made so far (see workLoop). */
  private readonly connections = new Map<Redis, number>();
  /** Per host id, its latest heartbeat seen here and when it was first seen (see hosts()). */
  private readonly beatsSeen = new Map<string, { startedAt: number; beats: number; at: number }>();
  /** Heartbeats this host sent. */
  private beats = 0;
  /** What hosts leave in Redis for each other, signed and verified. */
  private readonly entries: Entries;
  private readonly rejectedCounts: Rejected = { calls: 0, replies: 0, functions: 0, modules: 0, records: 0, hosts: 0, messages: 0 };
  /** When each kind of rejection was last logged (at most one line per kind per 10 s). */
  private readonly rejectedLogged = new Map<keyof Rejected, number>();

  private constructor(
    readonly settings: ClusterSettings,
    target: RedisTarget,
    private readonly host: LocalHost,
  ) {
    this.keys = clusterKeys(settings.name);
    this.entries = new Entries(new Seal(settings.secrets, settings.name), settings.hostId, (kind, what) => this.reject(kind, what));
    const connect = (blocking: boolean): Redis => {
      // Commands fail at once while Redis is away (the caller gets E_CLUSTER_UNAVAILABLE); the
      // blocking reads wait for the reconnection.
      const client = connectRedis(target, {
        offlineQueue: blocking,
        maxRetriesPerRequest: blocking ? null : 1,
        connectionName: `nuvola:${settings.name}:${settings.hostId}`,
      });
      client.on('error', (err: Error) => this.warn(`redis: ${err.message}`));
      return client;
    };
    const redis = connect(false) as Scripted;
    redis.defineCommand('nuvolaHeartbeat', { numberOfKeys: 3, lua: HEARTBEAT });
    redis.defineCommand('nuvolaLive', { numberOfKeys: 2, lua: LIVE });
    redis.defineCommand('nuvolaForget', { numberOfKeys: 5, lua: FORGET });
    redis.defineCommand('nuvolaPublish', { numberOfKeys: 2, lua: PUBLISH });
    redis.defineCommand('nuvolaRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('nuvolaUnpublish', { numberOfKeys: 2, lua: UNPUBLISH });
    redis.defineCommand('nuvolaRoute', { numberOfKeys: 3, lua: ROUTE });
    redis.defineCommand('nuvolaBegin', { numberOfKeys: 2, lua: BEGIN });
    redis.defineCommand('nuvolaRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('nuvolaRecord', { numberOfKeys: 2, lua: RECORD });
    redis.defineCommand('nuvolaAnswer', { numberOfKeys: 2, lua: ANSWER });
    redis.defineCommand('nuvolaGroupAdd', { numberOfKeys: 1, lua: GROUP_ADD });
    this.redis = redis;
    this.workReader = connect(true);
    this.queueReader = connect(true);
    for (const reader of [this.workReader, this.queueReader]) {
      reader.on('ready', () => this.connections.set(reader, (this.connections.get(reader) ?? 0) + 1));
    }
    this.replyReader = connect(true);
    this.inboxReader = connect(true);
  }

  /** Joins the cluster: creates the work stream's group if needed, beats once, starts the loops. */
  static async join(settings: ClusterSettings, target: RedisTarget, host: LocalHost): Promise<Cluster> {
    const cluster = new Cluster(settings, target, host);
    try {
      await ready(cluster.redis, JOIN_WAIT_MS);
      await cluster.createGroups();
      await cluster.beat();
    } catch (err) {
      await cluster.close();
      throw makeError(
        ErrorCode.CLUSTER_UNAVAILABLE,
        `cluster '${settings.name}': could not join, Redis is unreachable (${(err as Error).message}); start Redis or check the redis option`,
        { cluster: settings.name },
      );
    }
    cluster.heartbeatTimer = setInterval(() => void cluster.tick(), settings.heartbeatMs);
    cluster.loops = [cluster.replyLoop(), cluster.inboxLoop()];
    // A host that only sends (capacity 0) takes no calls.
    if (settings.capacity > 0) {
      cluster.loops.push(
        cluster.workLoop(cluster.workReader, cluster.keys.work),
        cluster.workLoop(cluster.queueReader, cluster.keys.queue(cluster.hostId)),
      );
    }
    return cluster;
  }

  get hostId(): string {
    return this.settings.hostId;
  }

  /** The consumer group on the shared work stream and on this host's own (from their start). */
  private async createGroups(): Promise<void> {
    for (const stream of [this.keys.work, this.keys.queue(this.hostId)]) {
      await this.redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
        if (!err.message.includes('BUSYGROUP')) throw err;
      });
    }
  }

  /** Live hosts, read from Redis now. */
  async hosts(): Promise<HostInfo[]> {
    let infos: (string | null)[];
    try {
      infos = await this.bounded(this.redis.nuvolaLive(this.keys.alive, this.keys.hosts));
    } catch (err) {
      throw unavailable('listing hosts', err, 'ask again once Redis is back');
    }
    const hosts = new Map<string, HostInfo>();
    const present = new Set<string>();
    const now = Date.now();
    for (const value of infos) {
      if (value === null) continue;
      const info = this.entries.openHeartbeat(value);
      if (info === undefined) continue;
      present.add(info.id);
      // Listed while its heartbeats go on: one that has not gone up for hostTimeoutMs (as
      // seen here) was put back by someone else, its host gone.
      const seen = this.beatsSeen.get(info.id);
      const beats = info.beats ?? 0;
      if (seen === undefined || info.startedAt > seen.startedAt || (info.startedAt === seen.startedAt && beats > seen.beats)) {
        this.beatsSeen.set(info.id, { startedAt: info.startedAt, beats, at: now });
      } else if (info.id !== this.hostId && now - seen.at > this.settings.hostTimeoutMs) {
        continue;
      }
      hosts.set(info.id, info);
    }
    // Forgotten once Redis no longer lists it (a stale one stays remembered while it is there).
    for (const id of this.beatsSeen.keys()) if (!present.has(id)) this.beatsSeen.delete(id);
    return [...hosts.values()];
  }

  /** What this host dropped for failing verification, by kind, since it joined. */
  get rejected(): Rejected {
    return { ...this.rejectedCounts };
  }

  /** Counts an entry that failed verification, and says so now and then. */
  private reject(kind: keyof Rejected, what: string): void {
    this.rejectedCounts[kind]++;
    const now = Date.now();
    if (now - (this.rejectedLogged.get(kind) ?? 0) < 10_000) return;
    this.rejectedLogged.set(kind, now);
    this.host.log(
      'warn',
      `cluster '${this.settings.name}': dropped ${what}: it failed verification (${this.rejectedCounts[kind]} ${kind} so far). Something without the cluster's secret writes to its Redis, or a host has another cluster.secret — check Redis ACLs and every host's secret`,
    );
  }

  private forgedEntry(name: string): NuvolaError {
    return makeError(
      ErrorCode.CLUSTER_INTEGRITY,
      `the registry entry of '${name}' in cluster '${this.settings.name}' failed verification (not written by a host with the cluster's secret) and was not used; register the function again from a host, and check who may write to Redis`,
      { function: name, cluster: this.settings.name },
    );
  }

  /** Publishes a registration: the bytes once by content hash, the name with its options. */
  async publish(name: string, bytes: Uint8Array, options: Record<string, unknown>): Promise<void> {
    const hash = moduleHash(bytes);
    // Kept (a copy: the caller may reuse its buffer) before the script is sent, so that an
    // unregister() meanwhile, whose script Redis runs after this one, also forgets it here.
    const mine = { bytes: new Uint8Array(bytes), options };
    this.published.set(name, mine);
    const forget = (): void => {
      if (this.published.get(name) === mine) this.published.delete(name);
    };
    let published: number | string = 1;
    // An entry under the name that fails verification does not stand: it is replaced (once).
    let forged = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        // One script: two hosts publishing other code under one name at once cannot both win.
        published = await this.bounded(
          this.redis.nuvolaPublish(
            this.keys.functions,
            this.keys.module(hash),
            name,
            hash,
            this.entries.registration(name, hash, options),
            Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
            forged,
          ),
        );
      } catch (err) {
        forget();
        throw unavailable(`registering '${name}'`, err, 'nothing was registered — register it again once Redis is back');
      }
      if (typeof published !== 'string' || this.entries.openRegistration(name, published) !== undefined) break;
      forged = published;
    }
    if (published !== 1) {
      forget();
      throw makeError(
        ErrorCode.ALREADY_REGISTERED,
        `cluster '${this.settings.name}' already has a function named '${name}' with other code; unregister() it (on any host) first or pick another name`,
        { function: name, cluster: this.settings.name },
      );
    }
  }

  /**
   * Removes a name from the cluster's registry if it still stands for the code of `hash`, and
   * the code's bytes once no other name uses them (hosts that loaded it keep it until they
   * unregister it). One script, sent at once: a later publish from this host comes after it.
   */
  async unpublish(name: string, hash: string): Promise<void> {
    this.published.delete(name);
    try {
      await this.bounded(this.redis.nuvolaUnpublish(this.keys.functions, this.keys.module(hash), name, hash));
    } catch (err) {
      throw unavailable(
        `unregistering '${name}'`,
        err,
        "the name stays in the cluster's registry — unregister it again once Redis is back",
      );
    }
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

  private release(): void {
    this.inflight--;
    this.completed++;
    // Calls sent to this host for their state key wait here for room, not back in the stream.
    while (this.waiting.length > 0 && this.inflight < this.settings.capacity) {
      const [stream, entry] = this.waiting.shift()!;
      void this.execute(stream, entry);
    }
    for (const freed of this.slotFreed) freed();
    this.slotFreed.clear();
  }

  /**
   * Where a call naming `stateKey` should run: the key's home, the live host that takes calls
   * which the key hashes to (rendezvous hashing: while the hosts stay the same every call
   * naming the key goes there, so that host holds the key in its local tier) — unless the
   * home was full at its last heartbeat: then this host if its local tier holds the key and
   * it has room, else undefined (wherever there is room).
   */
  placeOf(stateKey: string): string | undefined {
    // (Hosts of an earlier version, without their own stream, are no homes.)
    const home = homeOf(
      stateKey,
      this.live.filter((h) => h.capacity > 0 && h.ownStream === true),
    );
    if (home?.id === this.hostId) return this.hostId; // here, or sent when this host is full
    if (home !== undefined && home.inflight < home.capacity) return home.id;
    return this.hasRoom() && this.host.holds(stateKey) ? this.hostId : undefined;
  }

  /**
   * Whether a call (naming `stateKey`, if any) should run on this host rather than be sent.
   * A `nested` call (a running guest's `chain.call`) also runs here when this host is full but
   * no other host had room at the last heartbeat: sent, it would wait for room that the calls
   * waiting on it hold.
   */
  runsHere(stateKey: string | undefined, nested = false): boolean {
    if (!this.hasRoom()) {
      return (
        nested && this.settings.capacity > 0 && !this.live.some((h) => h.id !== this.hostId && h.capacity > 0 && h.inflight < h.capacity)
      );
    }
    if (stateKey === undefined) return true;
    const place = this.placeOf(stateKey);
    return place === undefined || place === this.hostId;
  }

  /**
   * Runs `name` somewhere in the cluster: here when the function is known here (or in the
   * registry) and this host has room, else through the work stream; with `stateKey`, on the
   * host {@link placeOf} picks. With `idempotencyKey`, a key that completed before answers
   * with its recorded result. `nested`: see {@link runsHere}.
   */
  async invoke(
    name: string,
    input: Uint8Array,
    timeoutMs: number | undefined,
    idempotencyKey?: string,
    stateKey?: string,
    nested = false,
  ): Promise<Outcome> {
    // Undefined: the timeout the function was registered with (from the registry).
    const deadline = Date.now() + (timeoutMs ?? (await this.timeoutOf(name)));
    if (
      this.runsHere(stateKey, nested) &&
      (this.host.hashOf(name) !== undefined || (await this.known(name))) &&
      // Looked up in the registry meanwhile: other calls may have taken the room.
      this.runsHere(stateKey, nested)
    ) {
      return idempotencyKey === undefined
        ? this.track(this.runHere(name, input, deadline))
        : this.track(this.keyed(idempotencyKey, deadline, name, input, () => this.runHere(name, input, deadline)));
    }
    const place = stateKey === undefined ? undefined : this.placeOf(stateKey);
    return this.send(name, input, deadline, idempotencyKey, place === this.hostId ? undefined : place);
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
    if (!this.live.some((h) => h.capacity > 0)) {
      // The list is from the last heartbeat: look again before saying no.
      try {
        this.live = await this.hosts();
      } catch (err) {
        const cause = (err as NuvolaError).details?.['cause'] ?? (err as Error).message;
        return { error: unavailable(`finding a host for '${name}'`, new Error(String(cause))).toWire() };
      }
    }
    if (!this.live.some((h) => h.capacity > 0)) {
      return {
        error: makeError(
          ErrorCode.CLUSTER_UNAVAILABLE,
          `cluster '${this.settings.name}': no live host takes calls (every host has capacity 0, or none is alive); start a host`,
          { function: name, cluster: this.settings.name },
        ).toWire(),
      };
    }
    // The code this host knows under the name: a host with older code fetches this one.
    const fields: (string | Buffer)[] = ['fn', name, ...this.codeField(name)];
    if (input.byteLength > 0) fields.push('in', Buffer.from(input.buffer, input.byteOffset, input.byteLength));
    if (idempotencyKey !== undefined) fields.push('idem', idempotencyKey);
    return decode(await this.request(name, fields, deadline, target));
  }

  /**
   * Adds a call to the work stream and resolves with its reply's record, or with an error
   * record at the deadline or when Redis is away.
   */
  private request(name: string, fields: (string | Buffer)[], deadline: number, target?: string): Promise<Buffer> {
    const id = randomUUID();
    const answer = new Promise<Buffer>((resolve) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          const error = makeError(
            ErrorCode.TIMEOUT,
            `'${name}' sent to cluster '${this.settings.name}' got no answer within its timeout; with an idempotency key a retry returns the result if it completed`,
            { function: name, cluster: this.settings.name, invocation: id },
          );
          resolve(encode({ error: error.toWire() }));
        },
        Math.max(1, deadline - Date.now()),
      );
      this.pending.set(id, { resolve, timer });
    });
    const entry = this.entries.call(['id', id, 'from', this.hostId, 'dl', String(deadline), ...fields]);
    // Not awaited: the deadline's timer settles the call even when Redis never answers.
    const sent =
      target === undefined
        ? this.redis.xadd(this.keys.work, '*', ...entry)
        : this.redis.nuvolaRoute(this.keys.alive, this.keys.queue(target), this.keys.work, target, ...entry);
    sent.catch((err: unknown) => {
      const pending = this.pending.get(id);
      if (pending !== undefined) {
        clearTimeout(pending.timer);
        this.pending.delete(id);
        pending.resolve(encode({ error: unavailable(`sending '${name}'`, err).toWire() }));
      }
    });
    return answer;
  }

  /**
   * The `timeoutMs` `name` was registered with (the default when it gave none, or when the
   * registry cannot be read), cached per name; a fetch of the name refreshes it.
   */
  private async timeoutOf(name: string): Promise<number> {
    const cached = this.timeouts.get(name);
    // Looked up again after a while: the name may have been registered again with another.
    if (cached !== undefined && Date.now() - cached.at < TIMEOUT_CACHE_MS) return cached.ms;
    let entry: string | null = null;
    try {
      entry = await this.bounded(this.redis.hget(this.keys.functions, name));
    } catch {
      // Redis is away: the call will say so; the default bounds it meanwhile.
    }
    const verified = entry === null ? undefined : this.entries.openRegistration(name, entry);
    return verified === undefined ? FUNCTION_DEFAULTS.timeoutMs : this.noteTimeout(name, verified.options);
  }

  /** Caches the timeout of a registration. */
  private noteTimeout(name: string, options: Record<string, unknown>): number {
    const ms = typeof options['timeoutMs'] === 'number' ? options['timeoutMs'] : FUNCTION_DEFAULTS.timeoutMs;
    this.timeouts.delete(name); // (re-inserted last: the oldest go first below)
    this.timeouts.set(name, { ms, at: Date.now() });
    if (this.timeouts.size > 4096) this.timeouts.delete(this.timeouts.keys().next().value!);
    return ms;
  }

  /** `name` is neither registered here nor in the cluster's registry. */
  private unknown(name: string): NuvolaError {
    return makeError(
      ErrorCode.UNKNOWN_FUNCTION,
      `no function named '${name}' is registered on this host or in cluster '${this.settings.name}'; register() it first`,
      { function: name, cluster: this.settings.name },
    );
  }

  /**
   * The field naming the code this host knows under `name`, if any: its first 64 bits, enough
   * to tell two codes under one name apart, and short per entry.
   */
  private codeField(name: string): string[] {
    const hash = this.host.hashOf(name);
    return hash === undefined ? [] : ['h', hash.slice(0, HASH_PREFIX)];
  }

  /** Whether the cluster's registry has `name` (fetching and registering it here on the way). */
  private async known(name: string): Promise<boolean> {
    try {
      await this.fetch(name, undefined);
      return true;
    } catch (err) {
      if ((err as NuvolaError).code === ErrorCode.UNKNOWN_FUNCTION) throw err;
      return false;
    }
  }

  /**
   * Makes sure `name` is registered here. `hash` is the code the caller knows under the name:
   * when this host has other code, the registry decides — code fetched before is replaced by
   * the registry's (it was registered again); code registered on this host stays and the call
   * fails with E_ALREADY_REGISTERED.
   */
  private async fetch(name: string, hash: string | undefined): Promise<void> {
    for (;;) {
      const have = this.host.hashOf(name);
      if (have !== undefined && (hash === undefined || have.startsWith(hash))) return;
      const loading = this.fetching.get(name);
      if (loading === undefined) break;
      await loading; // another fetch of the name: then look again
    }
    const loading = (async () => {
      const have = this.host.hashOf(name);
      let entry: string | null;
      try {
        entry = await this.bounded(this.redis.hget(this.keys.functions, name));
      } catch (err) {
        throw unavailable(`looking up '${name}'`, err, 'the call did not run — retry it');
      }
      if (entry === null) {
        if (have !== undefined) return; // unregistered from the cluster: this host keeps its copy
        throw this.unknown(name);
      }
      const verified = this.entries.openRegistration(name, entry);
      if (verified === undefined) throw this.forgedEntry(name);
      const { hash: stored, options } = verified;
      this.noteTimeout(name, options);
      if (have === stored) return;
      // A registration from elsewhere gets only the host resources this host grants.
      const refused = refusedGrants(options, this.settings.grants);
      if (refused !== undefined) {
        throw makeError(
          ErrorCode.CLUSTER_GRANT,
          `'${name}' from cluster '${this.settings.name}' asks for ${refused}, which host '${this.hostId}' does not grant; it does not run here — add it to this host's cluster.grants, or register the function without it`,
          { function: name, cluster: this.settings.name, host: this.hostId, refused },
        );
      }
      let bytes: Buffer | null;
      try {
        bytes = await this.bounded(this.redis.getBuffer(this.keys.module(stored)));
      } catch (err) {
        throw unavailable(`fetching the code of '${name}'`, err, 'the call did not run — retry it');
      }
      if (bytes === null) {
        throw makeError(ErrorCode.UNKNOWN_FUNCTION, `cluster '${this.settings.name}' lost the code of '${name}'; register it again`, {
          function: name,
        });
      }
      // The entry names the hash; the bytes must be the ones it names.
      if (moduleHash(bytes) !== stored) {
        this.reject('modules', `the code of '${name}' (its bytes do not match their content hash)`);
        throw makeError(
          ErrorCode.CLUSTER_INTEGRITY,
          `the code of '${name}' fetched from cluster '${this.settings.name}' does not match its content hash and was not used; register the function again from a host, and check who may write to Redis`,
          { function: name, cluster: this.settings.name, hash: stored },
        );
      }
      await this.host.registerFetched(name, new Uint8Array(bytes), options, have !== undefined);
    })().finally(() => this.fetching.delete(name));
    this.fetching.set(name, loading);
    await loading;
  }

  /** Runs a call on this host's pool (the caller counts it in `inflight`). */
  private async runHere(name: string, input: Uint8Array, deadline: number, hash?: string): Promise<Outcome> {
    try {
      await this.fetch(name, hash);
      const left = deadline - Date.now();
      if (left <= 0) throw makeError(ErrorCode.TIMEOUT, `'${name}' reached this host after its deadline`, { function: name });
    } catch (err) {
      // It never started: an idempotency key's lease is given back, nothing recorded.
      const outcome = { error: toWire(err, ErrorCode.GUEST_TRAP) };
      this.unstarted.add(outcome);
      return outcome;
    }
    try {
      const { output, returnCode } = await this.host.run(name, input, deadline - Date.now());
      return { output, returnCode, host: this.hostId };
    } catch (err) {
      const outcome = { error: toWire(err, ErrorCode.GUEST_TRAP) };
      // Closing: the call was cut short, not answered by the guest; another host may run it.
      // Timed out in its worker's queue: it never started.
      if (outcome.error.code === ErrorCode.CLOSED || outcome.error.details?.['started'] === false) this.unstarted.add(outcome);
      return outcome;
    }
  }

  /**
   * Runs `run` once per idempotency key across the cluster: a recorded result answers at once;
   * while this host runs the key another call with it joins that run; while another host
   * holds the key's lease this one waits for its record (or for the lease to lapse, when that
   * host died, and then runs it itself). Outcomes of calls that never started (the deadline
   * passed first, the code could not be fetched, the runtime closed) are not recorded.
   */
  private async keyed(key: string, deadline: number, name: string, input: Uint8Array, run: () => Promise<Outcome>): Promise<Outcome> {
    // No function has a space in its name (register() refuses it), and the key's Redis names
    // rely on that (`done:<fn> <key>`): 'a b' with key 'c' would name the record of 'a' with
    // key 'b c' — and, failing its MAC there, delete it. Such a name is no function.
    if (name.includes(' ')) {
      const outcome: Outcome = { error: this.unknown(name).toWire() };
      this.unstarted.add(outcome);
      return outcome;
    }
    const inputHash = sha256(input).toString('hex');
    const id = `${name} ${key}`;
    for (;;) {
      const joined = this.keyedRuns.get(id);
      if (joined === undefined) {
        const running = this.keyedRun(key, deadline, name, inputHash, run).finally(() => this.keyedRuns.delete(id));
        this.keyedRuns.set(id, { input: inputHash, run: running });
        return running;
      }
      if (joined.input !== inputHash) return this.conflict(name, key);
      // Joined by this call's own deadline; a run that never started (its deadline was
      // shorter, say) leaves this one to try itself.
      let timer: NodeJS.Timeout | undefined;
      const own = new Promise<Outcome>((resolve) => {
        timer = setTimeout(
          () =>
            resolve(
              this.late(
                name,
                key,
                'was still running on this host (another call with the key) at its deadline; that run records its result',
              ),
            ),
          Math.max(1, deadline - Date.now()),
        );
      });
      const outcome = await Promise.race([joined.run, own]).finally(() => clearTimeout(timer));
      if (this.unstarted.has(outcome) && Date.now() < deadline) {
        await joined.run; // settled already, or about to: its entry goes with it
        continue;
      }
      return outcome;
    }
  }

  /** The outcome of a keyed call whose deadline came before it started (not recorded). */
  private late(name: string, key: string, why = 'did not start before its deadline (nothing is recorded under the key)'): Outcome {
    const outcome: Outcome = {
      error: makeError(ErrorCode.TIMEOUT, `'${name}' with idempotency key '${key}' ${why}`, {
        function: name,
        idempotencyKey: key,
      }).toWire(),
    };
    this.unstarted.add(outcome);
    return outcome;
  }

  /** The outcome of a keyed call whose key names a call of the function with another input (not recorded). */
  private conflict(name: string, key: string): Outcome {
    const outcome: Outcome = {
      error: makeError(
        ErrorCode.IDEMPOTENCY_CONFLICT,
        `idempotency key '${key}' already names a call of '${name}' with another input; the call did not run — a key names one invocation: use a new key for new input`,
        { function: name, idempotencyKey: key },
      ).toWire(),
    };
    this.unstarted.add(outcome);
    return outcome;
  }

  private async keyedRun(key: string, deadline: number, name: string, inputHash: string, run: () => Promise<Outcome>): Promise<Outcome> {
    const done = this.keys.done(name, key);
    const running = this.keys.running(name, key);
    // The lease names the input too: a call with another input sees the conflict at once.
    const holder = this.entries.lease(name, key, inputHash);
    try {
      for (;;) {
        if (Date.now() >= deadline) return this.late(name, key);
        const [state, value] = await this.bounded(this.redis.nuvolaBeginBuffer(done, running, holder, this.settings.hostTimeoutMs));
        if (state === 1) {
          const record = this.entries.openRecord(name, key, value!);
          if (record !== undefined) return record.input === inputHash ? record.outcome : this.conflict(name, key);
          // Forged: it does not stand (dropped unless replaced meanwhile); look again.
          await this.bounded(this.redis.nuvolaRelease(done, value!));
          continue;
        }
        if (state === 0) break;
        const leased = this.entries.openLease(name, key, value!.toString());
        if (leased === undefined) {
          // Planted: it does not stand (dropped unless replaced meanwhile); look again.
          await this.bounded(this.redis.nuvolaRelease(running, value!));
          continue;
        }
        if (leased !== inputHash) return this.conflict(name, key);
        if (Date.now() >= deadline) {
          return this.late(name, key, 'was still running on another host at its deadline; that run records its result');
        }
        await sleep(Math.min(50, this.settings.heartbeatMs));
      }
    } catch (err) {
      const outcome: Outcome = {
        error: unavailable(
          `starting the call with idempotency key '${key}'`,
          err,
          'the call did not run — retry it with the same key',
        ).toWire(),
      };
      this.unstarted.add(outcome);
      return outcome;
    }
    this.leases.set(running, holder);
    try {
      const outcome = await run();
      if (this.unstarted.has(outcome)) {
        void this.bounded(this.redis.nuvolaRelease(running, holder)).catch(() => 0); // else it lapses by itself
        return outcome;
      }
      // It ran: the record must be written, or a retry would run it again. Keep trying while
      // the caller waits (the lease is renewed meanwhile); past that, answer with the outcome.
      const record = this.entries.record(name, key, inputHash, outcome);
      for (let attempt = 0; ; attempt++) {
        try {
          const stands = await this.bounded(this.redis.nuvolaRecordBuffer(done, running, holder, this.settings.idempotencyTtlMs, record));
          const opened = this.entries.openRecord(name, key, stands);
          if (opened !== undefined) return opened.input === inputHash ? opened.outcome : this.conflict(name, key);
          // A forged record was there first: dropped, then this one is recorded.
          await this.bounded(this.redis.nuvolaRelease(done, stands));
          if (Date.now() >= deadline) return outcome;
        } catch (err) {
          if (this.closed || Date.now() >= deadline) {
            this.warn(
              `cluster: the result for idempotency key '${key}' could not be recorded (${(err as Error).message}); a retry with the key may run it again`,
            );
            return outcome;
          }
          await sleep(Math.min(1000, 100 * (attempt + 1)));
        }
      }
    } finally {
      this.leases.delete(running);
    }
  }

  /**
   * Takes calls from one work stream (the shared one, or this host's own) while this host has
   * room. One loop and one connection per stream: a read blocking on both streams at once
   * cost a seventh of the throughput through the shared one (`nuvola bench cluster`).
   */
  private async workLoop(reader: Redis, stream: string): Promise<void> {
    // First the calls a previous life of this host id took and never answered ('0': this
    // consumer's pending entries, then after the last one read), then new ones ('>').
    let from = '0';
    // The first pass reads what a previous process of this host id took (it may have run
    // partly); a later one, after a reconnection, what this process's lost reads took.
    let retaken = true;
    let connections = this.connections.get(reader) ?? 0;
    const own = stream !== this.keys.work;
    while (!this.closed) {
      if (connections !== (this.connections.get(reader) ?? 0)) {
        // Reconnected: a read whose reply was lost left calls pending under this host. Read
        // the pending ones again (those running here, or done with, are skipped).
        connections = this.connections.get(reader) ?? 0;
        from = '0';
      }
      const room = this.settings.capacity - this.inflight - (own ? this.waiting.length : 0);
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
        const id = this.hostId;
        // Reading history never blocks.
        read = (
          from !== '>'
            ? await reader.xreadgroupBuffer('GROUP', GROUP, id, 'COUNT', room, 'STREAMS', stream, from)
            : await reader.xreadgroupBuffer('GROUP', GROUP, id, 'COUNT', room, 'BLOCK', 1000, 'STREAMS', stream, from)
        ) as [Buffer, StreamEntry[]][] | null;
      } catch (err) {
        if (this.closed) return;
        if ((err as Error).message.includes('NOGROUP')) {
          await this.createGroups().catch(() => undefined);
        } else {
          this.warn(`cluster: reading the work stream failed (${(err as Error).message}); retrying`);
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
        if (this.inflight < this.settings.capacity) void this.execute(stream, entry);
        else if (own) this.waiting.push([stream, entry]);
        else void this.handBack(stream, entry);
      }
    }
  }

  /**
   * Moves a call this host (or a dead one) took, or that waits in a dead host's own stream,
   * to the end of the shared work stream, for any host.
   */
  private async handBack(stream: string, [entryId, raw]: StreamEntry): Promise<void> {
    if (raw === null || raw === undefined) return;
    try {
      await this.redis
        .multi()
        .xadd(this.keys.work, '*', ...raw)
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
   * Runs one call taken from `stream` and answers its caller; counted in `inflight` until
   * answered. `retaken`: the call was taken before, by a host now dead or by a previous life
   * of this host id, and may have run partly.
   */
  private async execute(stream: string, [entryId, raw]: StreamEntry, retaken = false): Promise<void> {
    if (raw === null || raw === undefined) return; // deleted meanwhile
    const entry = `${stream} ${entryId.toString()}`;
    // Read again after a reconnection: it runs here already, or has just been answered.
    if (this.executing.has(entry) || this.answered.has(entry)) return;
    if (!this.entries.verifiedCall(raw, `call entry ${entryId.toString()} of ${stream}`)) {
      // Injected or altered: never run, never answered (its reply route is not to be trusted).
      this.done(entry);
      await this.redis
        .multi()
        .xack(stream, GROUP, entryId)
        .xdel(stream, entryId)
        .exec()
        .catch(() => undefined);
      return;
    }
    if (this.copiedPart(raw)) {
      // A copy of a group part that runs (or ran) here: run again, its ranks would talk twice.
      this.done(entry);
      await this.redis
        .multi()
        .xack(stream, GROUP, entryId)
        .xdel(stream, entryId)
        .exec()
        .catch(() => undefined);
      return;
    }
    let finished = (): void => undefined;
    this.executing.set(entry, new Promise<void>((resolve) => (finished = resolve)));
    this.inflight++;
    try {
      if (await this.executeCounted(stream, entryId, raw, retaken)) this.done(entry);
    } finally {
      this.executing.delete(entry);
      finished();
      this.release();
    }
  }

  /**
   * Whether a (verified) call entry is a part of a group whose part with the same first rank
   * this host runs or ran while any part of the group still runs here — a copy of its entry
   * (counted as rejected). Else a group part is noted as run here.
   */
  private copiedPart(raw: Buffer[]): boolean {
    const f = fieldsOf(raw);
    const group = f.get('gid')?.toString();
    if (group === undefined) return false;
    const first = (JSON.parse(f.get('ranks')?.toString() ?? '[]') as number[])[0] ?? -1;
    let runs = this.groupRuns.get(group);
    if (runs === undefined) this.groupRuns.set(group, (runs = { active: 0, firsts: new Set() }));
    if (runs.firsts.has(first)) {
      this.reject('calls', `a copy of the entry of ranks from ${first} of group ${group} (they run or ran here)`);
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
      this.entries.forgetGroup(group);
    }
  }

  /** Remembers an entry this host is done with (answered, or moved on) — the last 4096. */
  private done(entry: string): void {
    this.answered.add(entry);
    if (this.answered.size > 4096) this.answered.delete(this.answered.values().next().value!);
  }

  /** Resolves with whether the call was answered. */
  private async executeCounted(stream: string, entryId: Buffer, raw: Buffer[], retaken: boolean): Promise<boolean> {
    const f = fieldsOf(raw);
    const id = f.get('id')?.toString() ?? '';
    const name = f.get('fn')?.toString() ?? '';
    const from = f.get('from')?.toString() ?? '';
    const deadline = Number(f.get('dl')?.toString() ?? '0');
    const input = f.get('in') ?? Buffer.alloc(0);
    const key = f.get('idem')?.toString();
    const hash = f.get('h')?.toString();
    this.remote++;
    const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    const run = (): Promise<Outcome> => this.runHere(name, bytes, deadline, hash);
    let record: Buffer;
    const group = f.get('gid')?.toString();
    if (group !== undefined) {
      const ranks = JSON.parse(f.get('ranks')?.toString() ?? '[]') as number[];
      const size = Number(f.get('size')?.toString() ?? '0');
      if (retaken) {
        // Its ranks may have sent and received messages already: running them again would
        // replay the group's conversation out of step. The group fails instead.
        const error = makeError(
          ErrorCode.WORKER_LOST,
          `ranks ${ranks.join(', ')} of group '${name}' were on a host that died (or restarted) mid-run; a group cannot resume — invoke it again`,
          { function: name, ranks },
        ).toWire();
        this.groupFailed(group, error);
        this.partEnded(group);
        record = encodePart([{ error }]);
      } else {
        record = await this.runPart(name, group, size, ranks, bytes, deadline, hash);
      }
    } else {
      const outcome = key === undefined ? await run() : await this.keyed(key, deadline, name, bytes, run);
      // Cut short by this host closing: left unanswered, so another host takes the call.
      if (this.closed && 'error' in outcome && outcome.error.code === ErrorCode.CLOSED) return false;
      record = encode(outcome);
    }
    // Answers still go out while closing (until Redis is let go).
    for (let attempt = 0; !this.disconnected; attempt++) {
      try {
        await this.redis.nuvolaAnswer(
          stream,
          this.keys.reply(from),
          GROUP,
          entryId.toString(),
          id,
          record,
          Math.max(60_000, 10 * this.settings.hostTimeoutMs),
          this.entries.reply(id, record),
        );
        return true;
      } catch (err) {
        // Past the caller's deadline (and a margin for clocks) nobody waits for the answer: the
        // call gives its slot back. (A reply stream Redis cannot write to — a key of another
        // type planted there — would otherwise hold the slot, and in the end the host, forever.)
        if (Date.now() > deadline + this.settings.hostTimeoutMs) {
          this.warn(`cluster: answering call ${id} failed (${(err as Error).message}) past its deadline; given up`);
          await this.redis
            .multi()
            .xack(stream, GROUP, entryId)
            .xdel(stream, entryId)
            .exec()
            .catch(() => undefined);
          return true;
        }
        // Unacknowledged, the entry stays pending under this host: keep trying while the caller waits.
        this.warn(`cluster: answering call ${id} failed (${(err as Error).message}); retrying`);
        await sleep(Math.min(1000, 100 * (attempt + 1)));
      }
    }
    return false;
  }

  /**
   * Runs `size` ranks of `name` as one group spread over the cluster's hosts: the ranks are
   * split in contiguous parts, one per host that takes calls, each part sent through the work
   * stream; messages between ranks on different hosts go through Redis streams (one per
   * receiving rank, so each sender's messages arrive in order). The first failing rank ends the
   * group on every host. Resolves with each rank's outcome in rank order.
   */
  async invokeGroup(name: string, size: number, input: Uint8Array, timeoutMs: number | undefined): Promise<Outcome[]> {
    if (timeoutMs === undefined && this.host.hashOf(name) === undefined) {
      // Not registered here: the registry must have it, and says its timeout.
      let entry: string | null;
      try {
        entry = await this.bounded(this.redis.hget(this.keys.functions, name));
      } catch (err) {
        return [{ error: unavailable(`looking up '${name}'`, err).toWire() }];
      }
      if (entry === null) {
        return [{ error: this.unknown(name).toWire() }];
      }
      const verified = this.entries.openRegistration(name, entry);
      if (verified === undefined) return [{ error: this.forgedEntry(name).toWire() }];
      timeoutMs = this.noteTimeout(name, verified.options);
    }
    const deadline = Date.now() + (timeoutMs ?? FUNCTION_DEFAULTS.timeoutMs);
    try {
      this.live = await this.hosts();
    } catch (err) {
      return [{ error: toWire(err) }];
    }
    const takers = this.live.filter((h) => h.capacity > 0).length;
    if (takers === 0) {
      const error = makeError(ErrorCode.CLUSTER_UNAVAILABLE, `cluster '${this.settings.name}': no live host takes calls; start a host`, {
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
      this.groupFailed(group, error);
    };
    try {
      const results = await Promise.all(
        Array.from({ length: parts }, async (_, p) => {
          const ranks = ranksOf(p);
          const fields: (string | Buffer)[] = [
            'fn',
            name,
            ...this.codeField(name),
            'gid',
            group,
            'size',
            String(size),
            'ranks',
            JSON.stringify(ranks),
          ];
          if (input.byteLength > 0) fields.push('in', Buffer.from(input.buffer, input.byteOffset, input.byteLength));
          const outcomes = decodePart(await this.request(name, fields, deadline), ranks.length);
          const failed = outcomes.find((o): o is { error: WireError } => 'error' in o);
          if (failed !== undefined) abort(failed.error);
          return outcomes;
        }),
      );
      return results.flat();
    } finally {
      const keys = [this.keys.control(group), ...Array.from({ length: size }, (_, r) => this.keys.inbox(group, r))];
      void this.redis.del(...keys).catch(() => undefined);
    }
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
    // The entry counted one call; a part holds one instance per rank.
    this.inflight += ranks.length - 1;
    let published = false;
    const part: GroupPart = {
      ranks,
      send: (from, to, data) => {
        this.groupMessage(group, from, to, Buffer.from(data)).catch((err: Error) => {
          if (part.id !== undefined) this.host.abortPart(part.id, unavailable(`sending a message to rank ${to}`, err, 'the group stops'));
        });
      },
      aborted: (error) => {
        published = true;
        this.groupFailed(group, error.toWire());
      },
    };
    try {
      await this.fetch(name, hash);
      const left = deadline - Date.now();
      if (left <= 0)
        throw makeError(ErrorCode.TIMEOUT, `a part of group '${name}' reached this host after its deadline`, { function: name });
      const run = this.host.runPart(name, size, input, left, part);
      this.parts.set(`${group}/${ranks[0]}`, { group, part });
      this.poke();
      const results = await run;
      return encodePart(results.map((r) => ({ ...r, host: this.hostId })));
    } catch (err) {
      const wire = toWire(err);
      if (!published) this.groupFailed(group, wire);
      return encodePart([{ error: wire }]);
    } finally {
      this.parts.delete(`${group}/${ranks[0]}`);
      this.inflight -= ranks.length - 1;
      this.partEnded(group);
    }
  }

  /** Sends a message to a rank on another host (numbered and authenticated, see entries.ts). */
  private groupMessage(group: string, from: number, to: number, data: Buffer): Promise<number> {
    return this.groupAdd(this.keys.inbox(group, to), ...this.entries.message(group, from, to, data));
  }

  /** Tells every part of a group that a rank failed. */
  private groupFailed(group: string, error: WireError): void {
    this.groupAdd(this.keys.control(group), ...this.entries.failure(group, error)).catch(() => undefined);
  }

  /** Adds to a group's stream, which lapses a minute after its last entry (or `hostTimeoutMs`, if longer). */
  private groupAdd(stream: string, ...fields: (string | Buffer)[]): Promise<number> {
    return this.redis.nuvolaGroupAdd(stream, Math.max(60_000, this.settings.hostTimeoutMs), ...fields);
  }

  /** Wakes the inbox reader: the set of group streams to read changed. */
  private poke(): void {
    void this.redis.xadd(this.keys.poke(this.hostId), 'MAXLEN', '~', '100', '*', 'p', '1').catch(() => undefined);
  }

  /** Reads the inboxes (and control streams) of the group ranks running here and hands their messages to the pool. */
  private async inboxLoop(): Promise<void> {
    const last = new Map<string, string>();
    const poke = this.keys.poke(this.hostId);
    while (!this.closed) {
      const streams = [poke];
      // A rank's inbox goes to its part; a group's control stream to each of its parts here.
      const route = new Map<string, { group: string; parts: GroupPart[]; rank: number | undefined }>();
      for (const { group, part } of this.parts.values()) {
        const control = this.keys.control(group);
        const to = route.get(control);
        if (to === undefined) {
          streams.push(control);
          route.set(control, { group, parts: [part], rank: undefined });
        } else {
          to.parts.push(part);
        }
        for (const rank of part.ranks) {
          const inbox = this.keys.inbox(group, rank);
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
        if (this.closed) return;
        this.warn(`cluster: reading group messages failed (${(err as Error).message}); retrying`);
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
          const verdict = this.entries.verifiedGroupEntry(to.group, to.rank, f, `an entry of ${stream}`);
          if (verdict === 'lost') {
            const error = makeError(
              ErrorCode.CLUSTER_INTEGRITY,
              `a message from rank ${f.get('f')?.toString() ?? '?'} to rank ${to.rank} of a group spread over cluster '${this.settings.name}' was lost (removed from Redis by something without the cluster's secret?); the group stops — invoke it again, and check who may write to Redis`,
              { cluster: this.settings.name, rank: to.rank },
            );
            for (const part of live) if (part.id !== undefined) this.host.abortPart(part.id, error);
            continue;
          }
          if (verdict === 'dropped') continue;
          for (const part of live) {
            if (part.id === undefined) continue;
            if (to.rank === undefined) {
              this.host.abortPart(part.id, fromWire(JSON.parse(f.get('e')?.toString() ?? '{}') as WireError));
              continue;
            }
            const data = f.get('d') ?? Buffer.alloc(0);
            const shared = new SharedArrayBuffer(data.byteLength);
            new Uint8Array(shared).set(data);
            this.host.deliver(part.id, Number(f.get('f')?.toString() ?? '-1'), to.rank, shared);
          }
        }
      }
    }
  }

  /** Reads this host's reply stream and settles the waiting calls. */
  private async replyLoop(): Promise<void> {
    // From the start: a host id's reply stream holds only replies to it (a previous life's are ignored).
    let last = '0-0';
    const stream = this.keys.reply(this.hostId);
    while (!this.closed) {
      let read: [Buffer, StreamEntry[]][] | null;
      try {
        read = (await this.replyReader.xreadBuffer('COUNT', 1024, 'BLOCK', 1000, 'STREAMS', stream, last)) as
          [Buffer, StreamEntry[]][] | null;
      } catch (err) {
        if (this.closed) return;
        this.warn(`cluster: reading replies failed (${(err as Error).message}); retrying`);
        await sleep(200);
        continue;
      }
      for (const [entryId, raw] of read?.[0]?.[1] ?? []) {
        last = entryId.toString();
        const f = fieldsOf(raw);
        const id = f.get('id')?.toString() ?? '';
        const record = f.get('r');
        const pending = this.pending.get(id);
        if (pending === undefined) continue; // answered twice (a call run again after its host was thought dead), or timed out
        // A forged reply is dropped: the caller waits for the real one (or its deadline).
        if (!this.entries.verifiedReply(id, record, f.get('m'))) continue;
        this.pending.delete(id);
        clearTimeout(pending.timer);
        pending.resolve(record);
      }
    }
  }

  /** One heartbeat: renew this host, renew its leases, recover dead hosts' calls. */
  private async tick(): Promise<void> {
    // One beat at a time: a slow Redis must not pile them up.
    if (this.closed || this.ticking) return;
    this.ticking = true;
    try {
      const dead = await this.beat();
      for (const [lease, holder] of this.leases) void this.redis.nuvolaRenew(lease, holder, this.settings.hostTimeoutMs).catch(() => 0);
      // Recovery runs beside the beats (a long one must not stop this host's heartbeat), one
      // at a time; a host that only sends leaves it to hosts that take calls.
      const others = dead.filter((id) => id !== this.hostId);
      if (others.length > 0 && !this.recovering && this.settings.capacity > 0) {
        this.recovering = true;
        void (async () => {
          for (const id of others) await this.recover(id);
        })()
          .catch((err: Error) => this.warn(`cluster: recovering dead hosts' calls failed (${err.message}); retrying at the next beat`))
          .finally(() => (this.recovering = false));
      }
    } catch (err) {
      this.warn(`cluster: heartbeat failed (${(err as Error).message}); this host counts as dead after hostTimeoutMs without one`);
    } finally {
      this.ticking = false;
    }
  }

  private async beat(): Promise<string[]> {
    const info: HostInfo = {
      id: this.hostId,
      hostname: hostname(),
      pid: process.pid,
      workers: this.host.workers,
      capacity: this.settings.capacity,
      inflight: this.inflight,
      completed: this.completed,
      remote: this.remote,
      ownStream: this.settings.capacity > 0,
      startedAt: this.startedAt,
      beats: ++this.beats,
    };
    const { alive, hosts, epoch: epochKey } = this.keys;
    const [dead, epoch] = await this.bounded(
      this.redis.nuvolaHeartbeat(
        alive,
        hosts,
        epochKey,
        this.hostId,
        this.settings.hostTimeoutMs,
        this.entries.heartbeat(info),
        randomUUID(),
      ),
    );
    if ((this.epoch !== undefined && epoch !== this.epoch) || this.republishAgain) this.republish();
    this.epoch = epoch;
    this.live = await this.hosts();
    return dead;
  }

  /**
   * Redis lost the cluster's data (restarted without persistence): publishes this host's
   * registrations again, so hosts that never loaded them can fetch them. The work streams'
   * groups come back as the readers find them missing.
   */
  private republish(): void {
    this.republishAgain = false;
    if (this.published.size === 0) return;
    this.host.log(
      'warn',
      `cluster '${this.settings.name}': Redis lost the cluster's data (restarted without persistence?); publishing this host's ${this.published.size} functions again — calls it had acknowledged are lost`,
    );
    for (const [name, { bytes, options }] of this.published) {
      this.publish(name, bytes, options).catch((err: NuvolaError) => {
        this.warn(`cluster: publishing '${name}' again failed (${err.message})`);
        // Redis still away: again at the next beat. Other code under the name: that one stands.
        if (err.code === ErrorCode.CLUSTER_UNAVAILABLE) this.republishAgain = true;
      });
    }
  }

  /**
   * Claims the calls a dead host took and never answered, and runs them here; moves the calls
   * waiting in its own work stream to the shared one. Two hosts may both see it dead: XCLAIM's
   * minimum idle time lets only the first take each call.
   */
  private async recover(dead: string): Promise<void> {
    const queue = this.keys.queue(dead);
    const drained = await this.drain(queue);
    const room = this.settings.capacity - this.inflight;
    if (room <= 0) return; // a host with room will; or this one at a later beat
    const pending = (await this.redis.xpending(this.keys.work, GROUP, 'IDLE', this.settings.heartbeatMs, '-', '+', room, dead)) as [
      string,
      string,
      number,
      number,
    ][];
    if (pending.length > 0) {
      const claimed = await this.claim(
        this.keys.work,
        pending.map((p) => p[0]),
      );
      if (claimed.length > 0) this.host.log('info', `cluster: took over ${claimed.length} unanswered calls of dead host '${dead}'`);
      for (const entry of claimed) void this.execute(this.keys.work, entry, true);
      return;
    }
    // Forgotten only once nothing of it is left (checked and done in one script).
    if (drained) {
      const { alive, hosts, work } = this.keys;
      if ((await this.redis.nuvolaForget(alive, hosts, work, queue, this.keys.poke(dead), dead)) === 1) {
        this.host.log('info', `cluster: host '${dead}' is gone (it left, or its heartbeat expired)`);
      }
    }
  }

  /** Takes entries of `stream` for this host, if their idle time still allows (see XCLAIM). */
  private async claim(stream: string, ids: string[]): Promise<StreamEntry[]> {
    return (await this.redis.callBuffer('XCLAIM', stream, GROUP, this.hostId, this.settings.heartbeatMs, ...ids)) as StreamEntry[];
  }

  /**
   * Moves every call of a dead host's own work stream to the shared one: those it (or another
   * host that is gone) took and never answered, and those nobody took yet. Resolves with
   * whether the stream is empty now.
   */
  private async drain(queue: string): Promise<boolean> {
    try {
      // A bounded batch per beat; the rest at the next ones.
      for (let moved = 0; moved < 500;) {
        const live = new Set(this.live.map((h) => h.id));
        const pending = (await this.redis.xpending(queue, GROUP, 'IDLE', this.settings.heartbeatMs, '-', '+', 100)) as [
          string,
          string,
          number,
          number,
        ][];
        // Taken by hosts now gone — or by this one, by a read whose reply was lost.
        const orphans = pending
          .filter((p) => !live.has(p[1]) || (p[1] === this.hostId && !this.executing.has(`${queue} ${p[0]}`)))
          .map((p) => p[0]);
        let entries: StreamEntry[];
        if (orphans.length > 0) {
          entries = await this.claim(queue, orphans);
        } else {
          const read = (await this.redis.xreadgroupBuffer('GROUP', GROUP, this.hostId, 'COUNT', 100, 'STREAMS', queue, '>')) as
            [Buffer, StreamEntry[]][] | null;
          entries = read?.[0]?.[1] ?? [];
        }
        if (entries.length === 0) return (await this.redis.xlen(queue)) === 0;
        for (const entry of entries) await this.handBack(queue, entry);
        moved += entries.length;
      }
      return false;
    } catch (err) {
      if ((err as Error).message.includes('NOGROUP')) return true; // no such stream: nothing to move
      throw err;
    }
  }

  /**
   * Rejects when Redis has not answered `command` within max(1 s, hostTimeoutMs): a Redis that
   * stops answering (stopped, partitioned) must not hold a caller, a heartbeat or close()
   * forever. Only for commands off the per-call path (a timer per command there costs a fifth
   * of the throughput; those calls are bounded by their callers' deadlines instead).
   */
  private bounded<T>(command: Promise<T>): Promise<T> {
    const ms = Math.max(1000, this.settings.hostTimeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no reply from Redis within ${ms} ms`)), ms);
    });
    return Promise.race([command, limit]).finally(() => clearTimeout(timer));
  }

  private warn(message: string): void {
    if (message === this.lastWarning) return;
    this.lastWarning = message;
    this.host.log('warn', message);
  }

  /** Leaves the cluster: stops taking calls, fails waiting ones, and forgets this host at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    for (const freed of this.slotFreed) freed();
    this.slotFreed.clear();
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.resolve(encode({ error: makeError(ErrorCode.CLOSED, 'the runtime is closed', { invocation: id }).toWire() }));
    }
    this.pending.clear();
    this.workReader.disconnect();
    this.queueReader.disconnect();
    this.replyReader.disconnect();
    this.inboxReader.disconnect();
    // Calls from the work streams that finish within a second still answer (later ones are cut
    // short by the pool's close and left to other hosts). A read queued while Redis is away
    // may never settle: do not wait for it past that second either.
    await Promise.race([Promise.allSettled([...this.loops, ...this.executing.values()]), sleep(1000)]);
    // Leave cleanly: calls still pending under this host are claimed by others at once.
    try {
      if (this.redis.status === 'ready') {
        await this.bounded(this.redis.zadd(this.keys.alive, 0, this.hostId));
      }
    } catch {
      // Redis is away: the heartbeat expires by itself.
    }
    this.disconnected = true;
    this.redis.disconnect();
  }
}

/**
 * The home of a state key among `hosts`: the one with the highest hash of (host id, key)
 * (rendezvous hashing — when a host joins or leaves, only the keys whose home it is or
 * becomes move). Undefined when `hosts` is empty.
 */
export function homeOf<H extends { id: string }>(key: string, hosts: readonly H[]): H | undefined {
  let best: H | undefined;
  let bestScore = -1;
  for (const h of hosts) {
    const score = mix(`${h.id}\u0000${key}`);
    if (score > bestScore || (score === bestScore && best !== undefined && h.id < best.id)) {
      best = h;
      bestScore = score;
    }
  }
  return best;
}

/** A 32-bit hash of a string: FNV-1a over its UTF-16 code units, then MurmurHash3's final mix. */
function mix(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function fieldsOf(raw: Buffer[]): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < raw.length; i += 2) map.set(raw[i]!.toString(), raw[i + 1]!);
  return map;
}
