import { input, state } from "nuvola";
// Appends the 64-bit values 0..n-1 to state key "numbers" (n is the i32 input).
export function main(): i32 {
  const arg = input();
  const n = load<i32>(arg.dataStart);
  const value = new Uint8Array(8);
  for (let i: i64 = 0; i < <i64>n; i++) {
    store<i64>(value.dataStart, i);
    state.append("numbers", value);
  }
  return 0;
}
