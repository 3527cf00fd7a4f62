/**
 * Main thread. The bytes of what crosses hosts: a call's outcome (a reply's or an idempotency
 * record's body), a group part's outcomes, and the fields of a stream entry as Redis returns
 * them. No signing here (entries.ts), no Redis (the callers).
 */
import type { WireError } from '../runtime/errors.js';
import { frame, unframe } from '../runtime/frames.js';

/** The outcome of one call, as it crosses hosts. */
export type Outcome = { output: Uint8Array; returnCode: number; host?: string } | { error: WireError };

/** A stream entry as `XREAD`/`XREADGROUP`/`XCLAIM` return it: its id, then field, value, field, value … */
export type StreamEntry = [id: Buffer, fields: Buffer[]];

/** A stream entry's fields by name. */
export function fieldsOf(raw: Buffer[]): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < raw.length; i += 2) map.set(raw[i]!.toString(), raw[i + 1]!);
  return map;
}

/** An outcome as bytes: a JSON header's length (4 bytes, LE), the header, then the output. */
export function encode(outcome: Outcome): Buffer {
  const header = Buffer.from(
    JSON.stringify('error' in outcome ? { error: outcome.error } : { rc: outcome.returnCode, host: outcome.host }),
  );
  const output =
    'error' in outcome ? Buffer.alloc(0) : Buffer.from(outcome.output.buffer, outcome.output.byteOffset, outcome.output.byteLength);
  const lead = Buffer.alloc(4);
  lead.writeUInt32LE(header.byteLength, 0);
  return Buffer.concat([lead, header, output]);
}

export function decode(bytes: Buffer): Outcome {
  const length = bytes.readUInt32LE(0);
  const header = JSON.parse(bytes.subarray(4, 4 + length).toString()) as { error?: WireError; rc?: number; host?: string };
  if (header.error !== undefined) return { error: header.error };
  const output = new Uint8Array(bytes.byteLength - 4 - length);
  output.set(bytes.subarray(4 + length));
  return { output, returnCode: header.rc ?? 0, ...(header.host !== undefined ? { host: header.host } : {}) };
}

/** The outcomes of a group part's ranks (or one error for the whole part) as bytes: a mark, then their framed list. */
export function encodePart(outcomes: Outcome[]): Buffer {
  const lead = Buffer.alloc(4);
  lead.writeUInt32LE(PART_MARK, 0);
  return Buffer.concat([lead, frame(outcomes.map(encode))]);
}

/** Leads a part's record where a plain record has its header's length (never this). */
const PART_MARK = 0xffffffff;

/** A group part's record → one outcome per rank (a part-wide error repeated, or a plain error record). */
export function decodePart(record: Buffer, ranks: number): Outcome[] {
  // Timeouts and lost connections come back as a plain outcome record, not a part.
  if (record.readUInt32LE(0) !== PART_MARK) return Array<Outcome>(ranks).fill(decode(record));
  const parts = unframe(record.subarray(4), (why) => new Error(`a group part's record is not a framed list of outcomes (${why})`));
  const out = parts.map((p) => decode(Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  return out.length === ranks ? out : Array<Outcome>(ranks).fill(out[0]!);
}

/**
 * Several stream entries' fields as one framed list, each a framed list of its fields: a batch
 * of calls to one stream (or of replies to one caller) goes out as one `XADD` of
 * `b: <this>, m: <one MAC over it>` (entries.ts `batch`).
 */
export function packBatch(entries: readonly (readonly (string | Buffer)[])[]): Buffer {
  const parts = entries.map((fields) => frame(fields.map((f) => (typeof f === 'string' ? Buffer.from(f) : f))));
  const packed = frame(parts);
  return Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
}

/** The field naming a batch entry's framed list (see {@link packBatch}). */
export const BATCH = 'b';

/** A batch entry's framed list and MAC, or undefined when the entry is not a batch. */
export function batchOf(raw: Buffer[]): { packed: Buffer; mac: Buffer | undefined } | undefined {
  if (raw.length < 2 || raw[0]!.toString() !== BATCH) return undefined;
  const mac = raw.length === 4 && raw[2]!.toString() === 'm' ? raw[3] : undefined;
  return { packed: raw[1]!, mac };
}

/** The entries in a batch's framed list (see {@link packBatch}); undefined when it is not well formed. */
export function unpackBatch(packed: Buffer): Buffer[][] | undefined {
  try {
    const bad = (why: string): Error => new Error(why);
    return unframe(packed, bad).map((part) => unframe(part, bad).map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
  } catch {
    return undefined;
  }
}
