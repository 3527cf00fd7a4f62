/**
 * Worker thread. The mailboxes of the group ranks that run (or will run) on this worker:
 * per (group, rank) a queue of messages per sender, and the receives waiting on them.
 * Messages are views of SharedArrayBuffers the sender filled: nothing is copied on the way.
 */
import { ErrorCode, GuestError, type WireError } from '../errors.js';

interface Box {
  queues: Map<number, Uint8Array[]>;
  waiting: Map<number, { resolve: (m: Uint8Array) => void; reject: (err: Error) => void }>;
}

export class Mailboxes {
  private readonly boxes = new Map<string, Box>();
  private readonly aborted = new Map<number, WireError>();
  /**
   * Groups that are over. A message can still arrive after `commEnd` (over a peer channel,
   * while the main-thread port was drained first): it is dropped, not kept in a new box.
   * The most recent ids are enough: a group's messages come close to its end.
   */
  private readonly ended = new Set<number>();

  private box(group: number, rank: number): Box {
    const key = `${group}:${rank}`;
    let box = this.boxes.get(key);
    if (box === undefined) this.boxes.set(key, (box = { queues: new Map(), waiting: new Map() }));
    return box;
  }

  deliver(group: number, to: number, from: number, data: SharedArrayBuffer): void {
    if (this.aborted.has(group) || this.ended.has(group)) return;
    const box = this.box(group, to);
    const message = new Uint8Array(data);
    const waiter = box.waiting.get(from);
    if (waiter !== undefined) {
      box.waiting.delete(from);
      waiter.resolve(message);
      return;
    }
    let queue = box.queues.get(from);
    if (queue === undefined) box.queues.set(from, (queue = []));
    queue.push(message);
  }

  receive(group: number, rank: number, from: number): Uint8Array | Promise<Uint8Array> {
    const error = this.aborted.get(group);
    if (error !== undefined) throw abortedError(error, rank);
    const box = this.box(group, rank);
    const queued = box.queues.get(from)?.shift();
    if (queued !== undefined) return queued;
    return new Promise((resolve, reject) => box.waiting.set(from, { resolve, reject }));
  }

  /** Another rank failed: waiting and later receives of the group fail with E_COMM_ABORTED. */
  abort(group: number, error: WireError): void {
    this.aborted.set(group, error);
    for (const [key, box] of this.boxes) {
      if (!key.startsWith(`${group}:`)) continue;
      const rank = Number(key.slice(key.indexOf(':') + 1));
      for (const waiter of box.waiting.values()) waiter.reject(abortedError(error, rank));
      box.waiting.clear();
      box.queues.clear();
    }
  }

  /** The group is over. */
  end(group: number): void {
    this.aborted.delete(group);
    this.ended.add(group);
    if (this.ended.size > 4096) this.ended.delete(this.ended.values().next().value!);
    for (const key of [...this.boxes.keys()]) if (key.startsWith(`${group}:`)) this.boxes.delete(key);
  }
}

/** The error of a rank stopped because another rank of its group failed. */
export function abortedError(cause: WireError, rank: number, fn?: string): GuestError {
  return new GuestError(
    ErrorCode.COMM_ABORTED,
    `rank ${rank} stopped: another rank of its group failed (${cause.code}: ${cause.message})`,
    {
      ...(fn !== undefined ? { function: fn } : {}),
      rank,
      cause,
    },
  );
}

const SPARES_PER_SIZE = 8;
const SPARE_BYTES = 64 * 1024 * 1024;

/**
 * Message buffers already received and copied out, kept for this worker's next sends of the
 * same size: a fresh SharedArrayBuffer costs a page fault per 4 KiB on first touch, which for
 * 1 MiB messages was most of an exchange. Bounded in count per size and in total bytes.
 */
export class MessageBuffers {
  private readonly spares = new Map<number, SharedArrayBuffer[]>();
  private spareBytes = 0;

  /** A buffer of `size` bytes: a spare, or a new one. */
  take(size: number): SharedArrayBuffer {
    const reused = this.spares.get(size)?.pop();
    if (reused === undefined) return new SharedArrayBuffer(size);
    this.spareBytes -= size;
    return reused;
  }

  /** Keeps the buffer of a received message (the whole of one) for a later send, while there is room. */
  recycle(message: Uint8Array): void {
    const sab = message.buffer;
    if (!(sab instanceof SharedArrayBuffer) || message.byteOffset !== 0 || message.byteLength !== sab.byteLength || sab.byteLength === 0)
      return;
    let list = this.spares.get(sab.byteLength);
    if (list === undefined) this.spares.set(sab.byteLength, (list = []));
    if (list.length >= SPARES_PER_SIZE || this.spareBytes + sab.byteLength > SPARE_BYTES) return;
    list.push(sab);
    this.spareBytes += sab.byteLength;
  }
}
