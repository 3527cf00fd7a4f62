/**
 * Main thread. Where a call runs: here while this host has room, else wherever there is room —
 * and a call naming a state key on the key's home, the live host that rendezvous hashing picks
 * for it, so the key stays in one host's local tier. Decided from the hosts' load at the last
 * heartbeat; nothing here talks to Redis.
 */
import type { ClusterContext } from './context.js';

export class Placement {
  constructor(private readonly ctx: ClusterContext) {}

  /**
   * Where a call naming `stateKey` should run: the key's home, the live host that takes calls
   * which the key hashes to (rendezvous hashing: while the hosts stay the same every call
   * naming the key goes there, so that host holds the key in its local tier) — unless the
   * home was full at its last heartbeat: then this host if its local tier holds the key and
   * it has room, else undefined (wherever there is room).
   */
  placeOf(stateKey: string): string | undefined {
    const { ctx } = this;
    // (Hosts of an earlier version, without their own stream, are no homes.)
    const home = homeOf(
      stateKey,
      ctx.live.filter((h) => h.capacity > 0 && h.ownStream === true),
    );
    if (home?.id === ctx.hostId) return ctx.hostId; // here, or sent when this host is full
    if (home !== undefined && home.inflight < home.capacity) return home.id;
    return ctx.hasRoom() && ctx.host.holds(stateKey) ? ctx.hostId : undefined;
  }

  /**
   * Whether a call (naming `stateKey`, if any) should run on this host rather than be sent.
   * A `nested` call (a running guest's `chain.call`) also runs here when this host is full but
   * no other host had room at the last heartbeat: sent, it would wait for room that the calls
   * waiting on it hold.
   */
  runsHere(stateKey: string | undefined, nested = false): boolean {
    const { ctx } = this;
    if (!ctx.hasRoom()) {
      return nested && ctx.settings.capacity > 0 && !ctx.live.some((h) => h.id !== ctx.hostId && h.capacity > 0 && h.inflight < h.capacity);
    }
    if (stateKey === undefined) return true;
    const place = this.placeOf(stateKey);
    return place === undefined || place === ctx.hostId;
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
