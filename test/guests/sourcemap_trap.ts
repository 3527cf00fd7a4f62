import { input } from "nuvola";

const sink = new Uint8Array(16);

// Stores before the trap: the snapshot rewrite inserts marks after them, which moves every
// later instruction; the position must still come out right.
function deep(n: i32): i32 {
  sink[0] = <u8>n;
  sink[1] = <u8>(n + 1);
  if (n > 2) unreachable();
  return n;
}

export function main(): i32 {
  return deep(input().length);
}
