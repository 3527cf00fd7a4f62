import { state, output, inputString, outputString, log, sleep } from "nuvola";
// One state operation per call, chosen by the input "op key [arg]".
export function main(): i32 {
  const parts = inputString().split(" ");
  const op = parts[0];
  const key = parts.length > 1 ? parts[1] : "";
  const arg = parts.length > 2 ? I32.parseInt(parts[2]) : 0;
  if (op == "write") {
    const v = new Uint8Array(arg);
    for (let i = 0; i < arg; i++) v[i] = <u8>(i * 7 + 1);
    state.write(key, v);
  } else if (op == "read") {
    output(state.read(key));
  } else if (op == "readAt") {
    output(state.readAt(key, arg, 4));
  } else if (op == "writeAt") {
    state.writeAt(key, arg, new Uint8Array(4));
  } else if (op == "push") {
    state.push(key);
  } else if (op == "pushPartial") {
    state.pushPartial(key);
  } else if (op == "pull") {
    state.pull(key);
  } else if (op == "size") {
    outputString(state.size(key).toString());
  } else if (op == "delete") {
    state.delete(key);
  } else if (op == "append") {
    const v = new Uint8Array(1);
    v[0] = <u8>arg;
    state.append(key, v);
  } else if (op == "appended") {
    const all = state.readAppended(key);
    const out = new Uint8Array(all.length);
    for (let i = 0; i < all.length; i++) out[i] = all[i][0];
    output(out);
  } else if (op == "clearAppended") {
    state.clearAppended(key);
  } else if (op == "unlock") {
    state.unlockWrite(key);
  } else if (op == "lockAndTrap") {
    state.lockWrite(key);
    unreachable();
  } else if (op == "lockAndKeep") {
    state.lockWrite(key);
  } else if (op == "lockAndSleep") {
    state.lockWrite(key);
    log("locked " + key);
    sleep(arg);
    state.unlockWrite(key);
  } else if (op == "lockPullUnlock") {
    state.lockWrite(key);
    log("pulling " + key);
    state.pull(key);
    state.unlockWrite(key);
    outputString(state.size(key).toString());
  } else if (op == "lockThenWrite") {
    state.lockWrite(key);
    const v = new Uint8Array(2);
    v[0] = 9; v[1] = 9;
    state.write(key, v);
    state.unlockWrite(key);
  }
  return 0;
}
