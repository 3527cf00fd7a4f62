// ServerlessBench's ALU in JavaScript: `n` arithmetic operations (add, subtract, multiply, divide
// in turn) on pairs of 32-bit numbers from xorshift32, folded into one checksum. Input: "n seed".
import { text, utf8, Xorshift32 } from '../random.js';

export function alu(n: number, seed: number): number {
  const r = new Xorshift32(seed);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const a = r.next();
    const b = r.next() | 1;
    let v: number;
    switch (i & 3) {
      case 0:
        v = a + b;
        break;
      case 1:
        v = a - b;
        break;
      case 2:
        v = Math.imul(a, b);
        break;
      default:
        v = Math.floor(a / (b >>> 0));
    }
    acc = ((acc << 5) | (acc >>> 27)) ^ v;
  }
  return acc >>> 0;
}

export function reference(input: Uint8Array): Uint8Array {
  const [n = '0', seed = '1'] = text(input).split(' ');
  return utf8(String(alu(Number(n), Number(seed))));
}
