import { input, output, frames } from "nuvola";
// A reduction that is not associative: the first i32 of a framed list minus all the others
// (wrapping); an empty list gives 0. Returns 1 when a value is not 4 bytes.
export function main(): i32 {
  const values = frames.split(input());
  let acc: i32 = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i].length != 4) return 1;
    const v = load<i32>(values[i].dataStart);
    acc = i == 0 ? v : acc - v;
  }
  const out = new Uint8Array(4);
  store<i32>(out.dataStart, acc);
  output(out);
  return 0;
}
