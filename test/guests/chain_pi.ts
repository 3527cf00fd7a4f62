import { chain, input, outputString, state } from "nuvola";
// Acceptance case 4: N chained workers (N is the i32 input) each append hit counts; the parent
// sums them and outputs "Pi estimate: …".
export function main(): i32 {
  const n = load<i32>(input().dataStart);
  state.clearAppended("pi");
  const ids = new Array<u32>(0);
  for (let w = 0; w < n; w++) {
    const arg = new Uint8Array(8);
    store<i32>(arg.dataStart, w + 1);
    store<i32>(arg.dataStart + 4, 500000);
    ids.push(chain.call("piWorker", arg));
  }
  for (let i = 0; i < ids.length; i++) if (chain.wait(ids[i]) != 0) return 1;
  const entries = state.readAppended("pi");
  let hits: i64 = 0;
  let total: i64 = 0;
  for (let i = 0; i < entries.length; i++) {
    hits += load<i64>(entries[i].dataStart);
    total += load<i64>(entries[i].dataStart + 8);
  }
  outputString("Pi estimate: " + (4.0 * <f64>hits / <f64>total).toString() + " from " + entries.length.toString() + " workers");
  return 0;
}
