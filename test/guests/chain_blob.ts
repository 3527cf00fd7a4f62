import { inputString, output } from "nuvola";
// Outputs as many KiB of zeros as its input says.
export function main(): i32 {
  output(new Uint8Array(I32.parseInt(inputString()) * 1024));
  return 0;
}
