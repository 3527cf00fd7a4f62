import { inputString, outputString, state } from "nuvola";
// Asks the main thread's state store (a host call that suspends, answered in batches with
// other instances' requests), then reads its input: many at once, each must see its own.
export function main(): i32 {
  const size = state.size("echo:" + inputString());
  outputString(inputString() + "|" + size.toString());
  return 0;
}
