/**
 * Any thread. What crosses to and from the kernel thread: requests and replies (from the main
 * thread and, over ports of their own, straight from the runtime's workers), the words through
 * which the main thread watches the call running (for `maxKernelMs`), and the stats the kernel
 * thread publishes for the main thread to read synchronously.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WireError } from '../runtime/errors.js';

export interface KernelRequest {
  id: number;
  op: string;
  args: unknown[];
  /** Who the call is for: callers take the device in turn. */
  caller: string;
}

export type KernelReply =
  | { id: number; ok: true; value: unknown }
  /** `args`: the request's arrays, handed back when the caller may run the call elsewhere (a registered kernel's CPU version). */
  | { id: number; ok: false; error: WireError; args?: unknown[] }
  /** The thread was abandoned before it ran this request: send it again (to the new thread), with its arrays. */
  | { id: number; retry: true; args: unknown[] }
  /** The device is open (or there is none); `backend`: the toggles that found the adapter. */
  | { ready: true; backend: string[] | undefined };

/** From the main thread only. */
export type KernelControl =
  /** A worker's port: its requests come straight to the thread, and their replies go back on it. */
  | { connect: MessagePort; source: number }
  /** Finish the call running, fail what is queued with E_CLOSED, and end. */
  | { shutdown: true };

/** Int32 words of the watch buffer (WATCH_BYTES; a Float64 at WATCH_STARTED). */
export const Watch = {
  /** 0 idle, 1 running a call, 2 the main thread gave up on it (the thread drains and ends). */
  STATE: 0,
  /** Where the running call came from: 0 the main thread, else the worker connection's number. */
  SOURCE: 1,
  /** Its request id. */
  ID: 2,
} as const;
export const RUNNING = 1;
export const ABANDONED = 2;
/** Byte offset of the Float64 wall-clock time (ms) the running call started at. */
export const WATCH_STARTED = 16;
export const WATCH_BYTES = 24;

/** The stats the thread publishes after each call: JSON behind a sequence word (odd while being written). */
export interface PublishedStats {
  gpu: number;
  cpu: number;
  path: 'gpu' | 'cpu' | 'none';
  adapter: string | undefined;
  perCaller: Record<string, number>;
  /** Wall-clock time of the last counted call, to order it against the main thread's own CPU calls. */
  at: number;
}
export const STATS_BYTES = 256 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function publishStats(buffer: SharedArrayBuffer, stats: PublishedStats): void {
  const words = new Int32Array(buffer, 0, 2);
  let bytes = encoder.encode(JSON.stringify(stats));
  // Past the buffer (thousands of callers): the counts per caller go, the totals stay.
  if (bytes.byteLength > buffer.byteLength - 8) bytes = encoder.encode(JSON.stringify({ ...stats, perCaller: {} }));
  Atomics.add(words, 0, 1);
  new Uint8Array(buffer, 8, bytes.byteLength).set(bytes);
  Atomics.store(words, 1, bytes.byteLength);
  Atomics.add(words, 0, 1);
}

export function readStats(buffer: SharedArrayBuffer): PublishedStats | undefined {
  const words = new Int32Array(buffer, 0, 2);
  for (;;) {
    const seq = Atomics.load(words, 0);
    if (seq === 0) return undefined;
    if (seq % 2 === 1) continue;
    const length = Atomics.load(words, 1);
    const text = decoder.decode(new Uint8Array(buffer, 8, length).slice());
    if (Atomics.load(words, 0) === seq) return JSON.parse(text) as PublishedStats;
  }
}
