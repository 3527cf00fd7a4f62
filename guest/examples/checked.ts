import { inputString, outputString } from "nuvola";

// Doubles a non-negative integer; a bad input fails an assertion, which the host sees as
// E_GUEST_ABORT with this file and line.
export function main(): i32 {
  const n = I32.parseInt(inputString());
  assert(n >= 0, "input must be a non-negative integer");
  outputString((n * 2).toString());
  return 0;
}
