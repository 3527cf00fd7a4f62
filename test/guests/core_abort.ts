import { inputString } from "nuvola";
export function main(): i32 {
  const s = inputString();
  assert(s == "fine", "expected input 'fine'");
  return 0;
}
