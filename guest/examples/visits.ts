import { state, inputString, outputString } from "nuvola";

// Counts visits per page in shared state: every instance on every worker sees the same
// counter (local tier), and push makes it durable in the global tier.
export function main(): i32 {
  const key = "visits:" + inputString();
  state.lockWrite(key);
  const n = state.size(key) == 4 ? load<i32>(state.read(key).dataStart) + 1 : 1;
  const v = new Uint8Array(4);
  store<i32>(v.dataStart, n);
  state.write(key, v);
  state.unlockWrite(key);
  state.push(key);
  outputString(inputString() + " has " + n.toString() + " visits");
  return 0;
}
