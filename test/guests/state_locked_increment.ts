import { state, inputString, sleep } from "nuvola";
// Increments an i32 under the key's local write lock, sleeping inside the critical section so
// that other calls get to run (and must wait for the lock) meanwhile.
export function main(): i32 {
  const key = inputString();
  state.lockWrite(key);
  let n: i32 = 0;
  if (state.size(key) == 4) n = load<i32>(state.read(key).dataStart);
  sleep(20);
  const v = new Uint8Array(4);
  store<i32>(v.dataStart, n + 1);
  state.write(key, v);
  state.unlockWrite(key);
  return n + 1;
}
