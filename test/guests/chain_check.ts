import { chain, input } from "nuvola";
// Acceptance case 1, the callee: receives three i32s [k, k+1, k+2] and checks them; for k = 3
// it also chains a nested call with [4, 5, 6] and waits for it. Returns 0 when all is right.
export function ints(a: i32, b: i32, c: i32): Uint8Array {
  const bytes = new Uint8Array(12);
  store<i32>(bytes.dataStart, a);
  store<i32>(bytes.dataStart + 4, b);
  store<i32>(bytes.dataStart + 8, c);
  return bytes;
}

export function main(): i32 {
  const arg = input();
  if (arg.length != 12) return 10;
  const k = load<i32>(arg.dataStart);
  if (load<i32>(arg.dataStart + 4) != k + 1 || load<i32>(arg.dataStart + 8) != k + 2) return 11;
  if (k == 3) {
    const nested = chain.call("check", ints(4, 5, 6));
    if (chain.wait(nested) != 0) return 12;
  }
  return 0;
}
