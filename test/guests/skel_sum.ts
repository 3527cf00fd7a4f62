import { input, output, frames } from "nuvola";
// Sums a framed list of u32 values (wrapping) into one u32; returns 1 when a value is not 4 bytes.
export function main(): i32 {
  const values = frames.split(input());
  let total: u32 = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i].length != 4) return 1;
    total += load<u32>(values[i].dataStart);
  }
  const out = new Uint8Array(4);
  store<u32>(out.dataStart, total);
  output(out);
  return 0;
}
