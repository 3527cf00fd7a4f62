import { inputString, outputString } from "nuvola";
// Sets its input as its output.
export function main(): i32 {
  outputString(inputString());
  return 0;
}
