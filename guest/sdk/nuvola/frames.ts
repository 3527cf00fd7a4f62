// Framed lists: how skeletons (`nuvola/skeletons`) pass a list of byte strings as one input
// or output. Layout, little-endian: u32 count, then for each part a u32 length and its bytes.
// The host side has the same encoding (skeletons/frames.ts).

/** Encoding and decoding of framed lists: static methods only. */
export abstract class frames {
  /** The parts of a framed list; aborts (E_GUEST_ABORT) when `data` is not one. */
  static split(data: Uint8Array): Array<Uint8Array> {
    const total = data.length;
    if (total < 4) abort("frames.split: input shorter than a framed list's 4-byte count");
    const count = load<u32>(data.dataStart);
    const parts = new Array<Uint8Array>(0);
    let at: i32 = 4;
    for (let i: u32 = 0; i < count; i++) {
      if (total - at < 4) abort("frames.split: framed list cut short in a length");
      const len = load<u32>(data.dataStart + <usize>at);
      at += 4;
      // Compared without adding, so a huge length cannot wrap around.
      if (len > <u32>(total - at)) abort("frames.split: framed list cut short in a part");
      parts.push(data.slice(at, at + <i32>len));
      at += <i32>len;
    }
    if (at != total) abort("frames.split: bytes after the last part of a framed list");
    return parts;
  }

  /** The framed list of `parts`. */
  static join(parts: Array<Uint8Array>): Uint8Array {
    let total: i32 = 4;
    for (let i = 0; i < parts.length; i++) total += 4 + parts[i].length;
    const out = new Uint8Array(total);
    store<u32>(out.dataStart, <u32>parts.length);
    let at: i32 = 4;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      store<u32>(out.dataStart + <usize>at, <u32>part.length);
      at += 4;
      memory.copy(out.dataStart + <usize>at, part.dataStart, <usize>part.length);
      at += part.length;
    }
    return out;
  }
}
