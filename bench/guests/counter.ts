import { state, inputString, outputString } from "nuvola";

// One visit counted three ways, chosen by the input "way key":
// "atomic": state.incrementGlobal (one Redis script, no lock, exact across hosts);
// "locked": the global write lock around pull, add, push (exact across hosts, several round trips);
// "local":  the local write lock around read, add, write (exact on one host only).
export function main(): i32 {
  const parts = inputString().split(" ");
  const way = parts[0];
  const key = parts[1];
  let n: i64 = 0;
  if (way == "atomic") {
    n = state.incrementGlobal(key, 1);
  } else if (way == "locked") {
    state.lockGlobalWrite(key);
    state.pull(key);
    n = (state.size(key) == 8 ? load<i64>(state.read(key).dataStart) : 0) + 1;
    const v = new Uint8Array(8);
    store<i64>(v.dataStart, n);
    state.write(key, v);
    state.push(key);
    state.unlockGlobalWrite(key);
  } else if (way == "local") {
    state.lockWrite(key);
    n = (state.size(key) == 8 ? load<i64>(state.read(key).dataStart) : 0) + 1;
    const v = new Uint8Array(8);
    store<i64>(v.dataStart, n);
    state.write(key, v);
    state.unlockWrite(key);
  } else {
    return 1;
  }
  outputString(n.toString());
  return 0;
}
