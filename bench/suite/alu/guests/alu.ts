import { Bytes, read, respond, start, Xorshift32 } from "../../guests/timed";

// ServerlessBench's ALU, the algorithm of bench/suite/alu/reference.ts. Input: "n seed".
export function alu(n: i32, seed: u32): u32 {
  const r = new Xorshift32(seed);
  let acc: u32 = 0;
  for (let i = 0; i < n; i++) {
    const a = r.next();
    const b = r.next() | 1;
    let v: u32;
    switch (i & 3) {
      case 0:
        v = a + b;
        break;
      case 1:
        v = a - b;
        break;
      case 2:
        v = a * b;
        break;
      default:
        v = a / b;
    }
    acc = rotl<u32>(acc, 5) ^ v;
  }
  return acc;
}

export function main(): i32 {
  const t = start();
  const input = read();
  const parts = String.UTF8.decodeUnsafe(input.dataStart, <usize>input.length).split(" ");
  const out = new Bytes(16);
  out.uint(alu(I32.parseInt(parts[0]), <u32>U32.parseInt(parts[1])));
  respond(t, out.view());
  return 0;
}
