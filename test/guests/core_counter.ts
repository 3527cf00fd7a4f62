import { outputString } from "nuvola";
// Counts calls in a global, to observe warm instance reuse.
let calls: i32 = 0;
export function main(): i32 {
  calls++;
  outputString(calls.toString());
  return 0;
}
