import { input, output } from "nuvola";
// A function with real start-up work: init() builds a 2000-entry lookup table. main() looks
// one entry up by the first input byte.
const table = new Map<i32, string>();

export function init(): void {
  for (let i = 0; i < 2000; i++) table.set(i, "item-" + i.toString());
}

export function main(): i32 {
  const arg = input();
  const key = arg.length > 0 ? <i32>arg[0] : 7;
  output(Uint8Array.wrap(String.UTF8.encode(table.get(key))));
  return 0;
}
