import { state, inputString } from "nuvola";
// Increments a shared i32 counter under the global write lock; returns the new value.
export function main(): i32 {
  const key = inputString();
  state.lockGlobalWrite(key);
  state.pull(key);
  let n: i32 = 0;
  if (state.size(key) == 4) n = load<i32>(state.read(key).dataStart);
  n++;
  const v = new Uint8Array(4);
  store<i32>(v.dataStart, n);
  state.write(key, v);
  state.push(key);
  state.unlockGlobalWrite(key);
  return n;
}
