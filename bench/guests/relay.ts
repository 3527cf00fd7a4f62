import { input, output } from "nuvola";
// One stage of a chain: passes its input on.
export function main(): i32 {
  output(input());
  return 0;
}
