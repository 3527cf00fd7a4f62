// SeBS 311.compression in JavaScript: LZ77 with a hash table of the last position of every
// 4-byte prefix (greedy, LZ4-style sequences). A sequence is a token (literal count in the
// high nibble, match length − 4 in the low one; 15 means more bytes follow, each added until
// one is under 255), the literals, then a 2-byte little-endian offset. The last sequence has
// literals only.

const HASH_BITS = 16;
const MIN_MATCH = 4;
const MAX_OFFSET = 65535;

const read32 = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);

function length(out: number[], n: number): void {
  for (; n >= 255; n -= 255) out.push(255);
  out.push(n);
}

export function compress(src: Uint8Array): Uint8Array {
  const table = new Int32Array(1 << HASH_BITS).fill(-1);
  const out: number[] = [];
  let anchor = 0;
  let pos = 0;
  const emit = (literalEnd: number, matchLen: number, offset: number): void => {
    const lit = literalEnd - anchor;
    const m = matchLen - MIN_MATCH;
    out.push((Math.min(lit, 15) << 4) | (matchLen === 0 ? 0 : Math.min(m, 15)));
    if (lit >= 15) length(out, lit - 15);
    for (let i = anchor; i < literalEnd; i++) out.push(src[i]!);
    if (matchLen === 0) return;
    out.push(offset & 255, offset >>> 8);
    if (m >= 15) length(out, m - 15);
  };
  while (pos + MIN_MATCH <= src.length) {
    const word = read32(src, pos);
    const h = Math.imul(word, 2654435761) >>> (32 - HASH_BITS);
    const candidate = table[h]!;
    table[h] = pos;
    if (candidate >= 0 && pos - candidate <= MAX_OFFSET && read32(src, candidate) === word) {
      let len = MIN_MATCH;
      while (pos + len < src.length && src[candidate + len] === src[pos + len]) len++;
      emit(pos, len, pos - candidate);
      pos += len;
      anchor = pos;
    } else pos++;
  }
  emit(src.length, 0, 0);
  return Uint8Array.from(out);
}

/** The inverse of `compress` (what the check runs: the round trip). */
export function decompress(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  const more = (n: number): number => {
    if (n < 15) return n;
    for (;;) {
      const b = data[i++]!;
      n += b;
      if (b < 255) return n;
    }
  };
  while (i < data.length) {
    const token = data[i++]!;
    const lit = more(token >> 4);
    for (let k = 0; k < lit; k++) out.push(data[i++]!);
    if (i >= data.length) break;
    const offset = data[i]! | (data[i + 1]! << 8);
    i += 2;
    const len = more(token & 15) + MIN_MATCH;
    const from = out.length - offset;
    if (offset === 0 || from < 0) throw new Error(`compression: offset ${offset} points before the start`);
    for (let k = 0; k < len; k++) out.push(out[from + k]!);
  }
  return Uint8Array.from(out);
}

export function reference(input: Uint8Array): Uint8Array {
  return compress(input);
}
