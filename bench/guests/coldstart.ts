import { input } from "nuvola";
// A function with real start-up work: init() builds a lookup table and reserves a 101-page
// buffer. main() touches as many 64 KiB pages of that buffer as the first input byte says.
const table = new Map<i32, string>();
let buffer = new Uint8Array(0);

export function init(): void {
  for (let i = 0; i < 2000; i++) table.set(i, "item-" + i.toString());
  buffer = new Uint8Array(101 * 65536);
}

export function main(): i32 {
  const arg = input();
  const pages = arg.length > 0 ? <i32>arg[0] : 0;
  if (pages > 0) memory.fill(buffer.dataStart, 0x5a, <usize>pages * 65536);
  return table.has(7) ? 0 : 1;
}
