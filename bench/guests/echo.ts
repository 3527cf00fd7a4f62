import { input, output } from "nuvola";

// Returns its input unchanged: the SDK side of `bench invoke`'s WASI and component rows.
export function main(): i32 {
  output(input());
  return 0;
}
