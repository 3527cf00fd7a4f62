import { input, output } from "nuvola";
// Doubles every little-endian u32 of its input (wrapping); returns 1 when the input is not a
// whole number of u32s.
export function main(): i32 {
  const data = input();
  if (data.length % 4 != 0) return 1;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += 4) store<u32>(out.dataStart + <usize>i, load<u32>(data.dataStart + <usize>i) * 2);
  output(out);
  return 0;
}
