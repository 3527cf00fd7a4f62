import { chain, input } from "nuvola";
// Fans out n calls to "leaf" (n is the i32 input), then waits for all; returns the sum of
// their return codes.
export function main(): i32 {
  const n = load<i32>(input().dataStart);
  const ids = new Array<u32>(n);
  for (let i = 0; i < n; i++) ids[i] = chain.call("leaf");
  let sum = 0;
  for (let i = 0; i < n; i++) sum += chain.wait(ids[i]);
  return sum;
}
