import { input, outputString } from "nuvola";

// An index out of range, checked inside the standard library (~lib/array.ts) but caused here.
function pick(a: Array<i32>, i: i32): i32 {
  return a[i];
}

export function main(): i32 {
  const a = new Array<i32>(3);
  outputString(pick(a, input().length).toString());
  return 0;
}
