import { inputString, outputString } from "nuvola";
export function main(): i32 {
  outputString("Hello " + inputString());
  return 0;
}
