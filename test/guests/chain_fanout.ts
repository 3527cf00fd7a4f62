import { chain } from "nuvola";
import { ints } from "./chain_check";
// Acceptance case 1, the caller: fans out three calls to "check" with [k, k+1, k+2], k = 1..3,
// and waits for each. Returns 0 when all three returned 0.
export function main(): i32 {
  const ids = new Array<u32>(0);
  for (let k = 1; k <= 3; k++) ids.push(chain.call("check", ints(k, k + 1, k + 2)));
  for (let i = 0; i < ids.length; i++) {
    const code = chain.wait(ids[i]);
    if (code != 0) return 100 + code;
  }
  return 0;
}
