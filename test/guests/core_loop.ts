import { inputString } from "nuvola";
// Loops forever when its input is "loop"; otherwise returns 0.
export function main(): i32 {
  let n: i64 = 0;
  if (inputString() == "loop") {
    while (true) n++;
  }
  return <i32>n;
}
