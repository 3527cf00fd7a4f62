/**
 * Main thread. Authenticates what the hosts of a cluster leave in Redis for each other — calls,
 * replies, registry entries, idempotency records, heartbeats, group messages — with HMAC-SHA256
 * under the cluster's secret, so a Redis client without the secret can neither inject an entry
 * nor forge or alter one (README "Many hosts", trust model).
 *
 * Each secret is first turned into a key for this cluster (HMAC of the cluster's name), so an
 * entry of one cluster does not verify in another with the same secret. A MAC covers a kind
 * (what the entry is) and a list of fields, each preceded by its length, so no two different
 * lists encode alike. The first secret signs; every listed one verifies (rotation).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The fewest characters a cluster secret may have. */
export const MIN_SECRET_LENGTH = 32;

/** Bytes of a MAC. */
export const MAC_BYTES = 32;

/** What an authenticated entry is: the same fields under another kind do not verify. */
export type SealKind = 'call' | 'reply' | 'fn' | 'done' | 'host' | 'msg' | 'ctl';

export type SealField = string | Uint8Array;

export class Seal {
  private readonly keys: Buffer[];

  /** `secrets`: the signing one first, then any others still accepted. */
  constructor(secrets: readonly string[], cluster: string) {
    this.keys = secrets.map((s) => createHmac('sha256', s).update(`nuvola cluster\0${cluster}`).digest());
  }

  /** The MAC of `fields` as `kind`, under the signing secret. */
  sign(kind: SealKind, fields: readonly SealField[]): Buffer {
    return mac(this.keys[0]!, kind, fields);
  }

  /** Whether `tag` is the MAC of `fields` as `kind` under one of the secrets. */
  verify(kind: SealKind, fields: readonly SealField[], tag: Uint8Array | undefined): boolean {
    if (tag === undefined || tag.byteLength !== MAC_BYTES) return false;
    for (const key of this.keys) if (timingSafeEqual(mac(key, kind, fields), tag)) return true;
    return false;
  }
}

function mac(key: Buffer, kind: SealKind, fields: readonly SealField[]): Buffer {
  const h = createHmac('sha256', key);
  h.update(kind);
  const length = Buffer.alloc(4);
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field) : field;
    length.writeUInt32BE(bytes.byteLength, 0);
    h.update(length);
    h.update(bytes);
  }
  return h.digest();
}

/** SHA-256 of bytes, raw. */
export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}
