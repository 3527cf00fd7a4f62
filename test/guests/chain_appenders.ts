import { chain, outputString, state } from "nuvola";
// Acceptance case 3: two chained appenders add 0..99 and 0..199 to "numbers"; the parent
// reads the 300 elements back and outputs their count and sum (24 850).
function count(n: i32): Uint8Array {
  const bytes = new Uint8Array(4);
  store<i32>(bytes.dataStart, n);
  return bytes;
}
export function main(): i32 {
  state.clearAppended("numbers");
  const a = chain.call("appender", count(100));
  const b = chain.call("appender", count(200));
  if (chain.wait(a) != 0 || chain.wait(b) != 0) return 1;
  const entries = state.readAppended("numbers");
  let sum: i64 = 0;
  for (let i = 0; i < entries.length; i++) sum += load<i64>(entries[i].dataStart);
  outputString(entries.length.toString() + " " + sum.toString());
  return 0;
}
