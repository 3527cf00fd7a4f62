/**
 * Main thread. The cluster's function registry as one host sees it: publishing what is
 * registered here (the bytes once by content hash, the name with its options, signed), taking
 * it out again, publishing it anew when Redis lost its data, and fetching what another host
 * registered — its entry verified, its bytes checked against their hash, its grants against
 * this host's `cluster.grants` — before a call of it runs here. Every look-up of a name goes
 * through {@link Registry.lookup}.
 */
import { ErrorCode, makeError, type NuvolaError } from '../runtime/errors.js';
import { unavailable, type ClusterContext } from './context.js';
import { refusedGrants } from './grants.js';
import { moduleHash } from './outcome.js';

/** How long a function's registered timeout is trusted before it is looked up again, in ms. */
const TIMEOUT_CACHE_MS = 10_000;

/** Hex digits of a code hash a call carries (see {@link Registry.codeField}). */
const HASH_PREFIX = 16;

/** A registry entry that verified. */
export interface Registration {
  hash: string;
  options: Record<string, unknown>;
  /** The `timeoutMs` it was registered with, or the default. */
  timeoutMs: number;
}

/** `name` is neither registered on this host nor in the cluster's registry. */
export function unknownFunction(name: string, cluster: string): NuvolaError {
  return makeError(
    ErrorCode.UNKNOWN_FUNCTION,
    `no function named '${name}' is registered on this host or in cluster '${cluster}'; register() it first`,
    { function: name, cluster },
  );
}

export class Registry {
  /** Registered timeouts of functions this host calls without having them (see timeoutOf). */
  private readonly timeouts = new Map<string, { ms: number; at: number }>();
  /** Fetches of functions from the registry in progress, by name. */
  private readonly fetching = new Map<string, Promise<void>>();
  /** What this host published (for {@link republish}), by name. */
  private readonly published = new Map<string, { bytes: Uint8Array; options: Record<string, unknown> }>();
  /** A republish failed while Redis was away: try again at the next beat. */
  private republishAgain = false;

  constructor(private readonly ctx: ClusterContext) {}

  /** Publishes a registration: the bytes once by content hash, the name with its options. */
  async publish(name: string, bytes: Uint8Array, options: Record<string, unknown>): Promise<void> {
    const { ctx } = this;
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
        published = await ctx.bounded(
          ctx.redis.nuvolaPublish(
            ctx.keys.functions,
            ctx.keys.module(hash),
            name,
            hash,
            ctx.entries.registration(name, hash, options),
            Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
            forged,
          ),
        );
      } catch (err) {
        forget();
        throw unavailable(`registering '${name}'`, err, 'nothing was registered — register it again once Redis is back');
      }
      if (typeof published !== 'string' || ctx.entries.openRegistration(name, published) !== undefined) break;
      forged = published;
    }
    if (published !== 1) {
      forget();
      throw makeError(
        ErrorCode.ALREADY_REGISTERED,
        `cluster '${ctx.settings.name}' already has a function named '${name}' with other code; unregister() it (on any host) first or pick another name`,
        { function: name, cluster: ctx.settings.name },
      );
    }
  }

  /**
   * Removes a name from the cluster's registry if it still stands for the code of `hash`, and
   * the code's bytes once no other name uses them (hosts that loaded it keep it until they
   * unregister it). One script, sent at once: a later publish from this host comes after it.
   */
  async unpublish(name: string, hash: string): Promise<void> {
    const { ctx } = this;
    this.published.delete(name);
    try {
      await ctx.bounded(ctx.redis.nuvolaUnpublish(ctx.keys.functions, ctx.keys.module(hash), name, hash));
    } catch (err) {
      throw unavailable(
        `unregistering '${name}'`,
        err,
        "the name stays in the cluster's registry — unregister it again once Redis is back",
      );
    }
  }

  /**
   * After a heartbeat: when Redis lost the cluster's data (`lost`: restarted without
   * persistence), or a republish failed before, publishes this host's registrations again, so
   * hosts that never loaded them can fetch them. The work streams' groups come back as the
   * readers find them missing.
   */
  afterBeat(lost: boolean): void {
    if (!lost && !this.republishAgain) return;
    this.republishAgain = false;
    if (this.published.size === 0) return;
    const { ctx } = this;
    ctx.host.log(
      'warn',
      `cluster '${ctx.settings.name}': Redis lost the cluster's data (restarted without persistence?); publishing this host's ${this.published.size} functions again — calls it had acknowledged are lost`,
    );
    for (const [name, { bytes, options }] of this.published) {
      this.publish(name, bytes, options).catch((err: NuvolaError) => {
        ctx.warn(`cluster: publishing '${name}' again failed (${err.message})`);
        // Redis still away: again at the next beat. Other code under the name: that one stands.
        if (err.code === ErrorCode.CLUSTER_UNAVAILABLE) this.republishAgain = true;
      });
    }
  }

  /**
   * The verified registry entry of `name` (its timeout noted), or null when the registry has
   * none. Rejects with E_CLUSTER_UNAVAILABLE when Redis does not answer (`outcome` says what
   * became of the call) and E_CLUSTER_INTEGRITY when the entry fails verification.
   */
  async lookup(name: string, outcome?: string): Promise<Registration | null> {
    const { ctx } = this;
    let entry: string | null;
    try {
      entry = await ctx.bounded(ctx.redis.hget(ctx.keys.functions, name));
    } catch (err) {
      throw unavailable(`looking up '${name}'`, err, outcome);
    }
    if (entry === null) return null;
    const verified = ctx.entries.openRegistration(name, entry);
    if (verified === undefined) {
      throw makeError(
        ErrorCode.CLUSTER_INTEGRITY,
        `the registry entry of '${name}' in cluster '${ctx.settings.name}' failed verification (not written by a host with the cluster's secret) and was not used; register the function again from a host, and check who may write to Redis`,
        { function: name, cluster: ctx.settings.name },
      );
    }
    return { ...verified, timeoutMs: this.noteTimeout(name, verified.options) };
  }

  /**
   * The `timeoutMs` `name` was registered with (the default when it gave none, or when the
   * registry cannot be read), cached per name; a fetch of the name refreshes it.
   */
  async timeoutOf(name: string): Promise<number> {
    const cached = this.timeouts.get(name);
    // Looked up again after a while: the name may have been registered again with another.
    if (cached !== undefined && Date.now() - cached.at < TIMEOUT_CACHE_MS) return cached.ms;
    try {
      return (await this.lookup(name))?.timeoutMs ?? this.ctx.host.defaultTimeoutMs;
    } catch {
      // Redis is away (the call will say so), or the entry is forged: the default bounds it meanwhile.
      return this.ctx.host.defaultTimeoutMs;
    }
  }

  /** Caches the timeout of a registration. */
  private noteTimeout(name: string, options: Record<string, unknown>): number {
    const ms = typeof options['timeoutMs'] === 'number' ? options['timeoutMs'] : this.ctx.host.defaultTimeoutMs;
    this.timeouts.delete(name); // (re-inserted last: the oldest go first below)
    this.timeouts.set(name, { ms, at: Date.now() });
    if (this.timeouts.size > 4096) this.timeouts.delete(this.timeouts.keys().next().value!);
    return ms;
  }

  /**
   * The field naming the code this host knows under `name`, if any: its first 64 bits, enough
   * to tell two codes under one name apart, and short per entry.
   */
  codeField(name: string): string[] {
    const hash = this.ctx.host.hashOf(name);
    return hash === undefined ? [] : ['h', hash.slice(0, HASH_PREFIX)];
  }

  /** Whether the cluster's registry has `name` (fetching and registering it here on the way). */
  async known(name: string): Promise<boolean> {
    try {
      await this.fetch(name, undefined);
      return true;
    } catch (err) {
      if ((err as NuvolaError).code === ErrorCode.UNKNOWN_FUNCTION) throw err;
      return false;
    }
  }

  /**
   * Fetches `name` (see {@link fetch}) for a call that must start by `deadline`; resolves with
   * the time left, or rejects with E_TIMEOUT when none is (`what` names the call).
   */
  async arrive(name: string, hash: string | undefined, deadline: number, what: string): Promise<number> {
    await this.fetch(name, hash);
    const left = deadline - Date.now();
    if (left <= 0) throw makeError(ErrorCode.TIMEOUT, `${what} reached this host after its deadline`, { function: name });
    return left;
  }

  /**
   * Makes sure `name` is registered here. `hash` is the code the caller knows under the name:
   * when this host has other code, the registry decides — code fetched before is replaced by
   * the registry's (it was registered again); code registered on this host stays and the call
   * fails with E_ALREADY_REGISTERED.
   */
  async fetch(name: string, hash: string | undefined): Promise<void> {
    const { ctx } = this;
    for (;;) {
      const have = ctx.host.hashOf(name);
      if (have !== undefined && (hash === undefined || have.startsWith(hash))) return;
      const loading = this.fetching.get(name);
      if (loading === undefined) break;
      await loading; // another fetch of the name: then look again
    }
    const loading = (async () => {
      const have = ctx.host.hashOf(name);
      const registration = await this.lookup(name, 'the call did not run — retry it');
      if (registration === null) {
        if (have !== undefined) return; // unregistered from the cluster: this host keeps its copy
        throw unknownFunction(name, ctx.settings.name);
      }
      const { hash: stored, options } = registration;
      if (have === stored) return;
      // A registration from elsewhere gets only the host resources this host grants.
      const refused = refusedGrants(options, ctx.settings.grants);
      if (refused !== undefined) {
        throw makeError(
          ErrorCode.CLUSTER_GRANT,
          `'${name}' from cluster '${ctx.settings.name}' asks for ${refused}, which host '${ctx.hostId}' does not grant; it does not run here — add it to this host's cluster.grants, or register the function without it`,
          { function: name, cluster: ctx.settings.name, host: ctx.hostId, refused },
        );
      }
      let bytes: Buffer | null;
      try {
        bytes = await ctx.bounded(ctx.redis.getBuffer(ctx.keys.module(stored)));
      } catch (err) {
        throw unavailable(`fetching the code of '${name}'`, err, 'the call did not run — retry it');
      }
      if (bytes === null) {
        throw makeError(ErrorCode.UNKNOWN_FUNCTION, `cluster '${ctx.settings.name}' lost the code of '${name}'; register it again`, {
          function: name,
        });
      }
      // The entry names the hash; the bytes must be the ones it names.
      if (moduleHash(bytes) !== stored) {
        ctx.reject('modules', `the code of '${name}' (its bytes do not match their content hash)`);
        throw makeError(
          ErrorCode.CLUSTER_INTEGRITY,
          `the code of '${name}' fetched from cluster '${ctx.settings.name}' does not match its content hash and was not used; register the function again from a host, and check who may write to Redis`,
          { function: name, cluster: ctx.settings.name, hash: stored },
        );
      }
      await ctx.host.registerFetched(name, new Uint8Array(bytes), options, have !== undefined);
    })().finally(() => this.fetching.delete(name));
    this.fetching.set(name, loading);
    await loading;
  }
}
