import { state, outputString, inputString } from "nuvola";
// Size of an unknown key, then after writing 4 bytes.
export function main(): i32 {
  const key = inputString();
  const before = state.size(key);
  state.write(key, new Uint8Array(4));
  outputString(before.toString() + "," + state.size(key).toString());
  return 0;
}
