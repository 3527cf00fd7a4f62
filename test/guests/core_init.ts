import { outputString } from "nuvola";
let a: i32 = 0;
let b: i32 = 2;
let calls: i32 = 0;
export function init(): void {
  a += 5;
  b += 100;
}
export function main(): i32 {
  calls++;
  outputString(a.toString() + "," + b.toString());
  return 0;
}
