import { chain, input } from "nuvola";
// A chain n calls deep (n is the i32 input): each level calls the next and returns its code + 1.
export function main(): i32 {
  const n = load<i32>(input().dataStart);
  if (n == 0) return 0;
  const arg = new Uint8Array(4);
  store<i32>(arg.dataStart, n - 1);
  const code = chain.wait(chain.call("deep", arg));
  return code == chain.FAILED ? code : code + 1;
}
