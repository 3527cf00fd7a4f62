import { state, inputString } from "nuvola";
// Counts the calls naming a key in the local tier (then pushes the count): exact only while
// every call naming the key runs on one host, since a host never pulls a key it already holds.
export function main(): i32 {
  const key = inputString();
  state.lockWrite(key);
  const n: i32 = state.size(key) == 4 ? load<i32>(state.read(key).dataStart) + 1 : 1;
  const v = new Uint8Array(4);
  store<i32>(v.dataStart, n);
  state.write(key, v);
  state.unlockWrite(key);
  state.push(key);
  return n;
}
