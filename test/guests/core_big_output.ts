import { output } from "nuvola";
export function main(): i32 {
  output(new Uint8Array(4096));
  return 0;
}
