import { Bytes, read, respond, start } from "../../guests/timed";

// FaaSdom's factors, the algorithm of bench/suite/factors/reference.ts.
export function main(): i32 {
  const t = start();
  const input = read();
  const n = U64.parseInt(String.UTF8.decodeUnsafe(input.dataStart, <usize>input.length));
  const small = new Array<u64>();
  const large = new Array<u64>();
  for (let i: u64 = 1; i * i <= n; i++) {
    if (n % i != 0) continue;
    small.push(i);
    if (i != n / i) large.push(n / i);
  }
  const out = new Bytes(32 * (small.length + large.length));
  for (let k = 0; k < small.length; k++) {
    if (k > 0) out.byte(44);
    out.uint(small[k]);
  }
  for (let k = large.length - 1; k >= 0; k--) {
    out.byte(44);
    out.uint(large[k]);
  }
  respond(t, out.view());
  return 0;
}
