import { inputString, log } from "nuvola";
export function main(): i32 {
  log("first line");
  log("second: " + inputString());
  return 0;
}
