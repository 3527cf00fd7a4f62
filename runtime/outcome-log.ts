/**
 * Both threads. A worker's unsent outcomes, in a SharedArrayBuffer the pool can still read
 * once the worker is gone.
 *
 * A worker sends its results in batches (runtime/protocol.ts), so a call can have finished
 * while its outcome still waits for the next batch — when a later call of the batch loops and
 * the pool stops the worker, that outcome would be lost, and the caller told `E_WORKER_LOST`
 * for a call that ran to the end (and might retry it, running it twice). So the worker also
 * appends every outcome to this log before it counts as done, and empties the log each time it
 * posts a batch: what the log holds when the thread exits is exactly what was never posted
 * (messages posted before that are delivered before the `exit` event). An outcome too large
 * for the log is posted at once instead, so every finished call's outcome reaches the pool.
 *
 * Layout: Int32 word 0 is the bytes used, records start at {@link HEADER_BYTES}; each record is
 * id, return code, flags, payload length (Int32 each), the worker time (Float64), the usage
 * (USAGE_FIELDS as Float64s, fuel NaN when not counted), then the payload (the output, or the
 * error as JSON, whose details carry its usage), padded to 8 bytes. A record counts once the used
 * length covers it, so a thread stopped mid-write leaves none half written.
 */
import type { WireError } from './errors.js';
import type { InvokeOutcome } from './protocol.js';
import { packUsage, unpackUsage, USAGE_FIELDS, type Usage } from './metering.js';

/** Bytes of each worker's log. */
export const OUTCOME_LOG_BYTES = 1024 * 1024;
/** The largest payload kept in the log; an outcome with a larger one is posted at once. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
const HEADER_BYTES = 8;
const RECORD_HEADER_BYTES = 24 + 8 * USAGE_FIELDS.length;
const FAILED = 1;
const COLD = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The worker's side: appends outcomes, and is emptied when they have been posted. */
export class OutcomeLog {
  private readonly words: Int32Array;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer, 0, 2);
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
  }

  /**
   * Appends `outcome` (and a success's `usage`). Returns false when it does not fit: the caller must post what it holds
   * (then {@link clear}) and, for an outcome over the payload limit, post that one at once too.
   */
  append(outcome: InvokeOutcome, usage?: Usage): boolean {
    let payload: Uint8Array;
    if ('error' in outcome) {
      try {
        payload = encoder.encode(JSON.stringify(outcome.error));
      } catch {
        return false;
      }
    } else {
      payload = outcome.output ?? new Uint8Array(0);
    }
    const used = this.words[0]! || HEADER_BYTES;
    const size = (RECORD_HEADER_BYTES + payload.byteLength + 7) & ~7;
    if (payload.byteLength > MAX_PAYLOAD_BYTES || used + size > this.bytes.byteLength) return false;
    const view = this.view;
    view.setInt32(used, outcome.id, true);
    view.setInt32(used + 12, payload.byteLength, true);
    if ('error' in outcome) {
      view.setInt32(used + 8, FAILED, true);
    } else {
      view.setInt32(used + 4, outcome.returnCode, true);
      view.setInt32(used + 8, outcome.cold ? COLD : 0, true);
      view.setFloat64(used + 16, outcome.workerMs, true);
      if (usage !== undefined) {
        packUsage(usage, new Float64Array(this.view.buffer, used + 24, USAGE_FIELDS.length), 0);
      }
    }
    this.bytes.set(payload, used + RECORD_HEADER_BYTES);
    Atomics.store(this.words, 0, used + size);
    return true;
  }

  /** Whether any outcome waits in the log. */
  get empty(): boolean {
    return this.words[0] === 0;
  }

  /** Called once the outcomes in the log have been posted. */
  clear(): void {
    Atomics.store(this.words, 0, 0);
  }
}

/** The pool's side, after the worker's thread has exited: the outcomes it never posted, by call id. */
export function unsentOutcomes(buffer: SharedArrayBuffer): Map<number, InvokeOutcome> {
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  const used = Atomics.load(new Int32Array(buffer, 0, 1), 0);
  const outcomes = new Map<number, InvokeOutcome>();
  for (let at = HEADER_BYTES; at + RECORD_HEADER_BYTES <= used;) {
    const id = view.getInt32(at, true);
    const length = view.getInt32(at + 12, true);
    const flags = view.getInt32(at + 8, true);
    const payload = bytes.slice(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length);
    if ((flags & FAILED) !== 0) {
      outcomes.set(id, { id, error: JSON.parse(decoder.decode(payload)) as WireError });
    } else {
      const outcome: InvokeOutcome = {
        id,
        returnCode: view.getInt32(at + 4, true),
        cold: (flags & COLD) !== 0,
        workerMs: view.getFloat64(at + 16, true),
        usage: unpackUsage(new Float64Array(buffer, at + 24, USAGE_FIELDS.length).slice(), 0),
      };
      if (length > 0) outcome.output = payload;
      outcomes.set(id, outcome);
    }
    at += (RECORD_HEADER_BYTES + length + 7) & ~7;
  }
  return outcomes;
}
