import { Bytes, read, respond, start } from "../../guests/timed";

// LZ77, the algorithm of bench/suite/compression/reference.ts (see there for the format).
const HASH_BITS = 16;
const MIN_MATCH = 4;
const MAX_OFFSET = 65535;

function length(out: Bytes, n: i32): void {
  for (; n >= 255; n -= 255) out.byte(255);
  out.byte(n);
}

function emit(out: Bytes, src: usize, anchor: i32, literalEnd: i32, matchLen: i32, offset: i32): void {
  const lit = literalEnd - anchor;
  const m = matchLen - MIN_MATCH;
  out.byte((min(lit, 15) << 4) | (matchLen == 0 ? 0 : min(m, 15)));
  if (lit >= 15) length(out, lit - 15);
  out.raw(src + <usize>anchor, lit);
  if (matchLen == 0) return;
  out.byte(offset & 255);
  out.byte(offset >>> 8);
  if (m >= 15) length(out, m - 15);
}

export function main(): i32 {
  const t = start();
  const input = read();
  const src = input.dataStart;
  const n = input.length;
  const table = new Int32Array(1 << HASH_BITS).fill(-1);
  const out = new Bytes(n / 2 + 64);
  let anchor = 0;
  let pos = 0;
  while (pos + MIN_MATCH <= n) {
    const word = load<u32>(src + <usize>pos);
    const h = <i32>((word * 2654435761) >>> (32 - HASH_BITS));
    const candidate = unchecked(table[h]);
    unchecked((table[h] = pos));
    if (candidate >= 0 && pos - candidate <= MAX_OFFSET && load<u32>(src + <usize>candidate) == word) {
      let len = MIN_MATCH;
      while (pos + len < n && load<u8>(src + <usize>(candidate + len)) == load<u8>(src + <usize>(pos + len))) len++;
      emit(out, src, anchor, pos, len, pos - candidate);
      pos += len;
      anchor = pos;
    } else pos++;
  }
  emit(out, src, anchor, n, 0, 0);
  respond(t, out.view());
  return 0;
}
