/**
 * Main thread. The forms in which hosts leave things in Redis for each other, and their
 * authentication (seal.ts): calls, replies, registry entries, idempotency records, heartbeats
 * and group messages — each signed when written and verified when read. What fails
 * verification is reported to `reject` (counted and logged by the cluster) and never used.
 */
import type { WireError } from '../runtime/errors.js';
import { BATCH, decode, encode, type Outcome } from './codec.js';
import { MAC_BYTES, type Seal, type SealField } from './seal.js';

/**
 * Entries this host dropped because they failed verification (no valid MAC under the
 * cluster's secret, or bytes that do not match their hash), by kind, since it joined.
 */
export interface Rejected {
  calls: number;
  replies: number;
  functions: number;
  modules: number;
  records: number;
  hosts: number;
  messages: number;
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
  /** The cluster's work partitions, all of which it reads (absent: 1, the shared stream only). */
  partitions?: number;
  startedAt: number;
  /**
   * Heartbeats it sent since it started: a reader lists a host only while this goes up (a
   * heartbeat put back in Redis by someone else does not keep a host that left listed).
   */
  beats?: number;
}

/** Reports an entry that failed verification: its kind and what it was, in words. */
export type Reject = (kind: keyof Rejected, what: string) => void;

export class Entries {
  /** Group messages this host sent, by `<group> <from> <to>`: the last sequence number. */
  private readonly sentSeq = new Map<string, number>();
  /**
   * Group messages this host took, by `<group> <from> <to>`: the host that sent the first one
   * (every later one must come from it) and the last sequence number.
   */
  private readonly seenSeq = new Map<string, { host: string; seq: number }>();

  constructor(
    private readonly seal: Seal,
    /** This host's id: the sender a group message names. */
    private readonly hostId: string,
    private readonly reject: Reject,
  ) {}

  /** A heartbeat as stored: its MAC (hex), then its JSON. */
  heartbeat(info: HostInfo): string {
    const json = JSON.stringify(info);
    return this.seal.sign('host', [json]).toString('hex') + json;
  }

  openHeartbeat(value: string): HostInfo | undefined {
    const json = value.slice(2 * MAC_BYTES);
    if (this.seal.verify('host', [json], Buffer.from(value.slice(0, 2 * MAC_BYTES), 'hex'))) {
      try {
        return JSON.parse(json) as HostInfo;
      } catch {
        // (signed, so never: as forged)
      }
    }
    this.reject('hosts', 'a heartbeat');
    return undefined;
  }

  /** A registry entry as stored: the code's hash, the options' JSON (as a string), and a MAC binding them to the name. */
  registration(name: string, hash: string, options: Record<string, unknown>): string {
    const o = JSON.stringify(options);
    return JSON.stringify({ hash, o, mac: this.seal.sign('fn', [name, hash, o]).toString('hex') });
  }

  openRegistration(name: string, raw: string): { hash: string; options: Record<string, unknown> } | undefined {
    try {
      const { hash, o, mac } = JSON.parse(raw) as { hash?: unknown; o?: unknown; mac?: unknown };
      if (
        typeof hash === 'string' &&
        typeof o === 'string' &&
        typeof mac === 'string' &&
        this.seal.verify('fn', [name, hash, o], Buffer.from(mac, 'hex'))
      ) {
        return { hash, options: JSON.parse(o) as Record<string, unknown> };
      }
    } catch {
      // Not JSON: as forged.
    }
    this.reject('functions', `the registry entry of '${name}'`);
    return undefined;
  }

  /** An idempotency record as stored: MAC, the input's SHA-256, the outcome (see {@link encode}). */
  record(name: string, key: string, inputHash: string, outcome: Outcome): Buffer {
    const input = Buffer.from(inputHash, 'hex');
    const body = encode(outcome);
    return Buffer.concat([this.seal.sign('done', [name, key, input, body]), input, body]);
  }

  openRecord(name: string, key: string, record: Buffer): { input: string; outcome: Outcome } | undefined {
    if (record.byteLength >= 2 * MAC_BYTES + 4) {
      const input = record.subarray(MAC_BYTES, 2 * MAC_BYTES);
      const body = record.subarray(2 * MAC_BYTES);
      if (this.seal.verify('done', [name, key, input, body], record.subarray(0, MAC_BYTES))) {
        return { input: input.toString('hex'), outcome: decode(body) };
      }
    }
    this.reject('records', `the idempotency record of '${name}' with key '${key}'`);
    return undefined;
  }

  /**
   * An idempotency lease's value: `<host> <input SHA-256 hex> <MAC hex>`, the MAC binding the
   * function, key, host and input hash (a planted lease neither blocks a key nor fakes a conflict).
   */
  lease(name: string, key: string, inputHash: string): string {
    return `${this.hostId} ${inputHash} ${this.seal.sign('lease', [name, key, this.hostId, inputHash]).toString('hex')}`;
  }

  /** The input hash of a lease's value, or undefined (counted with records) when it does not verify. */
  openLease(name: string, key: string, value: string): string | undefined {
    const [host = '', input = '', mac = ''] = value.split(' ');
    if (this.seal.verify('lease', [name, key, host, input], Buffer.from(mac, 'hex'))) return input;
    this.reject('records', `the idempotency lease of '${name}' with key '${key}'`);
    return undefined;
  }

  /**
   * A call's fields with its MAC appended (`m`), over every field in order: its id, reply
   * route and deadline (an entry copied later is refused as late), its function, code hash,
   * input, idempotency key and group fields.
   */
  call(fields: (string | Buffer)[]): (string | Buffer)[] {
    return [...fields, 'm', this.seal.sign('call', fields)];
  }

  /** Whether a call entry's fields (as read from its stream) carry a valid MAC. */
  verifiedCall(raw: Buffer[], what: string): boolean {
    const fields: SealField[] = [];
    let mac: Buffer | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i]!.toString() === 'm') mac = raw[i + 1];
      else fields.push(raw[i]!, raw[i + 1]!);
    }
    if (this.seal.verify('call', fields, mac)) return true;
    this.reject('calls', what);
    return false;
  }

  /**
   * A batch entry's fields (see codec.ts `packBatch`): the framed list of calls (`calls`) or
   * replies, and one MAC over it — the calls or replies in it carry none of their own.
   */
  batch(kind: 'calls' | 'replies', packed: Buffer): (string | Buffer)[] {
    return [BATCH, packed, 'm', this.seal.sign(kind === 'calls' ? 'cbatch' : 'rbatch', [packed])];
  }

  /** Whether a batch entry's framed list carries a valid MAC; counted as a rejected call or reply if not. */
  verifiedBatch(kind: 'calls' | 'replies', packed: Buffer, mac: Buffer | undefined, what: string): boolean {
    if (this.seal.verify(kind === 'calls' ? 'cbatch' : 'rbatch', [packed], mac)) return true;
    this.reject(kind, what);
    return false;
  }

  /** A reply's MAC: bound to the call it answers, so it cannot be moved onto another. */
  reply(id: string, record: Buffer): Buffer {
    return this.seal.sign('reply', [id, record]);
  }

  verifiedReply(id: string, record: Buffer | undefined, mac: Buffer | undefined): record is Buffer {
    if (record !== undefined && this.seal.verify('reply', [id, record], mac)) return true;
    this.reject('replies', `a reply to call ${id}`);
    return false;
  }

  /**
   * The fields of a message from rank `from` to rank `to` on another host: numbered per
   * (sender, receiver) from 1 with no gap, under a MAC binding the group, both ranks, the
   * number, the sending host and the data.
   */
  message(group: string, from: number, to: number, data: Buffer): (string | Buffer)[] {
    const id = `${group} ${from} ${to}`;
    const seq = (this.sentSeq.get(id) ?? 0) + 1;
    this.sentSeq.set(id, seq);
    const mac = this.seal.sign('msg', [group, String(from), String(to), String(seq), this.hostId, data]);
    return ['f', String(from), 's', String(seq), 'o', this.hostId, 'd', data, 'm', mac];
  }

  /** The fields of a group's control entry: a rank failed (under a MAC binding the group). */
  failure(group: string, error: WireError): (string | Buffer)[] {
    const json = JSON.stringify(error);
    return ['e', json, 'm', this.seal.sign('ctl', [group, json])];
  }

  /**
   * Whether an entry of a group's stream is to be taken: a control entry with its MAC (`rank`
   * undefined), or a message with its MAC from the host that sent the first message from its
   * sender to its receiver, numbered one above the last one taken. `'dropped'`: forged, copied
   * again, or from a second run of the sending rank (a copied call entry run on another host)
   * — ignored. `'lost'`: authentic, but a message before it never came (removed from Redis):
   * the receiving part cannot go on.
   */
  verifiedGroupEntry(group: string, rank: number | undefined, f: Map<string, Buffer>, what: string): 'ok' | 'dropped' | 'lost' {
    if (rank === undefined) {
      const e = f.get('e');
      if (e !== undefined && this.seal.verify('ctl', [group, e], f.get('m'))) return 'ok';
      this.reject('messages', what);
      return 'dropped';
    }
    const from = f.get('f')?.toString() ?? '';
    const seq = f.get('s')?.toString() ?? '';
    const host = f.get('o')?.toString() ?? '';
    const id = `${group} ${from} ${rank}`;
    if (!this.seal.verify('msg', [group, from, String(rank), seq, host, f.get('d') ?? Buffer.alloc(0)], f.get('m'))) {
      this.reject('messages', what);
      return 'dropped';
    }
    const seen = this.seenSeq.get(id);
    if (seen !== undefined && seen.host !== host) {
      this.reject('messages', `${what} (rank ${from} run a second time, on host '${host}')`);
      return 'dropped';
    }
    const last = seen?.seq ?? 0;
    if (Number(seq) <= last) {
      this.reject('messages', `${what} (a copy of message ${seq} from rank ${from})`);
      return 'dropped';
    }
    if (Number(seq) !== last + 1) {
      this.reject('messages', `${what} (message ${last + 1} from rank ${from} never came)`);
      return 'lost';
    }
    this.seenSeq.set(id, { host, seq: Number(seq) });
    return 'ok';
  }

  /** Forgets a group's message numbers (no part of it runs on this host any more). */
  forgetGroup(group: string): void {
    for (const seq of [this.sentSeq, this.seenSeq]) for (const k of seq.keys()) if (k.startsWith(`${group} `)) seq.delete(k);
  }
}
