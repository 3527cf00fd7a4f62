/**
 * Main thread. The Redis keys of one cluster and the Lua scripts that keep its invariants.
 * Every key of a cluster but its work partitions and their reply streams carries the hash tag
 * `{<cluster name>}`, so on a Redis Cluster they live in one slot and every script (which
 * touches several) is allowed. The work streams are partitioned over several hash tags (see
 * {@link partitionTags}), so a Redis Cluster spreads a cluster's work over its masters; a
 * host has a reply stream under each partition's tag. No script touches two tags.
 */

/** The consumer group every host reads the work stream in. */
export const GROUP = 'hosts';

export interface ClusterKeys {
  /** Sorted set: host id → the server time (ms) its heartbeat expires. */
  alive: string;
  /** Hash: host id → its last heartbeat: MAC (hex) then JSON (load, capacity, pid). */
  hosts: string;
  /** Hash: function name → JSON { hash, o: options JSON, mac } of its registration. */
  functions: string;
  /** A random value set once: another value means Redis lost the cluster's data. */
  epoch: string;
  /** The cluster's number of work partitions, set by the first host that joins (see ClusterContext.usePartitions). */
  partitionCount: string;
  /** The shared work stream: partition 0 of {@link parts} (in the slot of the other keys). */
  work: string;
  /**
   * The shared work streams, one per partition (consumer group {@link GROUP}): partition 0
   * under `{<name>}`, each other one under its own hash tag.
   */
  parts: string[];
  /** The hash tag (without braces) of each partition: {@link parts}[p] and the reply streams for calls sent to it. */
  tags: string[];
  /** A host's own work stream: calls sent to it for the state key they name (consumer group {@link GROUP}). */
  queue(host: string): string;
  /** A module's bytes by content hash. */
  module(hash: string): string;
  /**
   * A host's reply stream for the calls it sent to the partition under `tag` (the call entry
   * names it; absent: the cluster's own, partition 0's): in that partition's slot, so a reply
   * and the acknowledgement of its call's entry go in one transaction.
   */
  reply(host: string, tag?: string): string;
  /**
   * The recorded result of a call of `fn` with an idempotency key: MAC, the input's SHA-256,
   * then the outcome (see codec.ts). Keyed by function and key, so another function's call
   * with the key neither sees nor blocks it.
   */
  done(fn: string, key: string): string;
  /** The host running a call of `fn` with an idempotency key (a lease): `<host id> <input SHA-256 hex> <MAC hex>`. */
  running(fn: string, key: string): string;
  /** Messages to rank `rank` of the group `group` spread over hosts (a stream). */
  inbox(group: string, rank: number): string;
  /** Control entries of a group spread over hosts: a rank's failure (a stream). */
  control(group: string): string;
  /** Wakes a host's reader of group messages when the groups it serves change (a stream). */
  poke(host: string): string;
}

export function clusterKeys(cluster: string, partitions = 1): ClusterKeys {
  const p = `nuvola:cl:{${cluster}}:`;
  const tags = partitionTags(cluster, partitions);
  const parts = tags.map((tag) => `nuvola:cl:{${tag}}:work`);
  return {
    alive: `${p}alive`,
    hosts: `${p}hosts`,
    functions: `${p}fn`,
    epoch: `${p}epoch`,
    partitionCount: `${p}partitions`,
    work: parts[0]!,
    parts,
    tags,
    queue: (host) => `${p}work:${host}`,
    module: (hash) => `${p}mod:${hash}`,
    reply: (host, tag = cluster) => `nuvola:cl:{${tag}}:reply:${host}`,
    // A function name has no space: the first one ends it.
    done: (fn, key) => `${p}done:${fn} ${key}`,
    running: (fn, key) => `${p}run:${fn} ${key}`,
    inbox: (group, rank) => `${p}g:${group}:${rank}`,
    control: (group) => `${p}g:${group}:ctl`,
    poke: (host) => `${p}poke:${host}`,
  };
}

/** Slots of a Redis Cluster. */
const SLOTS = 16384;

/** The Redis Cluster slot of a hash tag's content: CRC16 (XMODEM) mod 16384. */
export function slotOf(tag: string): number {
  let crc = 0;
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}

/**
 * The hash tags of a cluster's `partitions` work streams: partition 0 is the cluster's own
 * tag (`<name>`, beside its other keys); partition p is the first `<name>~k` whose slot lies
 * in the p-th of `partitions` equal slot ranges after the own tag's. A Redis Cluster created
 * with its slots spread evenly (as `redis-cli --cluster create` does) then has one partition
 * on each master when there are as many partitions as masters. Every host computes the same.
 */
export function partitionTags(cluster: string, partitions: number): string[] {
  const range = (tag: string): number => Math.floor((slotOf(tag) * partitions) / SLOTS);
  const tags = [cluster];
  const first = range(cluster);
  for (let p = 1, k = 0; p < partitions; k++) {
    const tag = `${cluster}~${k}`;
    if (range(tag) === (first + p) % partitions) {
      tags.push(tag);
      p++;
      k = -1;
    }
  }
  return tags;
}

const NOW_MS = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * KEYS: alive, hosts, epoch. ARGV: id, timeoutMs, info, a new epoch. Renews this host's
 * heartbeat (server time, so host clocks do not matter) and returns the ids whose heartbeat
 * has expired, the cluster's epoch and the live hosts' info (as {@link LIVE}: one script a
 * beat); the epoch is a random value set once, so a Redis that lost its data
 * (restarted without persistence) shows up as a new epoch.
 */
export const HEARTBEAT = `${NOW_MS}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[3], epoch)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local infos = {}
if #ids > 0 then infos = redis.call('HMGET', KEYS[2], unpack(ids)) end
return {redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now), epoch, infos}`;

/** KEYS: alive, hosts. Returns the live hosts' info. */
export const LIVE = `${NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))`;

/**
 * KEYS: alive, hosts, shared work stream, own work stream and poke stream of the dead host.
 * ARGV: id. Forgets a dead host unless it came back, a call it took from the shared stream is
 * still unanswered, or calls wait in its own stream. Its reply stream is left to expire (see
 * {@link ANSWER}): a host that only lapsed may still read replies from it.
 */
export const FORGET = `${NOW_MS}
local expires = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if expires > now then return 0 end
if #redis.call('XPENDING', KEYS[3], '${GROUP}', '-', '+', 1, ARGV[1]) > 0 then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 and redis.call('XLEN', KEYS[4]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[3], '${GROUP}', ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
return 1`;

/**
 * KEYS: a work partition other than the first. ARGV: a dead host's id. Removes the host's
 * consumer from the partition's group unless a call it took there is still unanswered.
 * Returns 1 when it is gone (or never was there).
 */
export const FORGET_PART = `if #redis.call('XPENDING', KEYS[1], '${GROUP}', '-', '+', 1, ARGV[1]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], '${GROUP}', ARGV[1])
return 1`;

/**
 * KEYS: alive, the target host's own work stream, the shared work stream. ARGV: target host
 * id, then field and value pairs. Sends a call to the target host while its heartbeat is
 * current, else to the shared stream (so nothing is sent to a host known to be dead).
 * Returns 1 when the target got it.
 */
export const ROUTE = `${NOW_MS}
local expires = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if expires > now then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
  return 1
end
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 2))
return 0`;

/**
 * KEYS: done and running of each call, in pairs. ARGV: leaseMs, then each call's holder
 * (`<host> <input hash> <MAC>`). Starts invocations with an idempotency key — those that start
 * in one event-loop turn, in one script (batching.ts `Bookkeeping`) — and returns for each, in
 * order: {1, record} when it has completed before (its recorded result), {2, holder} while
 * another host (or this one with another input) runs it, {0} when this host now holds the
 * lease and must run it. A lease without expiry was never set by a host (they all lapse): it
 * is taken over.
 */
export const BEGIN_MANY = `local out = {}
for i = 1, #KEYS / 2 do
  local done, running, holder = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i + 1]
  local record = redis.call('GET', done)
  if record then
    out[i] = {1, record}
  else
    local other = redis.call('GET', running)
    if other and other ~= holder and redis.call('PTTL', running) >= 0 then
      out[i] = {2, other}
    else
      redis.call('SET', running, holder, 'PX', ARGV[1])
      out[i] = {0}
    end
  end
end
return out`;

/**
 * KEYS: done and running of each call, in pairs. ARGV: ttlMs, then each call's holder and
 * record. Records the results of invocations with an idempotency key (those that end in one
 * event-loop turn, in one script) unless one is recorded already (the first completion wins),
 * releases their leases, and returns for each the record that stands.
 */
export const RECORD_MANY = `local out = {}
for i = 1, #KEYS / 2 do
  local done, running = KEYS[2 * i - 1], KEYS[2 * i]
  local holder, mine = ARGV[2 * i], ARGV[2 * i + 1]
  local record = redis.call('GET', done)
  if not record then
    record = mine
    redis.call('SET', done, record, 'PX', ARGV[1])
  end
  if redis.call('GET', running) == holder then redis.call('DEL', running) end
  out[i] = record
end
return out`;

/** Lua: the code hash of a registry entry, or nil when it is not an entry at all. */
const HASH_OF = `local function hashOf(entry)
  local ok, decoded = pcall(cjson.decode, entry)
  if ok and type(decoded) == 'table' then return decoded.hash end
  return nil
end`;

/**
 * KEYS: functions, module. ARGV: name, hash, registration JSON, bytes, an entry to replace.
 * Publishes a function unless the name stands for other code: stores the bytes once (by hash)
 * and the name. Returns 1, or the other code's registration JSON — which the caller verifies,
 * and replaces (passing it as ARGV[5]) when it was forged.
 */
export const PUBLISH = `${HASH_OF}
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing and existing ~= ARGV[5] and hashOf(existing) ~= ARGV[2] then return existing end
-- Not NX: bytes planted under the hash by someone else are overwritten with the real ones.
redis.call('SET', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`;

/**
 * KEYS: functions, module of the name's code. ARGV: name, its code's hash. Removes the name if
 * it still stands for that code, and the code's bytes once no other name uses them. Returns 1
 * when the name was removed.
 */
export const UNPUBLISH = `${HASH_OF}
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing or hashOf(existing) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
for _, entry in ipairs(redis.call('HVALS', KEYS[1])) do
  if hashOf(entry) == ARGV[2] then return 1 end
end
redis.call('DEL', KEYS[2])
return 1`;

/**
 * KEYS: a key. ARGV: a value. Deletes the key if it holds that value: gives a lease up
 * (without a record) if this host holds it, drops a record that failed verification.
 */
export const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** KEYS: running. ARGV: holder, leaseMs. Extends the lease if this host still holds it. */
export const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/**
 * KEYS: work, reply. ARGV: group, entry id, invocation id, record, reply TTL ms, MAC. Answers a call
 * taken from the work stream and acknowledges (and deletes) it, in one step: a host that dies before this
 * leaves the entry pending (another host claims it); after it, the caller has the answer.
 */
export const ANSWER = `redis.call('XADD', KEYS[2], 'MAXLEN', '~', '10000', '*', 'id', ARGV[3], 'r', ARGV[4], 'm', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked`;

/**
 * KEYS: a group stream (a rank's inbox or the group's control stream). ARGV: ttlMs, then field
 * and value pairs. Adds an entry and keeps the stream no longer than `ttlMs` past its last
 * one, so a message sent after its group ended does not stay behind.
 */
export const GROUP_ADD = `redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
return redis.call('PEXPIRE', KEYS[1], ARGV[1])`;

/** Every script as a command of a host's command connection: its name, number of keys and Lua. */
export const SCRIPTS: Record<string, { numberOfKeys?: number; lua: string }> = {
  nuvolaHeartbeat: { numberOfKeys: 3, lua: HEARTBEAT },
  nuvolaLive: { numberOfKeys: 2, lua: LIVE },
  nuvolaForget: { numberOfKeys: 5, lua: FORGET },
  nuvolaForgetPart: { numberOfKeys: 1, lua: FORGET_PART },
  nuvolaPublish: { numberOfKeys: 2, lua: PUBLISH },
  nuvolaRelease: { numberOfKeys: 1, lua: RELEASE },
  nuvolaUnpublish: { numberOfKeys: 2, lua: UNPUBLISH },
  nuvolaRoute: { numberOfKeys: 3, lua: ROUTE },
  nuvolaRenew: { numberOfKeys: 1, lua: RENEW },
  // Any number of keys: the first argument says how many.
  nuvolaBeginMany: { lua: BEGIN_MANY },
  nuvolaRecordMany: { lua: RECORD_MANY },
  nuvolaAnswer: { numberOfKeys: 2, lua: ANSWER },
  nuvolaGroupAdd: { numberOfKeys: 1, lua: GROUP_ADD },
};
