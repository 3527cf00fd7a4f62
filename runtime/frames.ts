/**
 * Any thread; imports nothing, so every layer may import it (the worker's host imports, the
 * cluster, skeletons). Framed lists: how a list of byte strings travels as one byte string.
 * Layout, little-endian: u32 count, then for each part a u32 length and its bytes. The guest
 * SDK's `frames` class reads and writes the same layout.
 */

/** The framed list of `parts`. */
export function frame(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let total = 4;
  for (const part of parts) total += 4 + part.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, parts.length, true);
  let at = 4;
  for (const part of parts) {
    view.setUint32(at, part.byteLength, true);
    out.set(part, at + 4);
    at += 4 + part.byteLength;
  }
  return out;
}

/**
 * The parts of the framed list `data`, as views into it. When `data` is not exactly one framed
 * list, throws what `bad` makes of the reason: each caller answers with its own coded error.
 */
export function unframe(data: Uint8Array, bad: (why: string) => Error): Uint8Array[] {
  if (data.byteLength < 4) throw bad('shorter than its 4-byte count');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(0, true);
  // Every part takes at least 4 bytes: a count beyond that is corrupt, not just long.
  if (count > (data.byteLength - 4) / 4) throw bad(`count ${count} is larger than ${data.byteLength} bytes can hold`);
  const parts: Uint8Array[] = new Array<Uint8Array>(count);
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.byteLength) throw bad(`cut short in the length of part ${i}`);
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > data.byteLength) throw bad(`cut short in part ${i}`);
    parts[i] = data.subarray(at, at + length);
    at += length;
  }
  if (at !== data.byteLength) throw bad(`${data.byteLength - at} bytes after the last part`);
  return parts;
}
