/**
 * The seeded generator every input comes from (xorshift32): the same seed gives the same input
 * on every machine. Guests that draw numbers themselves (dynamic-html, alu) use the same steps.
 */
export class Xorshift32 {
  private x: number;
  constructor(seed: number) {
    this.x = seed >>> 0 || 1;
  }
  /** The next 32-bit value, unsigned. */
  next(): number {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }
  /** A number in [0, 1). */
  float(): number {
    return this.next() / 2 ** 32;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }
}

const encoder = new TextEncoder();
export const utf8 = (s: string): Uint8Array => encoder.encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Words of a generated vocabulary, drawn with a skew towards the first ones (text that compresses like prose). */
export function generateText(bytes: number, seed: number): string {
  const r = new Xorshift32(seed);
  const letters = 'etaoinshrdlucmfwypvbgkqjxz';
  const vocabulary = Array.from({ length: 2000 }, () => {
    const len = 2 + r.below(8);
    let w = '';
    for (let i = 0; i < len; i++) w += letters[Math.floor(r.float() ** 2 * letters.length)];
    return w;
  });
  const parts: string[] = [];
  let total = 0;
  while (total < bytes) {
    const w = vocabulary[Math.floor(r.float() ** 3 * vocabulary.length)]!;
    parts.push(w);
    total += w.length + 1;
  }
  return parts.join(' ').slice(0, bytes);
}
