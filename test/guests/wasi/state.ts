// A WASI command that also uses nuvola's state store through the guest SDK: adds the number
// on stdin to the counter named by its first argument and prints the new total.
import { state } from "nuvola";

const chunk = new ArrayBuffer(256);
const n = process.stdin.read(chunk);
const add = I32.parseInt(String.UTF8.decode(chunk.slice(0, max(n, 0))));
const key = process.argv[1];
state.lockGlobalWrite(key);
state.pull(key);
let total: i32 = 0;
if (state.size(key) == 4) total = load<i32>(state.read(key).dataStart);
total += add;
const v = new Uint8Array(4);
store<i32>(v.dataStart, total);
state.write(key, v);
state.push(key);
state.unlockGlobalWrite(key);
process.stdout.write(total.toString() + "\n");
